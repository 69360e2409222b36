"""The history page: who may read it, filters, label search, keyset pages, diffs, constant queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import audit
from portal.models import AuditEvent
from tests import factories
from tests.support.audit import expect_no_event, stored_before_redaction_rules

URL = "/audit/"


def event(action="gold_version.update", actor="alice", **kwargs) -> AuditEvent:
    return audit.record(action, actor=actor, **kwargs)


@pytest.mark.parametrize("persona, status", [
    ("alice", 200), ("dave", 200), ("bob", 403), ("carol", 403), ("erin", 403), ("sam", 403),
])
def test_it_is_for_auditors_and_the_security_team(request, client, persona, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(URL).status_code == status


def test_anonymous_users_are_sent_to_sign_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_refusal_is_audited(client, bob):
    client.force_login(bob)
    client.get(URL)
    denied = AuditEvent.objects.get(action="access.denied")
    assert denied.actor_name == "bob" and denied.outcome == "denied"


def test_it_only_answers_get(client, dave):
    client.force_login(dave)
    assert client.post(URL).status_code == 405


def test_reading_it_is_not_audited(client, dave):
    event()
    client.force_login(dave)
    with expect_no_event():
        client.get(URL)


def test_it_lists_events_newest_first_with_a_readable_diff(client, dave, web):
    event("gold_version.update", label="ubuntu@1.0.0", department=web,
          changes={"changelog": ["First cut", "Second cut"], "vm_profile": [{"vmSize": "D2"}, {"vmSize": "D4", "osDiskSizeGB": 64}]})
    event("layer.create", actor="bob", label="web/nginx", changes={"slug": [None, "nginx"]})
    client.force_login(dave)
    page = client.get(URL).content.decode()
    assert page.index("web/nginx") < page.index("ubuntu@1.0.0")
    assert "<del aria-label=\"before\">First cut</del>" in page and "<ins aria-label=\"after\">Second cut</ins>" in page
    assert "osDiskSizeGB" in page and 'class="ins"' in page  # the structured value gets a line diff
    assert "Web Platform" in page


def test_it_redacts_secrets_that_reached_the_trail(client, dave, monkeypatch):
    """Belt and braces: an event stored before a pattern existed is still shown masked."""
    with stored_before_redaction_rules():
        event(label="https://x.blob.core.windows.net/a.sh?sig=VERYSECRET", changes={"script": [None, "password=hunter22"]})
    client.force_login(dave)
    page = client.get(URL).content.decode()
    assert "VERYSECRET" not in page and "hunter22" not in page and "[REDACTED]" in page


@pytest.fixture
def mixed(db, web, data_dept):
    """Events of every kind the filters tell apart."""
    event("gold_version.publish", actor="alice", label="ubuntu@1.0.0", object_type="goldimageversion",
          object_id="aaaa")
    event("layer.create", actor="bob", label="web/nginx", department=web, object_type="layer", object_id="1")
    event("build.request", actor="bob", label="build 1234 of ubuntu@1.0.0", department=web, object_type="build",
          object_id="b1")
    event("build.state_change", actor="worker:host1", label="build 1234 of ubuntu@1.0.0", department=web,
          object_type="build", object_id="b1")
    event("access.denied", actor="carol", label="web/nginx", department=data_dept, outcome="denied")
    event("layer.create", actor="carol", label="data/spark", department=data_dept, object_type="layer",
          object_id="2")


def labels(client, query: str) -> list[str]:
    response = client.get(URL + "?" + query)
    assert response.status_code == 200
    return [row.event.action + " " + row.event.object_label for row in response.context["rows"]]


@pytest.mark.parametrize("query, expected", [
    ("actor=bob", ["build.request build 1234 of ubuntu@1.0.0", "layer.create web/nginx"]),
    ("department=data", ["layer.create data/spark", "access.denied web/nginx"]),
    ("action=layer.create", ["layer.create data/spark", "layer.create web/nginx"]),
    ("action=build.", ["build.state_change build 1234 of ubuntu@1.0.0", "build.request build 1234 of ubuntu@1.0.0"]),
    ("action=build*", ["build.state_change build 1234 of ubuntu@1.0.0", "build.request build 1234 of ubuntu@1.0.0"]),
    ("object_type=build&object_id=b1", ["build.state_change build 1234 of ubuntu@1.0.0",
                                         "build.request build 1234 of ubuntu@1.0.0"]),
    ("outcome=denied", ["access.denied web/nginx"]),
    ("q=nginx", ["access.denied web/nginx", "layer.create web/nginx"]),
    ("q=ubu+1234", ["build.state_change build 1234 of ubuntu@1.0.0", "build.request build 1234 of ubuntu@1.0.0"]),
    ("q=spark&actor=carol", ["layer.create data/spark"]),
    ("q=nothing-like-this", []),
    ("department=web&actor=worker:host1", ["build.state_change build 1234 of ubuntu@1.0.0"]),
])
def test_it_filters(client, dave, mixed, query, expected):
    client.force_login(dave)
    assert labels(client, query) == expected


def test_it_filters_by_time_range_in_the_viewers_zone(client, dave, monkeypatch):
    moments = [dt.datetime(2026, 3, day, 12, tzinfo=dt.UTC) for day in (1, 2, 3, 4)]
    for number, moment in enumerate(moments):
        monkeypatch.setattr(audit.timezone, "now", lambda moment=moment: moment)
        event(label=f"day {number + 1}")
    monkeypatch.undo()
    client.force_login(dave)
    assert labels(client, "since=2026-03-02&until=2026-03-03") == ["gold_version.update day 3",
                                                                  "gold_version.update day 2"]
    assert labels(client, "since=2026-03-04") == ["gold_version.update day 4"]
    assert labels(client, "until=2026-03-01") == ["gold_version.update day 1"]
    assert labels(client, "since=2027-01-01") == []
    client.cookies["goldsmith_tz"] = "Pacific/Kiritimati"  # UTC+14: day 1 at noon UTC is 2 March there
    assert labels(client, "since=2026-03-02&until=2026-03-02") == ["gold_version.update day 1"]


def test_a_wrong_range_is_reported_next_to_the_field(client, dave, mixed):
    client.force_login(dave)
    response = client.get(URL + "?since=2026-03-05&until=2026-03-01")
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()
    assert len(response.context["rows"]) == 6


def test_it_pages_by_keyset_in_both_directions(client, dave):
    for number in range(120):
        event(label=f"event {number}")
    client.force_login(dave)
    first = client.get(URL).context
    assert [row.event.id for row in first["rows"]] == list(range(120, 70, -1))
    assert first["page"].newer is None and first["page"].older == 71
    second = client.get(URL + "?before=71").context
    assert [row.event.id for row in second["rows"]] == list(range(70, 20, -1))
    third = client.get(URL + "?before=21").context
    assert [row.event.id for row in third["rows"]] == list(range(20, 0, -1))
    assert third["page"].older is None and third["page"].newer == 20
    back = client.get(URL + "?after=20").context
    assert [row.event.id for row in back["rows"]] == list(range(70, 20, -1))
    assert back["page"].newer == 70 and back["page"].older == 21
    assert client.get(URL + "?before=not-a-number").status_code == 200


def test_the_filters_survive_paging(client, dave):
    for number in range(120):
        event("layer.create" if number % 2 else "build.request", label=f"event {number}")
    client.force_login(dave)
    response = client.get(URL + "?action=layer.create")
    page = response.content.decode()
    older = response.context["page"].older
    assert f'href="/audit/?action=layer.create&amp;before={older}"' in page
    rows = client.get(URL + f"?action=layer.create&before={older}").context["rows"]
    assert {row.event.action for row in rows} == {"layer.create"} and len(rows) == 10


def test_htmx_gets_the_table_alone(client, dave, mixed):
    client.force_login(dave)
    response = client.get(URL + "?actor=bob", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body and "layer.create" in body
    assert "HX-Request" in response["Vary"]


def test_the_export_form_carries_the_filters_for_auditors_only(client, dave, alice, mixed):
    client.force_login(dave)
    page = client.get(URL + "?actor=bob&outcome=success").content.decode()
    assert 'action="/audit/export/"' in page
    assert '<input type="hidden" name="actor" value="bob">' in page
    client.force_login(alice)
    assert 'action="/audit/export/"' not in client.get(URL).content.decode()


def count_queries(client, url: str) -> int:
    client.get(url)  # the first request after sign-in also saves the session
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("query", ["", "?actor=alice", "?q=event", "?since=2000-01-01&until=2100-01-01",
                                   "?department=web&outcome=success"])
def test_the_query_count_does_not_grow_with_the_rows_shown(client, dave, web, query):
    client.force_login(dave)
    event(label="event 0", department=web)
    few = count_queries(client, URL + query)
    for number in range(1, 80):
        event(label=f"event {number}", department=web, changes={"n": [number - 1, number]})
    many_response = client.get(URL + query)
    assert len(many_response.context["rows"]) == 50
    assert count_queries(client, URL + query) == few


def test_it_links_builds_to_their_provenance_and_versions_to_their_image(client, dave, alice):
    image = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(image, actor=alice)
    event("build.request", label="build 1 of ubuntu@1.0.0", object_type="build",
          object_id="5f0c5a36-6a38-4c8a-9d55-8a4f4f6c1a11")
    client.force_login(dave)
    page = client.get(URL).content.decode()
    assert "/audit/builds/5f0c5a36-6a38-4c8a-9d55-8a4f4f6c1a11/" in page
    assert "/audit/gold/ubuntu/" in page


def test_label_search_uses_the_full_text_index_on_postgresql(db):
    if connection.vendor != "postgresql":
        pytest.skip("full-text search is PostgreSQL's; SQLite matches substrings")
    from portal import audit_history

    queryset = audit_history.search_labels(AuditEvent.objects.order_by("-id"), "ubuntu 1.0")
    sql, params = queryset.query.sql_with_params()
    assert "regexp_replace" in sql and params[-1] == "ubuntu:* & 1:* & 0:*"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "audit_label_search" in plan


def test_a_refused_outsider_is_not_shown_as_a_member_of_the_objects_department(client, alice, bob, carol, dave, web):
    layer = factories.make_layer(web, factories.make_gold_image("ubuntu", actor=alice), "nginx", actor=bob)
    client.force_login(carol)
    assert client.get(f"/layers/web/{layer.slug}/").status_code == 404  # carol (data) is refused web's layer
    denied = AuditEvent.objects.get(action="access.denied", actor_name="carol")
    client.force_login(dave)
    page = client.get(URL, {"actor": "carol"}).content.decode()
    row = page[page.index(f'title="Event {denied.id}:'):]
    row = row[:row.index("</tr>")]
    assert '<td class="actor">carol</td>' in row  # the actor's cell names the actor and nothing else
    assert "<span class=\"muted\">Object's department:</span> Web Platform" in row
    detail = client.get(f"/audit/events/{denied.hash}/").content.decode()
    assert "<dt>Object's department</dt><dd>Web Platform</dd>" in detail
    who = detail[detail.index('id="who-heading"'):detail.index('id="what-heading"')]
    assert "Web Platform" not in who
