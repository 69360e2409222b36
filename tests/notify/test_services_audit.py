"""Every notification write a person (or the worker) makes records exactly one audit event,
about the right object, and the chain verifies after it (tests/support/audit.py)."""

from __future__ import annotations

import json

import pytest

from notify import delivery, services
from notify.models import Delivery, Endpoint, OutboxEvent
from tests.notify.conftest import drain
from tests.notify.test_webhooks import fail_build
from tests.support.audit import assert_event_about, expect_no_event, expect_one_event


def make_endpoint(world, receiver, **extra):
    endpoint, _ = services.endpoint_create(actor=world.bob, kind="webhook", url=receiver.url,
                                           event_types=["build.failed"], department=world.web, **extra)
    return endpoint


def test_endpoint_create_records_one_event_without_the_url_or_secret(world, receiver):
    with expect_one_event("notify.endpoint_create", actor=world.bob, department=world.web) as caught:
        endpoint, secret = services.endpoint_create(actor=world.bob, kind="webhook", url=receiver.url,
                                                    event_types=["build.failed"], department=world.web)
    assert_event_about(caught.event, endpoint)
    assert caught.event.changes["host"] == [None, "127.0.0.1"]
    assert caught.event.changes["event_types"] == [None, ["build.failed"]]
    stored = json.dumps(caught.event.changes)
    assert receiver.url not in stored and secret not in stored


def test_a_refused_endpoint_records_nothing(world):
    with expect_no_event(), pytest.raises(services.NotifyError):
        services.endpoint_create(actor=world.bob, kind="webhook", url="https://127.0.0.1:1/x",
                                 event_types=["no.such"], department=world.web)
    assert not Endpoint.objects.exists()


def test_endpoint_delete_records_one_event(world, receiver):
    endpoint = make_endpoint(world, receiver)
    uuid = endpoint.uuid
    with expect_one_event("notify.endpoint_delete", object_type="endpoint", object_id=str(uuid),
                          actor=world.alice, department=world.web) as caught:
        services.endpoint_delete(actor=world.alice, endpoint=endpoint)
    assert caught.event.changes["kind"] == ["webhook", None]
    assert not Endpoint.objects.filter(uuid=uuid).exists()


def test_endpoint_enable_records_one_event_and_nothing_when_already_on(world, receiver):
    endpoint = make_endpoint(world, receiver)
    with expect_no_event():
        services.endpoint_enable(actor=world.bob, endpoint=endpoint)
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False, consecutive_failures=20, disabled_reason="x")
    with expect_one_event("notify.endpoint_enable", endpoint, actor=world.bob, department=world.web) as caught:
        services.endpoint_enable(actor=world.bob, endpoint=endpoint)
    assert caught.event.changes == {"enabled": [False, True]}
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.consecutive_failures, endpoint.disabled_reason) == (True, 0, "")


def test_the_worker_disabling_a_failing_endpoint_records_one_event(world, receiver, settings):
    settings.NOTIFY_DISABLE_AFTER = 1
    endpoint = make_endpoint(world, receiver)
    receiver.statuses = [500]
    fail_build(world)
    delivery.fanout(OutboxEvent.objects.get().pk)
    row = Delivery.objects.get(endpoint=endpoint)
    with expect_one_event("notify.endpoint_disable", endpoint, department=world.web) as caught:
        delivery.send(row.pk)
    assert caught.event.changes["enabled"] == [True, False]
    assert caught.event.actor_id is None and caught.event.actor_name.startswith("worker:")


def test_redeliver_records_one_event_and_refuses_a_pending_delivery_silently(world, receiver):
    endpoint = make_endpoint(world, receiver)
    fail_build(world)
    drain()
    row = Delivery.objects.get(endpoint=endpoint)
    with expect_one_event("notify.redeliver", row, actor=world.bob, department=world.web) as caught:
        services.delivery_redeliver(actor=world.bob, delivery=row)
    assert caught.event.changes["status"] == ["delivered", "pending"]
    with expect_no_event(), pytest.raises(services.NotifyError, match="still on its way"):
        services.delivery_redeliver(actor=world.bob, delivery=row)


def test_subscriptions_set_records_one_event_with_what_changed(world):
    with expect_one_event("notify.subscriptions_update", object_type="user", object_id=str(world.bob.pk),
                          actor=world.bob) as caught:
        services.subscriptions_set(actor=world.bob, user=world.bob,
                                   chosen={("build.failed", "department"), ("build.succeeded", "mine")})
    assert caught.event.changes["added"] == [None, ["build.succeeded (mine)"]]
    assert caught.event.changes["via"] == [None, "profile"]


def test_docs_audit_md_lists_every_notification_action():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "".join(path.read_text() for path in sorted((root / "notify").glob("*.py")))
    actions = set(re.findall(r'audit\.record\(\s*"(notify\.[a-z_]+)"', code))
    assert len(actions) == 6, actions
    page = (root / "docs" / "audit.md").read_text()
    assert sorted(action for action in actions if f"| `{action}` |" not in page) == []
