"""The audit trail becomes append-only on PostgreSQL, and every history filter gets its index.

On PostgreSQL, triggers refuse UPDATE and DELETE on the audit event and checkpoint tables
(docs/audit.md describes the break-glass procedure for retention, `manage.py auditprune`),
and a GIN index serves the full-text search over event labels. SQLite gets neither: it is
the single-user trial database, and its tests rebuild tables with DELETE.
"""

from django.db import migrations, models

TABLES = {"portal_auditevent": "audit_event_immutable", "portal_auditcheckpoint": "audit_checkpoint_immutable"}

FUNCTION = """
CREATE OR REPLACE FUNCTION goldsmith_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'Retention goes through manage.py auditprune (docs/audit.md, "Break glass").',
              ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table, trigger in TABLES.items():
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "{trigger}" ON "{table}"')
        schema_editor.execute(f'CREATE TRIGGER "{trigger}" BEFORE UPDATE OR DELETE ON "{table}" '
                              "FOR EACH ROW EXECUTE FUNCTION goldsmith_audit_append_only()")
    schema_editor.execute("CREATE INDEX IF NOT EXISTS audit_label_search ON portal_auditevent "
                          "USING gin (to_tsvector('simple'::regconfig, object_label))")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS audit_label_search")
    for table, trigger in TABLES.items():
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "{trigger}" ON "{table}"')
    schema_editor.execute("DROP FUNCTION IF EXISTS goldsmith_audit_append_only()")


class Migration(migrations.Migration):

    dependencies = [
        ("portal", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="auditevent", name="audit_object"),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["object_type", "object_id", "id"], name="audit_object_id"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["outcome", "id"], name="audit_outcome_id"),
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
