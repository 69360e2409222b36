"""Patch schedules: rebuild a gold image's current version on the newest source at set times,
then plan a rollout (docs/architecture.md, "Patch schedules").

One schedule per gold image: a cron expression in a time zone (builds/crontimes.py). Setting
and deleting one are security-team services with one audit event each (`schedule.create`,
`schedule.update`, `schedule.delete`). `fire()` is the body of the job `schedules_fire`, which
rq's cron scheduler (builds/cron.py, the `rqcron` process) runs every minute:

1. each schedule whose `next_run_at` has passed is claimed with a conditional UPDATE that moves
   `next_run_at` to its next time (two jobs at once: one wins, the other skips it), and gets a
   gold-only build of the gold image's newest published version (`services.build_request` by
   the actor `patch-schedule`; Image Builder resolves the source's `latest` to the newest one);
2. each schedule whose last build succeeded and has no rollout yet gets one, created in state
   `planned` (`rollouts.rollout_create`) for a person to check and start: a patch run never
   starts rebuilding every department's layers by itself.

A run missed while the scheduler was down fires once when it comes back (not once per missed time).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from builds import approvals, crontimes, rollouts, services
from builds.models import Build, GoldImage, GoldImageVersion, PatchSchedule
from builds.schema import Problem
from portal import audit
from portal.access import roles_of
from portal.audit import Actor

log = logging.getLogger(__name__)
ACTOR = "patch-schedule"


def _require_security(actor: Actor) -> None:
    if not isinstance(actor, str) and not roles_of(actor).security:
        raise approvals.NotAllowed("Only the security team sets patch schedules.")


def next_runs(schedule: PatchSchedule, count: int = 3, *, after: dt.datetime | None = None) -> list[dt.datetime]:
    """The schedule's next `count` run times (UTC), from its next claimed run on."""
    start = schedule.next_run_at - dt.timedelta(microseconds=1)
    if after is not None:
        start = max(start, after)
    return crontimes.next_runs(schedule.cron, schedule.time_zone, start, count)


@transaction.atomic
def schedule_set(*, actor: Actor, gold_image: GoldImage, cron: str, time_zone: str) -> PatchSchedule:
    """Create or change the gold image's patch schedule; one `schedule.create` or
    `schedule.update` audit event (none when nothing changed). Raises NotAllowed (not the
    security team) and ServiceError (a bad expression or time zone, with the problems)."""
    _require_security(actor)
    cron, time_zone = " ".join(cron.split()), time_zone.strip()
    found = crontimes.problems(cron, time_zone)
    if found:
        raise services.ServiceError("The schedule has mistakes; nothing was saved.",
                                    [Problem("schedule", field, message) for field, message in found.items()])
    first = crontimes.next_runs(cron, time_zone, timezone.now(), 1)[0]
    schedule = PatchSchedule.objects.select_for_update().filter(gold_image=gold_image).first()
    if schedule is None:
        schedule = PatchSchedule.objects.create(gold_image=gold_image, cron=cron, time_zone=time_zone,
                                                next_run_at=first, updated_by=services._user(actor))
        audit.record("schedule.create", actor=actor, obj=schedule,
                     changes={"cron": [None, cron], "time_zone": [None, time_zone]})
        return schedule
    changes = {key: [getattr(schedule, key), value] for key, value in (("cron", cron), ("time_zone", time_zone))
               if getattr(schedule, key) != value}
    if not changes:
        return schedule
    schedule.cron, schedule.time_zone, schedule.next_run_at = cron, time_zone, first
    schedule.updated_by = services._user(actor)
    schedule.save()
    audit.record("schedule.update", actor=actor, obj=schedule, changes=changes)
    return schedule


@transaction.atomic
def schedule_delete(*, actor: Actor, schedule: PatchSchedule) -> None:
    """Delete the schedule; one `schedule.delete` audit event. Raises NotAllowed."""
    _require_security(actor)
    audit.record("schedule.delete", actor=actor, obj=schedule,
                 changes={"cron": [schedule.cron, None], "time_zone": [schedule.time_zone, None]})
    schedule.delete()


def fire(*, now: dt.datetime | None = None) -> dict:
    """Run every due schedule and plan the rollouts of succeeded patch builds; returns counts
    {"builds", "refused", "rollouts"}. Safe to run twice at once and again at any time."""
    now = now or timezone.now()
    counts = {"builds": 0, "refused": 0, "rollouts": 0}
    for schedule in PatchSchedule.objects.filter(next_run_at__lte=now).select_related("gold_image"):
        following = crontimes.next_runs(schedule.cron, schedule.time_zone, now, 1)[0]
        with transaction.atomic():
            claimed = PatchSchedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
                next_run_at=following, last_run_at=now, rollout=None, build=None, error="")
            if claimed != 1:
                continue  # another job ran it
            counts["builds" if _run(schedule.pk, schedule.gold_image) else "refused"] += 1
    waiting = PatchSchedule.objects.filter(rollout=None, error="", build__state=Build.State.SUCCEEDED)
    for schedule in waiting:
        counts["rollouts"] += _plan_rollout(schedule.pk)
    return counts


def _run(schedule_id: int, gold_image: GoldImage) -> bool:
    current = (GoldImageVersion.objects.filter(gold_image=gold_image, status=GoldImageVersion.Status.PUBLISHED)
               .order_by("-major", "-minor", "-patch").first())
    if current is None:
        PatchSchedule.objects.filter(pk=schedule_id).update(error="No published version to rebuild.")
        return False
    try:
        build = services.build_request(actor=ACTOR, gold_version=current)
    except services.ServiceError as exc:
        PatchSchedule.objects.filter(pk=schedule_id).update(error=f"The patch build was refused: {exc}")
        return False
    PatchSchedule.objects.filter(pk=schedule_id).update(build=build)
    return True


@transaction.atomic
def _plan_rollout(schedule_id: int) -> int:
    schedule = (PatchSchedule.objects.select_for_update().select_related("build__gold_version")
                .filter(pk=schedule_id, rollout=None, build__state=Build.State.SUCCEEDED).first())
    if schedule is None:
        return 0
    try:
        rollout = rollouts.rollout_create(actor=ACTOR, gold_version=schedule.build.gold_version)
    except services.ServiceError as exc:
        schedule.error = f"The rollout could not be planned: {exc}"
        schedule.save(update_fields=["error", "updated_at"])
        return 0
    schedule.rollout = rollout
    schedule.save(update_fields=["rollout", "updated_at"])
    return 1
