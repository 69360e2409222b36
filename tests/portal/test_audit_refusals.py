"""Refusals cannot flood the audit trail: one event per (action, address, actor, reason) and minute.

The first refusal of a key is an event; repeats within AUDIT_REFUSAL_WINDOW_SECONDS are counted,
and the key's next event after the window carries the count (`changes["repeats"]`). Ending the
window early (setting it to 0) stands in for waiting a minute.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal import audit, throttle
from portal.models import AuditEvent

ADDRESS = "198.51.100.7"


@pytest.fixture(autouse=True)
def fresh_throttle():
    yield
    for name in ("bob", "nobody"):
        throttle.clear(name, ADDRESS)


def fail_sign_in(client, username="nobody", address=ADDRESS):
    return client.post(reverse("portal:login"), {"username": username, "password": "wrong"}, REMOTE_ADDR=address)


def failures():
    return list(AuditEvent.objects.filter(action="auth.login_failed").order_by("id"))


def test_a_hundred_failed_sign_ins_in_a_minute_are_one_event_and_a_count(client, db, settings):
    settings.LOGIN_FAILURE_LIMIT = 1000  # every attempt is checked, none throttled
    for _ in range(100):
        assert fail_sign_in(client).status_code == 200

    [first] = failures()
    assert first.changes["reason"] == "invalid credentials"
    assert "repeats" not in first.changes

    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 0  # the minute is over
    fail_sign_in(client)

    first_again, second = failures()
    assert first_again == first
    assert second.changes["repeats"] == {"of": first.id, "count": 99}
    assert audit.verify_chain().ok


def test_guessing_one_account_stays_bounded_once_it_is_locked(client, bob, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    for _ in range(100):
        fail_sign_in(client, "bob")

    events = failures()
    assert [event.changes["reason"] for event in events] == ["invalid credentials", "throttled"]
    assert {event.actor_name for event in events} == {"bob"}

    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 0
    fail_sign_in(client, "bob")
    assert failures()[-1].changes["repeats"] == {"of": events[1].id, "count": 94}


def test_another_address_is_another_key(client, db, settings):
    settings.LOGIN_FAILURE_LIMIT = 1000
    for address in ("198.51.100.7", "198.51.100.8", "198.51.100.7", "198.51.100.8"):
        fail_sign_in(client, address=address)

    assert [event.actor_ip for event in failures()] == ["198.51.100.7", "198.51.100.8"]
    throttle.clear("nobody", "198.51.100.8")


def test_repeated_denials_are_one_event_and_a_count(client, bob, settings):
    client.force_login(bob)
    for _ in range(50):
        assert client.get(reverse("portal:audit-history"), REMOTE_ADDR=ADDRESS).status_code == 403

    [denied] = AuditEvent.objects.filter(action="access.denied")
    assert (denied.actor_name, denied.actor_ip) == ("bob", ADDRESS)

    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 0
    client.get(reverse("portal:audit-history"), REMOTE_ADDR=ADDRESS)
    assert AuditEvent.objects.filter(action="access.denied").latest("id").changes["repeats"] == {
        "of": denied.id, "count": 49}


def test_refusals_outside_a_web_request_are_all_recorded(db):
    for _ in range(3):
        audit.record_refusal("access.denied", actor="worker:host", changes={"reason": "x"}, outcome="denied")

    assert AuditEvent.objects.filter(action="access.denied").count() == 3
