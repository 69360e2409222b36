"""Webhooks, Teams and Slack against real receivers on loopback: signing, headers, retries,
disabling, redelivery and department isolation."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from builds import lifecycle
from builds.models import Build
from notify import delivery, services, signing
from notify.models import Delivery, Endpoint, OutboxEvent
from portal.models import AuditEvent, Membership
from tests.notify.conftest import drain, make_due
from tests.support import build_rows


def fail_build(world, layer_version=None, requested_by=None):
    build = build_rows.running(world.gold_version, [layer_version or world.web_layer_version],
                               requested_by=requested_by or world.bob)
    return lifecycle.transition(build, state=Build.State.FAILED, error_code="ScriptFailed", error_message="exit 1")


def webhook(world, receiver, *, owner=None, department=None, kind="webhook", events=("build.failed",), secret=""):
    endpoint, made = services.endpoint_create(actor=owner or world.bob, kind=kind, url=receiver.url,
                                              event_types=list(events),
                                              department=world.web if department is None else department,
                                              secret=secret)
    return endpoint, made


def test_a_webhook_gets_the_signed_event_with_its_headers(world, receiver):
    endpoint, secret = webhook(world, receiver)
    build = fail_build(world)
    drain()
    (request,) = receiver.requests
    body = json.loads(request["body"])
    assert body["type"] == "build.failed"
    assert body["build"]["id"] == str(build.uuid)
    headers = request["headers"]
    assert headers["X-Goldsmith-Event"] == "build.failed"
    row = Delivery.objects.get(endpoint=endpoint)
    assert headers["X-Goldsmith-Idempotency-Key"] == row.idempotency_key
    assert signing.verify(secret, headers["X-Goldsmith-Signature"], request["body"])
    assert not signing.verify("another secret", headers["X-Goldsmith-Signature"], request["body"])
    assert row.status == Delivery.Status.DELIVERED
    assert row.status_code == 200
    assert row.response_excerpt == '{"ok": true}'
    assert row.latency_ms is not None


def test_the_secret_is_generated_once_and_kept_out_of_the_audit_trail(world, receiver):
    _, secret = webhook(world, receiver)
    assert secret.startswith("whsec_")
    event = AuditEvent.objects.get(action="notify.endpoint_create")
    assert secret not in json.dumps(event.changes)
    assert receiver.url not in json.dumps(event.changes)
    assert event.changes["scope"] == [None, "department:web"]


def test_a_tampered_or_stale_signature_is_refused():
    body = b'{"type":"build.failed"}'
    header = signing.sign("s3cret", body, timestamp=1_700_000_000)
    assert signing.verify("s3cret", header, body, now=1_700_000_100)
    assert not signing.verify("s3cret", header, body + b" ", now=1_700_000_100)
    assert not signing.verify("s3cret", header, body, now=1_700_000_000 + 301)
    assert not signing.verify("s3cret", "v1=abc", body)


def test_teams_gets_an_adaptive_card(world, receiver):
    webhook(world, receiver, kind="teams")
    fail_build(world)
    drain()
    (body,) = receiver.bodies()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert [element["type"] for element in card["body"]] == ["TextBlock", "TextBlock", "FactSet"]
    assert all(set(fact) == {"title", "value"} for fact in card["body"][2]["facts"])
    (action,) = card["actions"]
    assert action["type"] == "Action.OpenUrl"
    assert action["url"].endswith("#failing-step")


def test_slack_gets_block_kit_with_a_text_fallback(world, receiver):
    webhook(world, receiver, kind="slack")
    fail_build(world)
    drain()
    (body,) = receiver.bodies()
    assert body["text"].startswith("Build failed")
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "actions", "context"]
    header, section, actions, _ = body["blocks"]
    assert header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) <= 150
    assert section["text"]["type"] == "mrkdwn"
    assert 1 <= len(section["fields"]) <= 10
    assert all(field["type"] == "mrkdwn" and len(field["text"]) <= 2000 for field in section["fields"])
    (button,) = actions["elements"]
    assert button["type"] == "button"
    assert button["url"].endswith("#failing-step")


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(world, receiver):
    receiver.statuses = [500, 503]
    endpoint, _ = webhook(world, receiver)
    fail_build(world)
    drain()
    row = Delivery.objects.get(endpoint=endpoint)
    assert row.status == Delivery.Status.PENDING
    assert row.attempts == 1
    assert row.response_excerpt == "receiver says no"
    wait = (row.next_attempt_at - timezone.now()).total_seconds()
    assert 25 < wait <= 30
    make_due()
    drain()
    row.refresh_from_db()
    assert row.attempts == 2
    assert 55 < (row.next_attempt_at - timezone.now()).total_seconds() <= 60
    make_due()
    drain()
    row.refresh_from_db()
    assert row.status == Delivery.Status.DELIVERED
    assert len(receiver.requests) == 3
    assert len({request["headers"]["X-Goldsmith-Idempotency-Key"] for request in receiver.requests}) == 1
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_retries_stop_after_the_retry_window(world, receiver, settings):
    receiver.statuses = [500] * 5
    endpoint, _ = webhook(world, receiver)
    fail_build(world)
    # Age the event past the window before the first try: one failure is then final.
    OutboxEvent.objects.update(occurred_at=timezone.now() - dt.timedelta(hours=settings.NOTIFY_RETRY_HOURS))
    drain()
    assert Delivery.objects.get(endpoint=endpoint).status == Delivery.Status.FAILED


def test_an_endpoint_failing_too_often_is_disabled_and_its_owner_told(world, receiver, settings, smtp,
                                                                       django_capture_on_commit_callbacks):
    settings.NOTIFY_DISABLE_AFTER = 3
    receiver.statuses = [500] * 10
    endpoint, _ = webhook(world, receiver)
    for _ in range(3):
        fail_build(world)
    with django_capture_on_commit_callbacks(execute=True):
        drain()
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "3 failed deliveries in a row" in endpoint.disabled_reason
    assert AuditEvent.objects.filter(action="notify.endpoint_disable").count() == 1
    notices = [m for m in smtp.messages if "Endpoint disabled" in m["message"]["Subject"]]
    assert [m["to"] for m in notices] == [["bob@example.com"]]
    make_due()
    drain()
    assert len(receiver.requests) == 3  # nothing more is sent to a disabled endpoint
    assert set(endpoint.deliveries.values_list("status", flat=True)) == {Delivery.Status.SKIPPED}


def test_redeliver_sends_again_with_the_same_key(world, receiver, client):
    endpoint, _ = webhook(world, receiver)
    fail_build(world)
    drain()
    row = Delivery.objects.get(endpoint=endpoint)
    client.force_login(world.bob)
    response = client.post(f"/notifications/endpoints/{endpoint.uuid}/deliveries/{row.uuid}/redeliver/")
    assert response.status_code == 302
    drain()
    keys = [request["headers"]["X-Goldsmith-Idempotency-Key"] for request in receiver.requests]
    assert keys == [row.idempotency_key, row.idempotency_key]
    assert AuditEvent.objects.filter(action="notify.redeliver").count() == 1


def test_a_department_endpoint_never_hears_of_another_departments_builds(world, receiver):
    carols, _ = webhook(world, receiver, owner=world.carol, department=world.data)
    bobs, _ = webhook(world, receiver, owner=world.bob, department=world.web)
    fail_build(world)  # web's
    fail_build(world, world.data_layer_version, world.carol)  # data's
    drain()
    assert sorted(Delivery.objects.filter(endpoint__isnull=False).values_list(
        "endpoint__department__slug", "event__department__slug")) == [
        ("data", "data"), ("web", "web")]
    assert carols.deliveries.count() == 1
    assert bobs.deliveries.count() == 1


def test_an_owner_who_cannot_see_the_build_gets_nothing_even_without_a_department_scope(world, receiver):
    endpoint = Endpoint.objects.create(kind="webhook", url=receiver.url, owner=world.carol, event_types=["build.failed"])
    fail_build(world)
    drain()
    assert not endpoint.deliveries.exists()
    assert receiver.requests == []


def test_an_owner_who_lost_access_before_the_delivery_is_skipped(world, receiver):
    endpoint, _ = webhook(world, receiver)
    fail_build(world)
    delivery.fanout(OutboxEvent.objects.get().pk)
    Membership.objects.filter(user=world.bob).delete()
    drain()
    assert Delivery.objects.get(endpoint=endpoint).status == Delivery.Status.SKIPPED
    assert receiver.requests == []


@pytest.mark.parametrize("outsider", ["carol", "dave"])
def test_outsiders_cannot_open_another_owners_department_endpoint(world, receiver, client, outsider):
    endpoint, _ = webhook(world, receiver)
    client.force_login(getattr(world, outsider))
    assert client.get(f"/notifications/endpoints/{endpoint.uuid}/").status_code == 404


def test_the_security_team_and_the_departments_editors_manage_a_department_endpoint(world, receiver, client):
    endpoint, _ = webhook(world, receiver, owner=world.alice)
    client.force_login(world.bob)
    assert client.get(f"/notifications/endpoints/{endpoint.uuid}/").status_code == 200
