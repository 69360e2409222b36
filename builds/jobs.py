"""RQ entry points (thin) and the one way to enqueue them.

Jobs take a build id, call one lifecycle step and, when the step asks, schedule themselves
again. Job ids derive from the build (and the attempt number), so enqueuing twice is
harmless and the reconciler can tell whether a build's job still exists.
"""

from __future__ import annotations

import datetime as dt
import logging

import django_rq
from django.db import transaction
from django.utils import timezone
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.worker import Worker

from builds import lifecycle, monitor
from builds.models import Build

log = logging.getLogger(__name__)
QUEUE = "builds"
_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# A worker running a job heartbeats every DEFAULT_JOB_MONITORING_INTERVAL seconds (30); one
# silent for that plus a margin for clocks and a slow Redis is dead.
WORKER_SILENT_SECONDS = DEFAULT_JOB_MONITORING_INTERVAL + 15


def submit_job_id(build: Build) -> str:
    """The id of the submit job the build is waiting for: one per attempt and due time, so a
    job can schedule its successor, and the reconciler can tell whether it still exists."""
    due = int(build.next_attempt_at.timestamp()) if build.next_attempt_at else 0
    return f"build-submit-{build.uuid}-{build.attempts}-{due}"


def cancel_job_id(build: Build) -> str:
    return f"build-cancel-{build.uuid}"


def cleanup_job_id(build: Build) -> str:
    return f"build-cleanup-{build.uuid}"


def _enqueue(func, build: Build, job_id: str, *, delay: float | None = None, on_commit: bool = True) -> None:
    def send() -> None:
        queue = django_rq.get_queue(QUEUE)
        if _alive(job_id, queue.connection):
            return
        if delay:
            queue.enqueue_in(dt.timedelta(seconds=delay), func, build.pk, job_id=job_id, result_ttl=3600,
                             failure_ttl=7 * 86400)
        else:
            queue.enqueue(func, build.pk, job_id=job_id, result_ttl=3600, failure_ttl=7 * 86400)

    if on_commit:
        transaction.on_commit(send)
    else:
        send()


def _alive(job_id: str, connection) -> bool:
    try:
        return Job.fetch(job_id, connection=connection).get_status(refresh=False) in _ALIVE
    except NoSuchJobError:
        return False


def enqueue_submit(build: Build, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(build_submit, build, submit_job_id(build), delay=delay, on_commit=on_commit)


def enqueue_cancel(build: Build, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(build_cancel, build, cancel_job_id(build), delay=delay, on_commit=on_commit)


def enqueue_cleanup(build: Build, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(build_cleanup, build, cleanup_job_id(build), delay=delay, on_commit=on_commit)


def submit_job_alive(build: Build) -> bool:
    return _alive(submit_job_id(build), django_rq.get_connection(QUEUE))


def cancel_job_alive(build: Build) -> bool:
    return _alive(cancel_job_id(build), django_rq.get_connection(QUEUE))


def builds_submitting_on_live_workers() -> set[str]:
    """The uuids of builds whose submit job is running on a worker that still heartbeats.

    A build's lease is only ever taken inside its running submit job, and RQ lists a job among
    the started ones from before it runs until after it returns; so a build holding a lease and
    missing here lost its job: the work-horse was killed (RQ then fails the job at once) or the
    whole worker died (its heartbeat stops). Read this after reading the builds' leases, never
    before: a job that starts in between is then still found here.
    """
    connection = django_rq.get_connection(QUEUE)
    registry = StartedJobRegistry(QUEUE, connection=connection)
    live: set[str] = set()
    for job_id in registry.get_job_ids(cleanup=False):
        if not job_id.startswith("build-submit-"):
            continue
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            continue
        if job.worker_name and _worker_alive(job.worker_name, connection):
            live.add(job_id.removeprefix("build-submit-")[:36])
    return live


def _worker_alive(name: str, connection) -> bool:
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
    if worker is None or worker.last_heartbeat is None:  # its key expired: nobody heartbeats for it
        return False
    return (timezone.now() - worker.last_heartbeat).total_seconds() < WORKER_SILENT_SECONDS


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
        _retry_later(lifecycle.cleanup(build), build_cleanup, build_id, "cleanup")


def _retry_later(result: lifecycle.StepResult, func, build_id: int, step: str) -> None:
    """Schedule the same step again; its id carries the time, since this job's id is still taken."""
    if result.retry_in is None:
        return
    build = Build.objects.filter(pk=build_id).first()
    if build is None:
        return
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=max(1.0, result.retry_in))
    django_rq.get_queue(QUEUE).enqueue_at(when, func, build_id, job_id=f"build-{step}-{build.uuid}-{when:%Y%m%d%H%M%S}")


def builds_sweep() -> dict:
    report = monitor.sweep()
    return {"groups": report.groups, "builds": report.builds, "changed": report.changed,
            "skipped": report.skipped_groups, "errors": report.errors}


def builds_reconcile() -> int:
    return monitor.reconcile()


def sessions_clear() -> None:
    from django.core.management import call_command

    call_command("clearsessions")
