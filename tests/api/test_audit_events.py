"""GET /api/v1/audit-events/ (auditors and security) and /audit-events/export.csv (auditors)."""

from __future__ import annotations

import csv
import io

import pytest

from portal import audit, audit_export
from portal.models import AuditEvent
from tests.api.conftest import client_with, token_of
from tests.support.audit import audit_mark, events_since

EVENTS = "/api/v1/audit-events/"
EXPORT = "/api/v1/audit-events/export.csv"


@pytest.fixture
def trail(db, web):
    audit.record("layer.create", actor="bob", label="web/nginx", department=web, changes={"slug": [None, "nginx"]})
    audit.record("build.request", actor="bob", label="build 1 of ubuntu@1.0.0", object_type="build", object_id="b1")
    audit.record("access.denied", actor="carol", label="web/nginx", outcome="denied",
                 changes={"password": "hunter2-secret-value", "note": "token=sv=2024&sig=abcdef0123456789"})


def actions(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [event["action"] for event in response.json()["results"]]


@pytest.mark.parametrize("persona, expected", [
    ("dave", 200), ("alice", 200), ("bob", 403), ("carol", 403), ("erin", 403), ("sam", 403), (None, 401)])
def test_who_reads_the_trail(api, trail, request, persona, expected):
    user = request.getfixturevalue(persona) if persona else None

    assert api(user).get(EVENTS).status_code == expected


def test_events_come_newest_first_redacted_with_their_chain(api, dave, trail):
    response = api(dave).get(EVENTS, {"actor": "carol"})

    [event] = response.json()["results"]
    stored = AuditEvent.objects.get(action="access.denied")
    assert event["id"] == stored.id and event["hash"] == stored.hash and event["prev_hash"] == stored.prev_hash
    assert event["outcome"] == "denied" and event["actor"] == "carol"
    assert "hunter2" not in response.content.decode() and "abcdef0123456789" not in response.content.decode()


def test_the_page_filters(api, dave, trail):
    client = api(dave)

    assert actions(client.get(EVENTS, {"action": "build."})) == ["build.request"]
    assert actions(client.get(EVENTS, {"department": "web"})) == ["layer.create"]
    assert actions(client.get(EVENTS, {"outcome": "denied", "actor": "carol"})) == ["access.denied"]
    assert actions(client.get(EVENTS, {"object_type": "build", "object_id": "b1"})) == ["build.request"]
    assert actions(client.get(EVENTS, {"q": "nginx", "actor": "bob"})) == ["layer.create"]


def test_bad_filters_are_all_reported(api, dave, trail):
    response = api(dave).get(EVENTS, {"department": "nowhere", "since": "someday", "limit": "1000"})

    assert response.status_code == 400
    assert {p["path"] for p in response.json()["error"]["problems"]} == {"department", "since", "limit"}


def test_cursors_walk_the_whole_trail_in_constant_queries(api, dave, trail, django_assert_num_queries):
    for index in range(10):
        audit.record("build.state_change", actor="worker:test", label=f"step {index}")
    client = api(dave)
    client.get(EVENTS)
    expected = list(AuditEvent.objects.order_by("-id").values_list("id", flat=True))

    seen, url = [], f"{EVENTS}?limit=4"
    while url:
        with django_assert_num_queries(4):  # token, roles, departments for the filters, events
            page = client.get(url).json()
        seen += [event["id"] for event in page["results"]]
        url = page["next"]

    assert seen == expected


def test_auditors_export_csv_and_the_export_is_recorded(dave, trail):
    client = client_with(token_of(dave))
    mark = audit_mark()

    response = client.get(EXPORT, {"actor": "bob"})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["layer.create", "build.request"]
    [event] = events_since(mark)
    assert event.action == "export.download" and event.actor_name == "dave"
    assert event.changes["filters"] == [None, {"actor": "bob"}]


@pytest.mark.parametrize("persona", ["alice", "bob", "erin", "sam"])
def test_only_auditors_export(persona, trail, request):
    client = client_with(token_of(request.getfixturevalue(persona)))
    mark = audit_mark()

    response = client.get(EXPORT)

    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert [e.action for e in events_since(mark)] == ["access.denied"]


def test_the_export_takes_tokens_only_so_no_other_site_can_trigger_one(client, dave, trail):
    client.force_login(dave)
    mark = audit_mark()

    response = client.get(EXPORT)

    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="goldsmith"'
    assert events_since(mark) == []


def test_bad_export_filters_are_refused_before_anything_is_recorded(dave, trail):
    client = client_with(token_of(dave))
    mark = audit_mark()

    response = client.get(EXPORT, {"until": "not-a-date"})

    assert response.status_code == 400 and response.json()["error"]["problems"][0]["path"] == "until"
    assert events_since(mark) == []


def test_an_export_that_matches_nothing_is_just_the_header(dave, trail):
    """A range before the first event becomes an empty query (on PostgreSQL the COPY path could not run it)."""
    response = client_with(token_of(dave)).get(EXPORT, {"until": "2000-01-01"})

    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode().splitlines() == [",".join(audit_export.COLUMNS)]
