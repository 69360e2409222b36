"""Patch schedules: cron times in a time zone, audited changes, a run that builds once and a
rollout planned (never started) after the build succeeds. Builds run against the emulator."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from builds import approvals, crontimes, monitor, schedules
from builds.models import Build, PatchSchedule, Rollout
from builds.services import ServiceError
from portal.models import AuditEvent
from tests import factories
from tests.support.workers import submit

UTC = dt.UTC


def test_the_second_tuesday_is_computed_in_the_schedule_s_time_zone():
    runs = crontimes.next_runs("0 3 * * 2#2", "Europe/Berlin", dt.datetime(2026, 12, 6, 22, tzinfo=UTC))
    # 03:00 in Berlin is 02:00 UTC in winter.
    assert runs == [dt.datetime(2026, 12, 8, 2, tzinfo=UTC), dt.datetime(2027, 1, 12, 2, tzinfo=UTC),
                    dt.datetime(2027, 2, 9, 2, tzinfo=UTC)]


@pytest.mark.parametrize(("cron", "time_zone", "fields"), [
    ("0 3 * * 2#2", "UTC", set()),
    ("0 3 * *", "UTC", {"cron"}),
    ("0 3 * * * 5", "UTC", {"cron"}),  # seconds are not a field here
    ("every tuesday", "UTC", {"cron"}),
    ("0 3 * * 2", "Mars/Olympus", {"time_zone"}),
])
def test_problems_name_the_bad_field(cron, time_zone, fields):
    assert set(crontimes.problems(cron, time_zone)) == fields


@pytest.fixture
def gold(alice):
    return factories.make_gold_version(factories.make_gold_image("ubuntu", actor=alice), actor=alice)


def test_setting_changing_and_deleting_a_schedule_is_audited(gold, alice):
    schedule = schedules.schedule_set(actor=alice, gold_image=gold.gold_image, cron="0 3 * * 2#2",
                                      time_zone="Europe/Berlin")
    assert schedule.next_run_at > dt.datetime.now(UTC)
    schedules.schedule_set(actor=alice, gold_image=gold.gold_image, cron="0  3 * * 2#2", time_zone="Europe/Berlin")
    schedules.schedule_set(actor=alice, gold_image=gold.gold_image, cron="0 4 * * 2#2", time_zone="Europe/Berlin")
    schedules.schedule_delete(actor=alice, schedule=PatchSchedule.objects.get())

    events = list(AuditEvent.objects.filter(object_type="patchschedule").order_by("pk"))
    assert [event.action for event in events] == ["schedule.create", "schedule.update", "schedule.delete"]
    assert events[1].changes == {"cron": ["0 3 * * 2#2", "0 4 * * 2#2"]}
    assert events[0].actor_name == "alice"
    assert not PatchSchedule.objects.exists()


def test_only_the_security_team_sets_a_schedule_and_bad_input_is_refused(gold, alice, bob):
    with pytest.raises(approvals.NotAllowed):
        schedules.schedule_set(actor=bob, gold_image=gold.gold_image, cron="0 3 * * 2", time_zone="UTC")
    with pytest.raises(ServiceError) as refused:
        schedules.schedule_set(actor=alice, gold_image=gold.gold_image, cron="0 3 * *", time_zone="Nowhere")
    assert {problem.path for problem in refused.value.problems} == {"cron", "time_zone"}
    assert not PatchSchedule.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="schedule.").exists()


def finish(build: Build, timeout=60) -> Build:
    deadline = time.monotonic() + timeout
    while not build.is_terminal:
        submit(build.pk)
        monitor.sweep()
        build.refresh_from_db()
        assert time.monotonic() < deadline, f"build still {build.state}"
        time.sleep(0.1)
    return build


@pytest.mark.django_db(transaction=True)
def test_a_due_schedule_builds_once_then_plans_one_rollout(gold, alice, web, azure_emulator):
    azure_emulator.set_time_scale(20000)
    layer = factories.make_layer(web, gold.gold_image, "api")
    factories.make_layer_version(layer, "1.0.0", accepts="^1")
    schedule = schedules.schedule_set(actor=alice, gold_image=gold.gold_image, cron="0 3 * * 2#2", time_zone="UTC")
    now = schedule.next_run_at + dt.timedelta(seconds=5)

    assert schedules.fire(now=now) == {"builds": 1, "refused": 0, "rollouts": 0}
    assert schedules.fire(now=now)["builds"] == 0  # claimed: the next run is a month away

    schedule.refresh_from_db()
    assert schedule.next_run_at > now
    assert schedule.build.gold_version == gold
    assert list(schedule.build.layer_versions.all()) == []
    assert AuditEvent.objects.get(action="build.request").actor_name == "patch-schedule"
    finish(schedule.build)

    assert schedules.fire(now=now)["rollouts"] == 1
    assert schedules.fire(now=now)["rollouts"] == 0
    schedule.refresh_from_db()
    assert schedule.rollout.state == Rollout.State.PLANNED
    assert schedule.rollout.gold_version == gold
    assert schedule.rollout.items.count() == 1
    assert Build.objects.count() == 1  # nothing started: a person starts the rollout


@pytest.mark.django_db(transaction=True)
def test_a_failed_patch_build_plans_no_rollout(alice, azure_emulator):
    azure_emulator.set_time_scale(20000)
    failing = factories.make_gold_version(factories.make_gold_image("failing", actor=alice), actor=alice,
                                          customize_before=[{"type": "Shell", "name": "update", "inline": ["exit 1"]}])
    schedule = schedules.schedule_set(actor=alice, gold_image=failing.gold_image, cron="* * * * *", time_zone="UTC")
    schedules.fire(now=schedule.next_run_at)
    schedule.refresh_from_db()
    assert finish(schedule.build).state == Build.State.FAILED
    assert schedules.fire(now=schedule.last_run_at)["rollouts"] == 0
    assert not Rollout.objects.exists()


def test_the_gold_image_page_shows_the_next_three_runs_and_the_form_to_the_security_team(gold, alice, bob, client):
    schedules.schedule_set(actor=alice, gold_image=gold.gold_image, cron="0 3 * * 2#2", time_zone="Europe/Berlin")
    client.force_login(alice)
    page = client.get("/gold/ubuntu/").content.decode()
    assert page.count("UTC</small></li>") == 3
    assert 'action="/gold/ubuntu/schedule/"' in page
    client.force_login(bob)
    page = client.get("/gold/ubuntu/")
    assert page.status_code == 200
    assert page.content.decode().count("UTC</small></li>") == 3
    assert 'action="/gold/ubuntu/schedule/"' not in page.content.decode()


def test_the_form_sets_the_schedule_and_refuses_others(gold, alice, bob, client):
    client.force_login(bob)
    assert client.post("/gold/ubuntu/schedule/", {"cron": "0 3 * * 2", "time_zone": "UTC"}).status_code == 403
    client.force_login(alice)
    response = client.post("/gold/ubuntu/schedule/", {"cron": "0 3 * * 2#2", "time_zone": "Europe/Berlin"})
    assert response.status_code == 302
    assert PatchSchedule.objects.get().time_zone == "Europe/Berlin"
    client.post("/gold/ubuntu/schedule/delete/")
    assert not PatchSchedule.objects.exists()
    assert AuditEvent.objects.filter(action="schedule.delete", actor_name="alice").exists()


@pytest.mark.django_db(transaction=True)
def test_the_firing_job_runs_in_a_real_worker(gold, alice, azure_emulator, rq_worker):
    import django_rq

    from builds import jobs

    schedule = schedules.schedule_set(actor=alice, gold_image=gold.gold_image, cron="0 3 * * 2#2", time_zone="UTC")
    PatchSchedule.objects.filter(pk=schedule.pk).update(next_run_at=dt.datetime.now(UTC) - dt.timedelta(minutes=1))
    django_rq.get_queue("default").enqueue(jobs.schedules_fire)
    deadline = time.monotonic() + 30
    while not PatchSchedule.objects.filter(pk=schedule.pk, build__isnull=False).exists():
        assert time.monotonic() < deadline, rq_worker.log()[-2000:]
        time.sleep(0.2)
    assert PatchSchedule.objects.get().next_run_at > dt.datetime.now(UTC)
