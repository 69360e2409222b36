"""The notification queue: job ids, enqueueing on commit, liveness (the low piece, like builds/queue.py).

Jobs run on the `default` queue that every worker already serves. Job ids derive from the row
(and its attempt), so enqueuing twice is harmless and the reconciler can tell a lost job.
The entry points in notify/jobs.py are named by dotted path, so nothing imports jobs.py back.
"""

from __future__ import annotations

import datetime as dt

import django_rq
from django.db import transaction
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

QUEUE = "default"
FANOUT = "notify.jobs.event_fanout"
DELIVER = "notify.jobs.delivery_send"
DIGEST = "notify.jobs.digest_send"
_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def fanout_job_id(event) -> str:
    return f"notify-fanout-{event.uuid}"


def deliver_job_id(delivery) -> str:
    return f"notify-deliver-{delivery.uuid}-{delivery.attempts}"


def digest_job_id(recipient_id: int, due: dt.datetime) -> str:
    return f"notify-digest-{recipient_id}-{int(due.timestamp())}"


def alive(job_id: str) -> bool:
    try:
        job = Job.fetch(job_id, connection=django_rq.get_connection(QUEUE))
        return job.get_status(refresh=False) in _ALIVE
    except NoSuchJobError:
        return False


def _send(func: str, arg, job_id: str, delay: float | None) -> None:
    queue = django_rq.get_queue(QUEUE)
    if alive(job_id):
        return
    if delay and delay > 0:
        queue.enqueue_in(dt.timedelta(seconds=delay), func, arg, job_id=job_id, result_ttl=600, failure_ttl=86400)
    else:
        queue.enqueue(func, arg, job_id=job_id, result_ttl=600, failure_ttl=86400)


def _enqueue(func: str, arg, job_id: str, *, delay: float | None = None, on_commit: bool = True) -> None:
    if on_commit:
        transaction.on_commit(lambda: _send(func, arg, job_id, delay))
    else:
        _send(func, arg, job_id, delay)


def enqueue_fanout(event, *, on_commit: bool = True) -> None:
    _enqueue(FANOUT, event.pk, fanout_job_id(event), on_commit=on_commit)


def enqueue_deliver(delivery, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(DELIVER, delivery.pk, deliver_job_id(delivery), delay=delay, on_commit=on_commit)


def enqueue_digest(recipient_id: int, due: dt.datetime, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(DIGEST, recipient_id, digest_job_id(recipient_id, due), delay=delay, on_commit=on_commit)
