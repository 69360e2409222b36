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
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from builds.models import Build

QUEUE = "builds"
_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
# The RQ entry points, by dotted path (builds/jobs.py).
SUBMIT = "builds.jobs.build_submit"
CANCEL = "builds.jobs.build_cancel"
CLEANUP = "builds.jobs.build_cleanup"


def submit_job_id(build: Build) -> str:
    """The id of the submit job the build is waiting for: one per attempt and due time, so a
    job can schedule its successor, and the reconciler can tell whether it still exists."""
    due = int(build.next_attempt_at.timestamp()) if build.next_attempt_at else 0
    return f"build-submit-{build.uuid}-{build.attempts}-{due}"


def cancel_job_id(build: Build) -> str:
    return f"build-cancel-{build.uuid}"


def cleanup_job_id(build: Build) -> str:
    return f"build-cleanup-{build.uuid}"


def _enqueue(func: str, build: Build, job_id: str, *, delay: float | None = None, on_commit: bool = True) -> None:
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
    _enqueue(SUBMIT, build, submit_job_id(build), delay=delay, on_commit=on_commit)


def enqueue_cancel(build: Build, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(CANCEL, build, cancel_job_id(build), delay=delay, on_commit=on_commit)


def enqueue_cleanup(build: Build, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(CLEANUP, build, cleanup_job_id(build), delay=delay, on_commit=on_commit)


def submit_job_alive(build: Build) -> bool:
    return _alive(submit_job_id(build), django_rq.get_connection(QUEUE))


def cancel_job_alive(build: Build) -> bool:
    return _alive(cancel_job_id(build), django_rq.get_connection(QUEUE))
