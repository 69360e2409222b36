"""E-mail through a real SMTP server (aiosmtpd): one message per event and recipient, plain text
and HTML, the unsubscribe link without sign-in, digests, subscriptions and their defaults."""

from __future__ import annotations

import re

from django.db import transaction

from builds import lifecycle
from builds.models import Build
from notify import delivery, jobs, services
from notify.models import Delivery, OutboxEvent
from portal import audit
from portal.models import AuditEvent
from tests.notify.conftest import drain
from tests.support import build_rows


def fail_build(world, layer_version=None, requested_by=None):
    build = build_rows.running(world.gold_version, [layer_version or world.web_layer_version],
                               requested_by=requested_by or world.bob)
    return lifecycle.transition(build, state=Build.State.FAILED, error_code="ScriptFailed", error_message="exit 1")


def parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def test_an_editor_gets_their_departments_failure_by_default_with_a_link_to_the_failing_step(world, smtp):
    build = fail_build(world)
    drain()
    assert [m["to"] for m in smtp.messages] == [["bob@example.com"]]  # carol (data) and nobody else by default
    message = smtp.messages[0]["message"]
    assert message["Subject"] == "[Goldsmith] Build failed: ubuntu 1.0.0 (web)"
    text, html = parts(message)
    assert f"http://testserver/builds/{build.uuid}/#failing-step" in text
    assert f'href="http://testserver/builds/{build.uuid}/#failing-step"' in html
    assert "Stop these messages: http://testserver/notifications/unsubscribe/" in text
    key = Delivery.objects.get(recipient=world.bob).idempotency_key
    assert message["X-Goldsmith-Idempotency-Key"] == key
    assert message["Message-ID"] == f"<{key}@goldsmith>"
    assert str(message["List-Unsubscribe"]).strip().startswith("<http://testserver/notifications/unsubscribe/")


def test_the_unsubscribe_link_works_without_signing_in_and_asks_first(world, smtp, client):
    fail_build(world)
    drain()
    text, _ = parts(smtp.messages[0]["message"])
    link = re.search(r"Stop these messages: http://testserver(\S+)", text).group(1)
    page = client.get(link)
    assert page.status_code == 200
    assert b"Stop receiving" in page.content
    assert ("build.failed", "department") in services.subscriptions(world.bob)  # GET changed nothing
    assert client.post(link).status_code == 200
    assert ("build.failed", "department") not in services.subscriptions(world.bob)
    event = AuditEvent.objects.get(action="notify.subscriptions_update")
    assert event.actor_id == world.bob.pk
    assert event.changes["via"] == [None, "unsubscribe link"]
    fail_build(world)
    drain()
    assert len(smtp.messages) == 1


def test_a_forged_unsubscribe_link_is_refused(world, client):
    assert client.get("/notifications/unsubscribe/not-a-token/").status_code == 400
    assert client.post("/notifications/unsubscribe/not-a-token/").status_code == 400


def test_more_than_the_threshold_within_the_window_becomes_one_digest(world, smtp, settings):
    settings.NOTIFY_DIGEST_THRESHOLD = 2
    for _ in range(5):
        fail_build(world)
    drain()
    assert len(smtp.messages) == 2  # the first two at once
    held = Delivery.objects.filter(recipient=world.bob, status=Delivery.Status.HELD)
    assert held.count() == 3
    held.update(next_attempt_at=held.first().created_at)  # the window has passed
    assert delivery.send_digest(world.bob.pk) == 3
    assert len(smtp.messages) == 3
    digest = smtp.messages[-1]["message"]
    assert digest["Subject"] == "[Goldsmith] 3 notifications"
    text, _ = parts(digest)
    assert text.count("Build failed") == 3
    assert set(Delivery.objects.filter(recipient=world.bob).values_list("status", flat=True)) == {"delivered"}
    assert Delivery.objects.filter(recipient=world.bob, digest=True).count() == 3


def test_a_user_chooses_subscriptions_on_their_profile(world, smtp, client):
    client.force_login(world.alice)
    page = client.get("/profile/notifications/")
    assert page.status_code == 200
    assert b"id=\"defaults-note\"" in page.content
    response = client.post("/profile/notifications/", {"subscription": ["build.failed|all", "version.revoked|owned"]})
    assert response.status_code == 302
    assert services.subscriptions(world.alice) == {("build.failed", "all"), ("version.revoked", "owned")}
    assert AuditEvent.objects.filter(action="notify.subscriptions_update", actor=world.alice).count() == 1
    fail_build(world)
    drain()
    assert sorted(m["to"][0] for m in smtp.messages) == ["alice@example.com", "bob@example.com"]


def test_my_builds_reach_the_requester_only(world, smtp):
    services.subscriptions_set(actor=world.carol, user=world.carol, chosen={("build.succeeded", "mine")})
    build = build_rows.running(world.gold_version, [world.data_layer_version], requested_by=world.carol)
    lifecycle.transition(build, state=Build.State.SUCCEEDED)
    other = build_rows.running(world.gold_version, [world.web_layer_version], requested_by=world.bob)
    lifecycle.transition(other, state=Build.State.SUCCEEDED)
    drain()
    assert [m["to"] for m in smtp.messages] == [["carol@example.com"]]


def test_a_subscription_to_everything_never_reaches_beyond_what_the_user_can_see(world, smtp):
    services.subscriptions_set(actor=world.carol, user=world.carol, chosen={("build.failed", "all")})
    fail_build(world)  # web's: carol is an editor of data
    drain()
    assert [m["to"] for m in smtp.messages] == [["bob@example.com"]]
    assert not Delivery.objects.filter(recipient=world.carol).exists()


def test_auditors_hear_of_a_broken_audit_chain_by_default(world, smtp):
    first = AuditEvent.objects.order_by("id").first()
    with transaction.atomic(), audit.maintenance():  # PostgreSQL refuses the edit otherwise
        AuditEvent.objects.filter(pk=first.pk).update(object_label="rewritten")
    jobs.audit_verify()
    drain()
    assert OutboxEvent.objects.get().type == "audit.verify_failed"
    assert [m["to"] for m in smtp.messages] == [["dave@example.com"]]
