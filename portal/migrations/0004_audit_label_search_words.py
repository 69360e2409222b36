"""Label search matches words inside paths and versions ("nginx" in "web/nginx", "1" in "ubuntu@1.0.0").

PostgreSQL's parser keeps "web/nginx" as one file-path token, so the GIN index of 0002 could
not find "nginx". The index (replacing the one of 0002) now covers the label with every run of non-alphanumeric
characters turned into a space, which is how portal/audit_history.py splits the query.
"""

from django.db import migrations

EXPRESSION = "to_tsvector('simple'::regconfig, regexp_replace(object_label, '[^[:alnum:]]+', ' ', 'g'))"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS audit_label_search")
    schema_editor.execute(f"CREATE INDEX audit_label_search ON portal_auditevent USING gin ({EXPRESSION})",
                          params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS audit_label_search")
    schema_editor.execute("CREATE INDEX audit_label_search ON portal_auditevent "
                          "USING gin (to_tsvector('simple'::regconfig, object_label))", params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("portal", "0003_sign_in_identities_and_api_tokens"),
    ]

    operations = [
        migrations.RunPython(forward, backward, elidable=False),
    ]
