"""Each event type today's code emits, written by the change itself, with a body its schema accepts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from builds import approvals, lifecycle, services
from builds.models import Build
from notify import catalog, jobs
from notify.models import OutboxEvent
from portal import audit
from portal.models import AuditEvent
from tests import factories
from tests.support import build_rows


def only_event(type_: str) -> OutboxEvent:
    events = list(OutboxEvent.objects.all())
    assert [event.type for event in events] == [type_]
    assert catalog.schema_problems(events[0].body) == []
    return events[0]


@pytest.mark.parametrize(("state", "type_"), [
    (Build.State.SUCCEEDED, "build.succeeded"),
    (Build.State.FAILED, "build.failed"),
    (Build.State.PARTIALLY_SUCCEEDED, "build.partially_succeeded"),
    (Build.State.CANCELED, "build.canceled"),
])
def test_a_build_reaching_a_terminal_state_emits_its_event(world, state, type_):
    build = build_rows.running(world.gold_version, [world.web_layer_version], requested_by=world.bob)
    lifecycle.transition(build, state=state, error_code="ScriptFailed" if state == "failed" else "")
    event = only_event(type_)
    assert event.body["build"]["id"] == str(build.uuid)
    assert event.body["build"]["department"] == "web"
    assert event.department_id == world.web.pk
    assert event.subjects == {"requested_by": [world.bob.pk]}
    assert event.body["link"] == f"http://testserver/builds/{build.uuid}/" + ("#failing-step" if state == "failed" else "")


def test_a_transition_that_changes_nothing_emits_nothing(world):
    build = build_rows.running(world.gold_version, [world.web_layer_version], requested_by=world.bob)
    lifecycle.transition(build, sub_state="Validating")
    assert not OutboxEvent.objects.exists()


def test_canceling_a_pending_build_emits_build_canceled(world):
    build = build_rows.make_build(world.gold_version, [world.web_layer_version], requested_by=world.bob)
    services.build_cancel(actor=world.bob, build=build)
    only_event("build.canceled")


def test_a_build_stuck_canceling_emits_build_stuck_once(world, settings):
    build = build_rows.running(world.gold_version, [world.web_layer_version], requested_by=world.bob)
    Build.objects.filter(pk=build.pk).update(state=Build.State.CANCELING,
                                             cancel_requested_at=timezone.now() - dt.timedelta(hours=2))
    build.refresh_from_db()
    lifecycle.report_stuck_canceling(build)
    build.refresh_from_db()
    lifecycle.report_stuck_canceling(build)
    only_event("build.stuck")


def test_the_event_rolls_back_with_the_change(world):
    build = build_rows.running(world.gold_version, [world.web_layer_version], requested_by=world.bob)
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.transition(build, state=Build.State.FAILED)
        raise RuntimeError("the writer fails after the transition")
    assert not OutboxEvent.objects.exists()


def test_publishing_deprecating_and_revoking_a_gold_version_emit_their_events(world):
    draft = services.gold_version_create(actor=world.alice, gold_image=world.gold_version.gold_image,
                                         version="1.1.0", based_on=world.gold_version)
    services.gold_version_publish(actor=world.alice, gold_version=draft, lookups=False)
    services.gold_version_deprecate(actor=world.alice, gold_version=draft, reason="1.2 is out")
    services.gold_version_revoke(actor=world.alice, gold_version=draft, reason="CVE")
    events = list(OutboxEvent.objects.order_by("id"))
    assert [event.type for event in events] == ["version.published", "version.deprecated", "version.revoked"]
    for event in events:
        assert catalog.schema_problems(event.body) == []
        assert event.body["version"]["id"] == str(draft.uuid)
        assert event.subjects == {"owners": [world.alice.pk]}
    assert events[2].body["version"]["reason"] == "CVE"
    assert events[2].body["version"]["actor"] == "alice"


def test_a_broken_audit_chain_emits_audit_verify_failed_once(world):
    assert jobs.audit_verify()["ok"]
    victim = AuditEvent.objects.order_by("id")[2]
    with transaction.atomic(), audit.maintenance():  # PostgreSQL refuses the edit otherwise
        AuditEvent.objects.filter(pk=victim.pk).update(object_label="rewritten")
    result = jobs.audit_verify()
    jobs.audit_verify()
    assert result["bad_event_id"] == victim.pk
    event = only_event("audit.verify_failed")
    assert event.body["audit"]["bad_event_id"] == victim.pk
    assert event.body["link"] == "http://testserver/audit/verify/"


# Rollout and source events are emitted by those features' own tests, which check their schemas.
EMITTING_TESTS = (Path(__file__), Path(__file__).parents[1] / "builds" / "test_rollouts.py",
                  Path(__file__).parents[1] / "builds" / "test_source_watch.py")


def test_every_type_emitted_today_has_a_test():
    source = "".join(path.read_text() for path in EMITTING_TESTS)
    for event_type in catalog.TYPES:
        if event_type.emitted:
            assert f'"{event_type.name}"' in source, event_type.name


def test_a_layer_publish_request_emits_requested_then_approved_to_the_departments_people(world, grace):
    draft = factories.make_layer_version(world.web_layer_version.layer, version="1.1.0", publish=False,
                                         actor=world.bob)
    request = approvals.publish_request_create(actor=world.bob, target=draft, extra_problems=[])
    approvals.publish_request_approve(actor=grace, request=request, comment="fine")
    events = list(OutboxEvent.objects.order_by("id"))
    assert [event.type for event in events] == ["approval.requested", "approval.approved"]
    for event in events:
        assert catalog.schema_problems(event.body) == []
        assert event.department_id == world.web.pk
        assert event.subjects == {"requested_by": [world.bob.pk]}
        assert event.body["approval"]["subject"] == {"type": "layer", "id": str(draft.uuid), "label": str(draft)}
        assert event.body["link"] == f"http://testserver/approvals/{request.uuid}/"
    assert events[1].body["approval"]["decided_by"] == "grace"


def test_a_rejection_emits_approval_rejected_and_a_promotion_emits_version_promoted(world, frank):
    draft = services.gold_version_create(actor=world.alice, gold_image=world.gold_version.gold_image,
                                         version="1.1.0", based_on=world.gold_version)
    request = approvals.publish_request_create(actor=world.alice, target=draft, extra_problems=[])
    approvals.publish_request_reject(actor=frank, request=request, comment="not yet")
    assert [e.type for e in OutboxEvent.objects.order_by("id")] == ["approval.requested", "approval.rejected"]
    OutboxEvent.objects.all().delete()

    promotion = approvals.promotion_request_create(actor=world.alice, gold_version=world.gold_version,
                                                   channel="preview")
    approvals.publish_request_approve(actor=frank, request=promotion)
    assert [e.type for e in OutboxEvent.objects.order_by("id")] == [
        "approval.requested", "version.promoted", "approval.approved"]
    promoted = OutboxEvent.objects.get(type="version.promoted")
    assert catalog.schema_problems(promoted.body) == []
    assert promoted.body["version"]["reason"] == "promoted to preview"
