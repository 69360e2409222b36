"""The build queue: job ids, enqueueing on commit, and whether a job is still alive.

The low piece of the workers: lifecycle.py, monitor.py and services.py enqueue through here,
naming the entry points in builds/jobs.py by dotted path, so jobs.py (which calls lifecycle
and monitor) sits on top and nothing imports it back. Job ids derive from the build (and the
attempt number), so enqueuing twice is harmless and the reconciler can tell whether a build's
job still exists.
"""

from __future__ import annotations

import datetime as dt

import django_rq
from django.db import transaction
from django.utils import timezone
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.worker import Worker

from builds.models import Build, GoldImageVersion, Rollout, RolloutItem, RolloutWave

QUEUE = "builds"
# Clean-up (keep the log, delete the template) is housekeeping: it waits on the default queue,
# which workers serve after `builds` (`rqworker builds default`), so the clean-ups of builds that
# ended together never hold back the submits and rollout advances queued behind them.
CLEANUP_QUEUE = "default"
_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# The RQ entry points, by dotted path (builds/jobs.py).
SUBMIT = "builds.jobs.build_submit"
CANCEL = "builds.jobs.build_cancel"
CLEANUP = "builds.jobs.build_cleanup"
RELEASE = "builds.jobs.release_apply"
REFRESH = "builds.jobs.artifacts_refresh"
ROLLOUT = "builds.jobs.rollout_advance"
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


def _enqueue(func: str, build: Build, job_id: str, *, delay: float | None = None, on_commit: bool = True,
             queue_name: str = QUEUE) -> None:
    def send() -> None:
        queue = django_rq.get_queue(queue_name)
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
    _enqueue(SUBMIT, build, submit_job_id(build), delay=delay, on_commit=on_commit)


def enqueue_cancel(build: Build, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(CANCEL, build, cancel_job_id(build), delay=delay, on_commit=on_commit)


def enqueue_cleanup(build: Build, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(CLEANUP, build, cleanup_job_id(build), delay=delay, on_commit=on_commit, queue_name=CLEANUP_QUEUE)


def release_job_id(gold_version: GoldImageVersion, action: str, round_: int) -> str:
    """One fan-out job per version, action and round (builds/release.py)."""
    return f"release-{action}-{gold_version.uuid}-{round_}"


def artifacts_refresh_job_id(gold_image) -> str:
    """One read-back job per gold image at a time ("refresh from Azure", builds/release.py)."""
    return f"artifacts-refresh-{gold_image.slug}"


def enqueue_artifacts_refresh(gold_image) -> None:
    """Enqueue the read-back of the gold image's gallery image versions when the transaction
    commits; nothing when one is queued or running already."""
    job_id = artifacts_refresh_job_id(gold_image)

    def send() -> None:
        queue = django_rq.get_queue(QUEUE)
        if _alive_on_worker(job_id, queue.connection):
            return
        queue.enqueue(REFRESH, gold_image.pk, job_id=job_id, result_ttl=600, failure_ttl=7 * 86400)

    transaction.on_commit(send)


def enqueue_release(gold_version: GoldImageVersion, action: str, round_: int, *, delay: float | None = None,
                    on_commit: bool = True, job_id: str = "") -> None:
    """Enqueue the release fan-out (on commit by default); nothing when its job is alive."""
    job_id = job_id or release_job_id(gold_version, action, round_)
    args = (gold_version.pk, action, round_)

    def send() -> None:
        queue = django_rq.get_queue(QUEUE)
        if _alive_on_worker(job_id, queue.connection):
            return
        if delay:
            queue.enqueue_in(dt.timedelta(seconds=delay), RELEASE, *args, job_id=job_id, result_ttl=3600,
                             failure_ttl=7 * 86400)
        else:
            queue.enqueue(RELEASE, *args, job_id=job_id, result_ttl=3600, failure_ttl=7 * 86400)

    if on_commit:
        transaction.on_commit(send)
    else:
        send()


def release_job_alive(gold_version: GoldImageVersion, action: str, round_: int) -> bool:
    """Whether the fan-out's job, or a retry it scheduled, is queued, scheduled, or running on a
    worker that still heartbeats (a job left "started" by a killed worker is dead)."""
    connection = django_rq.get_connection(QUEUE)
    prefix = release_job_id(gold_version, action, round_)
    queue = django_rq.get_queue(QUEUE)
    retries = [job_id for job_id in ScheduledJobRegistry(queue=queue).get_job_ids() + list(queue.get_job_ids())
               if job_id.startswith(prefix + "-")]
    return any(_alive_on_worker(job_id, connection) for job_id in [prefix, *retries])


def _alive_on_worker(job_id: str, connection) -> bool:
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.STARTED:
        return bool(job.worker_name) and _worker_alive(job.worker_name, connection)
    return status in _ALIVE


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


def rollout_job_id(rollout: Rollout) -> str:
    """One advance job per claim: `advances` grows with every claim, so nudges between two
    claims share one job, and a job that died with its claim is followed by a fresh id."""
    return f"rollout-advance-{rollout.uuid}-{rollout.advances}"


def enqueue_rollout(rollout: Rollout, *, on_commit: bool = True) -> None:
    """Enqueue the rollout's advance job (on commit by default); nothing when it is alive."""
    job_id = rollout_job_id(rollout)

    def send() -> None:
        queue = django_rq.get_queue(QUEUE)
        if _alive_on_worker(job_id, queue.connection):
            return
        queue.enqueue(ROLLOUT, rollout.pk, job_id=job_id, result_ttl=3600, failure_ttl=7 * 86400)

    if on_commit:
        transaction.on_commit(send)
    else:
        send()


def enqueue_rollouts_waiting_for_room() -> None:
    """Enqueue (on commit) the advance of every running rollout whose running wave still has
    builds to request: called when a build stops waiting for submission, which frees a place
    under the submit cap the rollout was held back by. The job lands behind the submits already
    queued, so one advance fills the places those free (rather than one job per place)."""
    waiting = (Rollout.objects.filter(state=Rollout.State.RUNNING, waves__state=RolloutWave.State.RUNNING,
                                      waves__items__kind=RolloutItem.Kind.BUILD, waves__items__build__isnull=True,
                                      waves__items__error="")
               .distinct())
    for rollout in waiting:
        enqueue_rollout(rollout)


def rollout_job_alive(rollout: Rollout) -> bool:
    return _alive_on_worker(rollout_job_id(rollout), django_rq.get_connection(QUEUE))


def rollouts_advancing_on_live_workers() -> set[str]:
    """The uuids of rollouts whose advance job runs on a worker that still heartbeats (read it
    after the leases, as builds_submitting_on_live_workers)."""
    connection = django_rq.get_connection(QUEUE)
    live: set[str] = set()
    for job_id in StartedJobRegistry(QUEUE, connection=connection).get_job_ids(cleanup=False):
        if job_id.startswith("rollout-advance-") and _alive_on_worker(job_id, connection):
            live.add(job_id.removeprefix("rollout-advance-")[:36])
    return live
