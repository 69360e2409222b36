"""portal.audit.record(): what an event holds, and that what is stored is what was hashed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import audit
from portal.middleware import RequestIdMiddleware
from portal.models import AuditEvent
from tests import factories


def record_in_request(**kwargs) -> AuditEvent:
    """Record through the request middleware, as a view would."""
    holder = {}

    def view(request):
        holder["event"] = audit.record(**kwargs)
        return HttpResponse()

    request = RequestFactory().get("/", HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.7",
                                   HTTP_X_REQUEST_ID="req-123")
    with override_settings(TRUSTED_PROXIES=["203.0.113.7"]):  # only a trusted proxy sets the request id
        RequestIdMiddleware(view)(request)
    return holder["event"]


def test_it_records_the_actor_object_request_and_diff(alice, web):
    image = factories.make_gold_image("ubuntu", actor=alice)
    event = record_in_request(action="gold_image.update", actor=alice, obj=image, department=web,
                              changes={"name": ["Old", "New"]})
    event.refresh_from_db()
    assert (event.actor_id, event.actor_name) == (alice.pk, "alice")
    assert (event.object_type, event.object_id, event.object_label) == ("goldimage", str(image.pk), "Test gold image")
    assert (event.actor_ip, event.user_agent, event.request_id) == ("203.0.113.7", "Firefox/140", "req-123")
    assert event.department_id == web.pk
    assert event.changes == {"name": ["Old", "New"]}
    assert event.outcome == "success"


def test_it_names_workers_and_the_system(db):
    assert audit.record("build.state_change", actor=audit.worker_actor()).actor_name.startswith("worker:")
    assert audit.record("x.y", actor=None).actor_name == "system"


def test_it_chains_each_event_to_the_previous_one(db):
    first = audit.record("a.one", actor="system")
    second = audit.record("a.two", actor="system")
    assert (first.id, first.prev_hash) == (1, audit.GENESIS)
    assert (second.id, second.prev_hash) == (2, first.hash)
    assert audit.verify_chain().ok


def test_it_redacts_secrets_in_labels_and_changes(db):
    event = audit.record("x.y", actor="system", label="https://a.blob.core.windows.net/s.sh?sv=1&sig=SECRETSIG",
                         changes={"clientSecret": ["old", "new"], "script": [None, "curl -H 'Bearer abcdefghijklmnopqrstu'"]})
    event.refresh_from_db()
    assert "SECRETSIG" not in event.object_label and "[REDACTED]" in event.object_label
    assert event.changes["clientSecret"] == "[REDACTED]"
    assert "abcdefghijklmnopqrstu" not in event.changes["script"][1]


def test_time_never_goes_backwards_along_the_chain(db, monkeypatch):
    first = audit.record("a.one", actor="system")
    earlier = first.at - dt.timedelta(minutes=5)
    monkeypatch.setattr(audit.timezone, "now", lambda: earlier)  # the clock stepped back
    second = audit.record("a.two", actor="system")
    assert second.at == first.at
    assert audit.verify_chain().ok


def test_a_rolled_back_change_leaves_no_event_and_no_gap(db):
    from django.db import transaction

    audit.record("a.one", actor="system")
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("a.lost", actor="system")
        raise RuntimeError("the change failed")
    kept = audit.record("a.two", actor="system")
    assert kept.id == 2
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["a.one", "a.two"]
    assert audit.verify_chain().ok


@pytest.mark.parametrize("value, stored", [
    (1e16, 10000000000000000),       # jsonb prints integral numbers without an exponent
    (2.5, 2.5),
    (float("nan"), "nan"),           # jsonb has no NaN
    ("a\x00b", "ab"),                # PostgreSQL text has no NUL
    (dt.date(2026, 1, 2), "2026-01-02"),
    ((1, 2), [1, 2]),
])
def test_it_stores_changes_that_read_back_exactly_as_hashed(db, value, stored):
    event = audit.record("x.y", actor="system", changes={"value": [None, value]})
    event.refresh_from_db()
    assert event.changes == {"value": [None, stored]}
    assert audit.verify_chain().ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**62), max_value=2**62)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.text(max_size=10), json_values, max_size=4), label=st.text(max_size=40))
def test_any_json_document_verifies_after_a_round_trip_through_the_database(db, changes, label):
    audit.record("x.y", actor="system", changes=changes, label=label)
    verdict = audit.verify_chain(since_id=AuditEvent.objects.order_by("-id").values_list("id", flat=True).first())
    assert verdict.ok, verdict.reason


def test_every_stored_field_outside_the_hash_is_documented_as_such():
    """A column the hash does not cover can be changed without `verifyaudit` noticing; docs/audit.md
    must say which ones there are and what changing them can hide."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text()
    stored = {field.attname for field in AuditEvent._meta.concrete_fields}
    unhashed = stored - set(audit.HASHED_FIELDS) - {"prev_hash", "hash"}

    assert "redaction" in unhashed  # the one today; any other must be documented too
    for name in sorted(unhashed):
        assert f"### The `{name}` column is outside the hash" in page
        assert "What changing it can hide" in page
