"""Exports: CSV and JSON Lines of any filtered history, streamed, neutralised, redacted and audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from portal import audit, audit_export
from portal.models import AuditEvent
from tests.support.audit import expect_one_event, stored_before_redaction_rules

URL = "/audit/export/"


def export(client, **data) -> tuple[object, str]:
    response = client.post(URL, {"format": "csv", **data})
    assert response.status_code == 200, response.content
    assert response.streaming
    return response, b"".join(response.streaming_content).decode()


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def trail(db, web):
    audit.record("layer.create", actor="bob", label="web/nginx", department=web, changes={"slug": [None, "nginx"]})
    audit.record("build.request", actor="bob", label="build 1 of ubuntu@1.0.0", object_type="build", object_id="b1")
    audit.record("access.denied", actor="carol", label="web/nginx", outcome="denied")


@pytest.mark.parametrize("persona, status", [
    ("dave", 200), ("alice", 403), ("bob", 403), ("erin", 403), ("sam", 403),
])
def test_only_auditors_export(request, client, trail, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.post(URL, {"format": "csv"}).status_code == status


def test_it_is_post_only(client, dave):
    client.force_login(dave)
    assert client.get(URL + "?format=csv").status_code == 405


def test_it_needs_the_csrf_token(dave, trail):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(dave)
    assert client.post(URL, {"format": "csv"}).status_code == 403


def test_the_csv_has_every_event_oldest_first_with_its_chain_fields(client, dave, trail):
    client.force_login(dave)
    response, text = export(client)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="goldsmith-audit-')
    rows = csv_rows(text)
    assert [row["action"] for row in rows] == ["layer.create", "build.request", "access.denied"]
    first = AuditEvent.objects.get(id=1)
    assert rows[0]["hash"] == first.hash and rows[0]["prev_hash"] == audit.GENESIS
    assert rows[0]["department"] == "web" and json.loads(rows[0]["changes"]) == {"slug": [None, "nginx"]}
    assert list(rows[0]) == list(audit_export.COLUMNS)


def test_it_exports_the_filtered_history(client, dave, trail):
    client.force_login(dave)
    _, text = export(client, actor="bob", action="build.")
    assert [row["action"] for row in csv_rows(text)] == ["build.request"]
    _, text = export(client, q="nginx", outcome="denied")
    assert [row["actor_name"] for row in csv_rows(text)] == ["carol"]


def test_invalid_filters_are_refused_rather_than_ignored(client, dave, trail):
    client.force_login(dave)
    response = client.post(URL, {"format": "csv", "since": "2026-03-05", "until": "2026-03-01"})
    assert response.status_code == 400 and b"end date" in response.content
    assert client.post(URL, {"format": "xlsx"}).status_code == 400


def test_the_export_is_an_audit_event_and_not_part_of_itself(client, dave, trail):
    client.force_login(dave)
    with expect_one_event("export.download", actor=dave, object_type="auditevent", object_id="3") as caught:
        _, text = export(client, actor="bob", format="jsonl")
    assert caught.event.changes == {"format": [None, "jsonl"], "filters": [None, {"actor": "bob"}],
                                    "through_id": [None, 3]}
    assert len(text.splitlines()) == 2
    _, everything = export(client)
    assert [row["action"] for row in csv_rows(everything)][-1] == "export.download"  # the first export, not this one


@pytest.mark.parametrize("label", ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_formulas_are_neutralised_in_csv_cells(client, dave, label):
    audit.record("x.y", actor=label, label=label, changes={"note": [None, label]})
    client.force_login(dave)
    _, text = export(client)
    row = csv_rows(text)[0]
    assert row["object_label"] == "'" + label
    assert row["actor_name"] == "'" + label
    assert row["id"] == "1"  # numbers are numbers


def test_neutralise():
    assert audit_export.neutralise("=1") == "'=1"
    assert audit_export.neutralise("a=1") == "a=1"
    assert audit_export.neutralise("") == ""


def test_secrets_that_reached_the_trail_are_redacted_in_both_formats(client, dave, monkeypatch):
    with stored_before_redaction_rules():
        audit.record("x.y", actor="system", label="https://a.blob.core.windows.net/s.sh?sv=1&sig=SIGSECRET",
                     changes={"password": [None, "hunter22"], "script": [None, "curl -H 'Authorization: Bearer "
                                                                        "abcdefghijklmnopqrstuvwxyz'"]})
    client.force_login(dave)
    for export_format in ("csv", "jsonl"):
        _, text = export(client, format=export_format)
        assert "SIGSECRET" not in text and "hunter22" not in text and "abcdefghijklmnopqrstuvwxyz" not in text
        assert "[REDACTED]" in text


def test_json_lines_are_one_document_per_event(client, dave, trail):
    client.force_login(dave)
    response, text = export(client, format="jsonl")
    assert response["Content-Type"].startswith("application/x-ndjson")
    documents = [json.loads(line) for line in text.splitlines()]
    assert [document["id"] for document in documents] == [1, 2, 3]
    assert documents[0]["changes"] == {"slug": [None, "nginx"]}
    assert set(documents[0]) == set(audit_export.COLUMNS)


def test_an_export_verifies_offline(client, dave, trail):
    """Every row carries what the hash covers: an auditor can re-check the chain from the file."""
    client.force_login(dave)
    _, text = export(client, format="jsonl")
    prev = audit.GENESIS
    for line in text.splitlines():
        document = json.loads(line)
        document["at"] = dt.datetime.fromisoformat(document["at"])
        document["actor_ip"] = document["actor_ip"] or None
        assert document["prev_hash"] == prev
        assert audit.chain_hash(prev, audit.canonical_values(document)) == document["hash"]
        prev = document["hash"]


def test_rows_are_read_in_keyset_batches(db):
    for number in range(7):
        audit.record("x.y", actor="system", label=f"event {number}")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        chunks = list(audit_export.csv_chunks_keyset(AuditEvent.objects.all(), through_id=6, batch=3))
    assert len(queries) == 3  # 3 + 3 + 0 rows: keyset pages, never the whole table at once
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == 7 and lines[-1].startswith("6,")
    assert len(chunks) == 4  # the header, a chunk per full batch, then the rest


AWKWARD = [
    ("=1+1", {"script": [None, "line one\nline two, with \"quotes\""]}),
    ("-rm -rf", {"password": [None, "hunter22"]}),
    ("+ unicode \u00e9\u4e2d \U0001F600", {"n": [1, 2.5], "none": [None, None]}),
    ("@SUM(A1)", {"token": [None, "abc"], "url": [None, "https://u:pw@example.com/x?sig=S1G"]}),
    ("\ttab", {}),
    ("plain, with comma", {"list": [[], ["a", "b"]]}),
    ("Bearer abcdefghijklmnopqrstuvwxyz", {"deep": [{"k": {"clientSecret": "s"}}, None]}),
]


def test_postgresql_copy_writes_exactly_what_the_keyset_path_writes(db, web, monkeypatch):
    """The fast path (COPY, formatting and neutralising in SQL) and the portable one agree cell for cell."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's; SQLite always takes the keyset path")
    with stored_before_redaction_rules():  # secrets stored, as an older Goldsmith might have
        for number, (label, changes) in enumerate(AWKWARD):
            audit.record("x.y", actor=label, label=label, changes=changes, department=web if number % 2 else None)
    from django.http import HttpResponse
    from django.test import RequestFactory

    from portal.middleware import RequestIdMiddleware

    def view(request):
        audit.record("auth.login", actor="=cmd", label="ip and agent")
        return HttpResponse()

    RequestIdMiddleware(view)(RequestFactory().get("/", HTTP_USER_AGENT="-Agent", REMOTE_ADDR="2001:db8::1"))
    head = AuditEvent.objects.order_by("-id").first().id
    fast = b"".join(audit_export.csv_chunks_copy(AuditEvent.objects.all(), through_id=head, rows_per_chunk=3))
    portable = b"".join(audit_export.csv_chunks_keyset(AuditEvent.objects.all(), through_id=head, batch=3))
    assert csv_rows(fast.decode()) == csv_rows(portable.decode())
    text = fast.decode()
    for secret in ("hunter22", "S1G", "abcdefghijklmnopqrstuvwxyz", "pw@"):
        assert secret not in text
    assert "'=1+1" in text and "'-Agent" in text


def test_the_copy_filters_like_the_page(client, dave, trail):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    client.force_login(dave)
    _, text = export(client, q="nginx", outcome="denied")
    assert [row["actor_name"] for row in csv_rows(text)] == ["carol"]


def test_stopping_an_export_half_way_leaves_the_connection_usable(db):
    for number in range(30):
        audit.record("x.y", actor="system", label=f"event {number}")
    stream = audit_export.csv_chunks(AuditEvent.objects.all(), through_id=30)
    next(stream)
    next(stream)
    stream.close()  # the client went away
    assert AuditEvent.objects.count() == 30


@pytest.mark.parametrize("text", [
    "ubuntu@1.2.0", "web/nginx", "build 1a2b of x@1.0.0", "Mozilla/5.0", '{"state": ["pending", "running"]}',
    "curl https://u:p@h/x", "API_KEY=1", "Bearer abc", "x?SIG=1", "eyJhbGciOi", "my Secret", "PWD=1",
    "pa\u017f\u017fword=x", "caf\u00e9", "\u212aey=1", '{"clientSecret": "[REDACTED]"}', "token.create",
    '{"method": "password"}', '{"password": "x"}', "PASSWORD = 1", "New-User -Password x",
])
def test_postgresql_flags_every_row_the_python_check_would(db, text):
    """The COPY's screening flag (SQL) is never False where portal.redact would look closer."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the screening flag is computed by PostgreSQL")
    with stored_before_redaction_rules():
        audit.record("x.y", actor="system", label=text)
    statement, params = audit_export.copy_sql(AuditEvent.objects.all(), through_id=1)
    with connection.cursor() as cursor:
        cursor.execute(statement.removeprefix("COPY (").removesuffix(") TO STDOUT WITH (FORMAT csv)"), params)
        flagged = cursor.fetchone()[0]
    from portal.redact import might_contain_secret

    assert flagged == (might_contain_secret(text) or not text.isascii()), text


def test_events_stored_under_the_current_rules_are_not_screened_again(db):
    """record() redacted them with the same rules; only older events pay for screening."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the screening flag is computed by PostgreSQL")
    audit.record("x.y", actor="system", label="token password=[REDACTED]")
    with stored_before_redaction_rules():
        audit.record("x.y", actor="system", label="token password=hunter22")
    statement, params = audit_export.copy_sql(AuditEvent.objects.all(), through_id=2)
    with connection.cursor() as cursor:
        cursor.execute(statement.removeprefix("COPY (").removesuffix(") TO STDOUT WITH (FORMAT csv)"), params)
        assert [row[0] for row in cursor.fetchall()] == [False, True]
    statement, params = audit_export.copy_sql(AuditEvent.objects.all(), through_id=2, screen_all=True)
    with connection.cursor() as cursor:
        cursor.execute(statement.removeprefix("COPY (").removesuffix(") TO STDOUT WITH (FORMAT csv)"), params)
        assert [row[0] for row in cursor.fetchall()] == [True, True]
