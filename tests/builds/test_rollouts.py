"""Rollouts: planning over layer ranges, the drafts a click prepares, waves, the threshold.

The advance step and the build steps run in this process here (the RQ entry points only wrap
them); tests/builds/test_rollout_faults.py drives a rollout with real workers and kills them.
"""

from __future__ import annotations

import io
import json
import time

import django_rq
import pytest
from django.core.management import call_command

from builds import approvals, monitor, queue, rollouts
from builds.models import Build, Rollout, RolloutItem, RolloutWave
from notify import catalog
from notify.models import OutboxEvent
from portal.models import AuditEvent
from tests import factories
from tests.support.workers import submit

pytestmark = pytest.mark.django_db(transaction=True)
FAIL = [{"type": "Shell", "name": "app", "inline": ["exit 1"]}]


@pytest.fixture
def world(alice, web, data_dept):
    """Gold 1.0.0 and 1.1.0 (published); web has three layers accepting ^1, data one
    accepting only ~1.0 (it excludes 1.1.0)."""
    gold = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(gold, "1.0.0", actor=alice)
    new = factories.make_gold_version(gold, "1.1.0", actor=alice)
    layers = {}
    for slug in ("api", "front", "jobs"):
        layers[slug] = factories.make_layer(web, gold, slug)
        factories.make_layer_version(layers[slug], "1.0.0", accepts="^1")
    layers["etl"] = factories.make_layer(data_dept, gold, "etl")
    factories.make_layer_version(layers["etl"], "1.0.0", accepts="~1.0")
    return new, layers


def queued_job_ids():
    return set(django_rq.get_queue(queue.QUEUE).job_ids)


def drive(rollout, timeout=60):
    """Advance, submit and sweep until the rollout leaves `running`."""
    deadline = time.monotonic() + timeout
    while True:
        rollouts.advance(rollout.pk)
        rollout.refresh_from_db()
        if rollout.state != Rollout.State.RUNNING:
            return rollout
        for build in Build.objects.filter(state=Build.State.PENDING):
            submit(build.pk)
        monitor.sweep()
        assert time.monotonic() < deadline, f"rollout still {rollout.state}"
        time.sleep(0.1)


def test_plan_layers_splits_by_range_and_skips_unpublished():
    class L:
        def __init__(self, dept, slug):
            self.department = type("D", (), {"slug": dept})()
            self.slug = slug

    class V:
        def __init__(self, accepts):
            self.accepts = accepts

    builds, needs = rollouts.plan_layers("2.0.0", [(L("b", "x"), V("^1")), (L("a", "y"), V("*")), (L("a", "z"), None)])
    assert [p.layer.slug for p in builds] == ["y"]
    assert [p.layer.slug for p in needs] == ["x"]


@pytest.mark.parametrize("count, canary, size, expected", [
    (0, 1, 10, []), (1, 1, 10, [1]), (5, 1, 2, [1, 2, 2]), (5, 0, 2, [2, 2, 1]), (3, 5, 2, [3])])
def test_assign_waves_puts_a_canary_first(count, canary, size, expected):
    assert rollouts.assign_waves(count, canary, size) == expected


def test_it_plans_in_range_layers_and_lists_the_others(world, alice):
    new, _layers = world
    rollout = rollouts.rollout_create(actor=alice, gold_version=new, canary_size=1, wave_size=2)
    assert rollout.state == Rollout.State.PLANNED
    waves = list(rollout.waves.order_by("number"))
    assert [w.number for w in waves] == [0, 1]
    assert [str(i) for i in waves[0].items.all()] == ["web/api@1.0.0"]
    assert sorted(str(i) for i in waves[1].items.all()) == ["web/front@1.0.0", "web/jobs@1.0.0"]
    needs = rollout.items.get(kind=RolloutItem.Kind.NEEDS_ACTION)
    assert str(needs) == "data/etl@1.0.0"
    assert rollout.estimate["builds"] == 3
    assert Build.objects.count() == 0
    assert AuditEvent.objects.filter(action="rollout.create", object_id=str(rollout.uuid)).count() == 1


def test_one_click_prepares_a_draft_rebased_on_the_new_version(world, alice, carol, bob):
    new, _layers = world
    rollout = rollouts.rollout_create(actor=alice, gold_version=new)
    needs = rollout.items.get(kind=RolloutItem.Kind.NEEDS_ACTION)
    with pytest.raises(approvals.NotAllowed):
        rollouts.rollout_prepare_draft(actor=bob, item=needs)  # another department's layer
    draft = rollouts.rollout_prepare_draft(actor=carol, item=needs)
    assert draft.version == "1.1.0"
    assert draft.status == draft.Status.DRAFT
    assert draft.accepts == "~1.0 || ^1"
    assert draft.customize == needs.layer_version.customize
    assert rollouts.rollout_prepare_draft(actor=carol, item=needs) == draft  # a second click changes nothing
    needs.refresh_from_db()
    assert needs.draft == draft
    assert AuditEvent.objects.filter(action="layer_version.create", object_id=str(draft.uuid)).count() == 1


def test_only_the_security_team_creates_rollouts(world, bob):
    new, _ = world
    with pytest.raises(approvals.NotAllowed):
        rollouts.rollout_create(actor=bob, gold_version=new)


def test_a_rollout_builds_each_layer_once_wave_after_wave(world, alice, azure_emulator):
    azure_emulator.set_time_scale(20000)
    new, _layers = world
    rollout = rollouts.rollout_create(actor=alice, gold_version=new, canary_size=1, wave_size=2,
                                      channel="production")
    rollouts.rollout_start(actor=alice, rollout=rollout)
    rollout = drive(rollout)
    assert rollout.state == Rollout.State.SUCCEEDED
    assert list(rollout.waves.values_list("state", flat=True)) == ["succeeded", "succeeded"]
    items = rollout.items.filter(kind=RolloutItem.Kind.BUILD)
    assert Build.objects.count() == 3
    assert {i.build.state for i in items} == {"succeeded"}
    assert {i.build.layer_versions.get() for i in items} == {i.layer_version for i in items}
    # The canary ended before the next wave was requested.
    canary = items.get(wave__number=0).build
    assert all(i.build.created_at >= canary.finished_at for i in items.filter(wave__number=1))
    # Promotion is a request for somebody else to approve, never a promotion.
    assert rollout.promotion_request.kind == "promotion"
    assert rollout.promotion_request.state == "pending"
    assert list(OutboxEvent.objects.filter(object_id=str(rollout.uuid)).order_by("pk").values_list("type", flat=True)) == [
        "rollout.started", "rollout.wave_done", "rollout.wave_done", "rollout.finished"]
    for event in OutboxEvent.objects.filter(object_id=str(rollout.uuid)):
        assert catalog.schema_problems(event.body) == [], event.type
    actions = list(AuditEvent.objects.filter(object_id=str(rollout.uuid)).order_by("pk").values_list("action", flat=True))
    assert actions == ["rollout.create", "rollout.start", "rollout.wave_done", "rollout.wave_done", "rollout.finish"]


def test_a_wave_over_the_threshold_stops_and_resumes_after_the_fix(world, alice, azure_emulator, web):
    azure_emulator.set_time_scale(20000)
    new, layers = world
    factories.make_layer_version(layers["front"], "1.1.0", accepts="^1", customize=FAIL)
    rollout = rollouts.rollout_create(actor=alice, gold_version=new, canary_size=1, wave_size=2,
                                      max_failure_rate=0.4)
    rollouts.rollout_start(actor=alice, rollout=rollout)
    rollout = drive(rollout)
    assert rollout.state == Rollout.State.STOPPED
    assert "1 of 2 builds of the wave 1 failed (50%)" in rollout.stop_reason
    wave = rollout.waves.get(number=1)
    assert wave.state == RolloutWave.State.FAILED
    assert wave.failure_rate == 0.5
    assert OutboxEvent.objects.filter(type="rollout.stopped", object_id=str(rollout.uuid)).count() == 1
    # The failing step is said at once, from the live log: the kept copy comes only when the
    # failed build's template is cleaned up, hours later.
    failed = rollout.items.get(layer=layers["front"]).build
    assert not failed.kept_logs.exists()
    (entry,) = [b for b in rollouts.describe(rollout)["waves"][1]["builds"] if b["state"] == "failed"]
    assert entry["id"] == str(failed.uuid)
    assert entry["failure"]["failed_step"]["name"] == "app"
    # The department fixes its layer; alice resumes; only the failed layer is built again.
    factories.make_layer_version(layers["front"], "1.2.0", accepts="^1")
    rollouts.rollout_resume(actor=alice, rollout=rollout)
    rollout = drive(rollout)
    assert rollout.state == Rollout.State.SUCCEEDED
    assert Build.objects.count() == 4
    retried = rollout.items.get(layer=layers["front"], attempt=2)
    assert retried.layer_version.version == "1.2.0"
    assert retried.build.state == "succeeded"


def test_a_build_leaving_the_submit_cap_nudges_the_rollout_it_held_back(world, alice, azure_emulator, settings):
    settings.BUILD_MAX_SUBMITTING = 1
    new, _ = world
    rollout = rollouts.rollout_create(actor=alice, gold_version=new, canary_size=0, wave_size=3)
    rollouts.rollout_start(actor=alice, rollout=rollout)
    rollouts.advance(rollout.pk)
    first = Build.objects.get()  # the cap holds the other two back
    rollout.refresh_from_db()
    nudge = queue.rollout_job_id(rollout)
    assert nudge not in queued_job_ids()
    submit(first.pk)
    assert Build.objects.get(pk=first.pk).state == Build.State.RUNNING
    # Its place is free: the advance is queued now, not at the next sweep.
    assert nudge in queued_job_ids()
    rollouts.advance(rollout.pk)
    assert Build.objects.count() == 2
    second = Build.objects.exclude(pk=first.pk).get()
    submit(second.pk)
    rollouts.advance(rollout.pk)
    third = Build.objects.exclude(pk__in=(first.pk, second.pk)).get()
    # Every build of the wave is requested: the last one's submit nudges nothing.
    rollout.refresh_from_db()
    submit(third.pk)
    assert queue.rollout_job_id(rollout) not in queued_job_ids()


def test_pause_holds_new_builds_and_cancel_cancels_the_rest(world, alice, azure_emulator):
    new, _ = world
    rollout = rollouts.rollout_create(actor=alice, gold_version=new, canary_size=1, wave_size=2)
    rollouts.rollout_start(actor=alice, rollout=rollout)
    rollouts.rollout_pause(actor=alice, rollout=rollout)
    rollouts.advance(rollout.pk)
    assert Build.objects.count() == 0
    rollouts.rollout_resume(actor=alice, rollout=rollout)
    rollouts.advance(rollout.pk)
    assert Build.objects.count() == 1
    rollout = rollouts.rollout_cancel(actor=alice, rollout=rollout)
    assert rollout.state == Rollout.State.CANCELED
    assert Build.objects.get().state == Build.State.CANCELED
    assert set(rollout.waves.values_list("state", flat=True)) == {"canceled"}
    with pytest.raises(rollouts.ServiceError):
        rollouts.rollout_resume(actor=alice, rollout=rollout)


def test_startrollout_prints_the_id_and_showrollout_the_waves(world, alice, azure_emulator):
    out = io.StringIO()
    call_command("startrollout", "ubuntu", "1.1.0", "--user", "alice", "--wave-size", "2", "--canary", "1",
                 "--max-failure-rate", "0.5", stdout=out)
    rollout_id = out.getvalue().strip()
    rollout = Rollout.objects.get(uuid=rollout_id)
    assert rollout.state == "running"
    assert rollout.max_failure_rate == 0.5
    rollouts.advance(rollout.pk)
    out = io.StringIO()
    call_command("showrollout", rollout_id, "--json", stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["id"] == rollout_id
    assert shown["state"] == "running"
    assert [len(w["builds"]) for w in shown["waves"]] == [1, 2]
    canary = shown["waves"][0]["builds"][0]
    assert canary["layer"] == "web/api@1.0.0"
    assert canary["state"] == "pending"
    assert canary["id"] == str(Build.objects.get().uuid)
    assert shown["needs_action"] == [{"item": rollout.items.get(kind="needs_action").pk, "layer": "data/etl@1.0.0",
                                      "accepts": "~1.0", "draft": None, "draft_status": None,
                                      "draft_link": None}]
    out = io.StringIO()
    call_command("showrollout", rollout_id, stdout=out)
    assert "needs a new version: data/etl@1.0.0" in out.getvalue()
