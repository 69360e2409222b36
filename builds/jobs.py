"""RQ entry points (thin): the top of the workers.

Jobs take a build id, call one lifecycle step and, when the step asks, schedule themselves
again. Enqueueing, job ids and liveness are builds/queue.py's (re-exported here), which
names these entry points by dotted path, so lifecycle and monitor never import this module.
"""

from __future__ import annotations

import datetime as dt
import logging

import django_rq
from django.core.management import call_command

from builds import approvals, lifecycle, monitor, queue, release, rollouts, schedules, sourcewatch
from builds.models import Build, GoldImageVersion
from builds.queue import (  # noqa: F401 - re-exported: the queue's public names, as before
    QUEUE,
    cancel_job_alive,
    cancel_job_id,
    cleanup_job_id,
    enqueue_cancel,
    enqueue_cleanup,
    enqueue_submit,
    submit_job_alive,
    submit_job_id,
)

log = logging.getLogger(__name__)


def _again(result: lifecycle.StepResult, build_id: int, enqueue) -> None:
    """Schedule the step's successor when it asked to be run again (its due time is in the row)."""
    if result.retry_in is not None:
        build = Build.objects.filter(pk=build_id).first()
        if build is not None and build.state in (Build.State.PENDING, Build.State.SUBMITTING):
            enqueue(build, delay=max(1.0, result.retry_in), on_commit=False)


# --- Entry points -------------------------------------------------------------------------------


def build_submit(build_id: int) -> None:
    _again(lifecycle.submit(build_id), build_id, enqueue_submit)


def build_cancel(build_id: int) -> None:
    _retry_later(lifecycle.cancel(build_id), build_cancel, build_id, "cancel")


def build_cleanup(build_id: int) -> None:
    build = Build.objects.filter(pk=build_id).first()
    if build is not None:
        _retry_later(lifecycle.cleanup(build), build_cleanup, build_id, "cleanup", queue.CLEANUP_QUEUE)


def _retry_later(result: lifecycle.StepResult, func, build_id: int, step: str, queue_name: str = QUEUE) -> None:
    """Schedule the same step again; its id carries the time, since this job's id is still taken."""
    if result.retry_in is None:
        return
    build = Build.objects.filter(pk=build_id).first()
    if build is None:
        return
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=max(1.0, result.retry_in))
    django_rq.get_queue(queue_name).enqueue_at(when, func, build_id,
                                               job_id=f"build-{step}-{build.uuid}-{when:%Y%m%d%H%M%S}")


def release_apply(gold_version_id: int, action: str, round_: int) -> None:
    """The release fan-out of one gold version (builds/release.py); after a transient Azure
    error it schedules itself again under a job id carrying the time."""
    progress = release.apply(gold_version_id, action, round_)
    if progress.retry_in is None:
        return
    version = GoldImageVersion.objects.filter(pk=gold_version_id).first()
    if version is not None:
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=progress.retry_in)
        job_id = f"{queue.release_job_id(version, action, round_)}-{when:%Y%m%d%H%M%S}"
        queue.enqueue_release(version, action, round_, delay=progress.retry_in, on_commit=False, job_id=job_id)


def artifacts_refresh(gold_image_id: int) -> int:
    """"Refresh from Azure": read every gallery image version of the gold image back
    (builds/release.py); returns how many were read."""
    return release.read_back(gold_image_id)


def rollout_advance(rollout_id: int) -> dict:
    """Drive one rollout as far as it goes now (builds/rollouts.py); the sweep and the
    reconciler enqueue it again while the rollout runs."""
    progress = rollouts.advance(rollout_id)
    return {"requested": progress.requested, "waves_done": progress.waves_done, "state": progress.state}


def builds_sweep() -> dict:
    report = monitor.sweep()
    return {"groups": report.groups, "builds": report.builds, "changed": report.changed,
            "skipped": report.skipped_groups, "errors": report.errors}


def builds_reconcile() -> int:
    """Re-enqueue lost submit jobs, then lost release fan-outs."""
    return monitor.reconcile() + release.reconcile()


def revoked_deletions_request() -> int:
    """Ask for the deletion of revoked versions' gallery image versions whose grace period
    (policy delete_revoked_after_days) has passed; a second person approves each. Returns how
    many requests were made."""
    return len(approvals.deletion_requests_due())


def source_watch() -> dict:
    """Check every gold image that follows "latest" for a newer or deprecated source
    (builds/sourcewatch.py); returns the counts."""
    return sourcewatch.run()


def schedules_fire() -> dict:
    """Run the patch schedules that are due and plan the rollouts of their succeeded builds
    (builds/schedules.py); returns the counts."""
    return schedules.fire()


def sessions_clear() -> None:
    call_command("clearsessions")


def build_logs_prune() -> int:
    """Delete kept build logs older than BUILD_LOG_RETENTION_DAYS."""
    from builds import buildlogs

    return buildlogs.prune()
