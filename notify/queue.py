"""The notification queue: job ids, enqueueing on commit, liveness (the low piece, like builds/queue.py).

Jobs run on the `default` queue that every worker already serves. Job ids derive from the event
(and why the job was made: its fan-out, a continuation, a retry's due time, a reconcile sweep),
so enqueuing twice is harmless and the reconciler can tell a waiting job.

Fan-out jobs are pumps: one fans out and sends every event still waiting when it starts, so a
burst of events costs a few jobs, not one forked job each. A new event enqueues a pump (named
after it) unless one is known to be waiting in the queue (`PUMP_MARK` names it, and its status
is checked): a pump that has not started yet will read the event when it does. A pump deletes
the mark when it starts, so events committed after that wake another.
The entry points in notify/jobs.py are named by dotted path, so nothing imports jobs.py back.
"""

from __future__ import annotations

import datetime as dt

import django_rq
from django.conf import settings
from django.db import transaction
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

QUEUE = "default"
FANOUT = "notify.jobs.event_fanout"
SEND = "notify.jobs.event_send"
DIGEST = "notify.jobs.digest_send"
_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
_WAITING = _ALIVE - {JobStatus.STARTED}  # a started job may belong to a killed worker


def fanout_job_id(event) -> str:
    return f"notify-fanout-{event.uuid}"


def send_job_id(event_uuid, stamp: str) -> str:
    """The job sending an event's due deliveries: stamp c<n> (continuation), r<epoch> (retries due
    then), s<n> (reconcile sweep n), m<attempts> (a redelivery)."""
    return f"notify-send-{event_uuid}-{stamp}"


def digest_job_id(recipient_id: int, due: dt.datetime) -> str:
    return f"notify-digest-{recipient_id}-{int(due.timestamp())}"


def _status(job_id: str):
    try:
        return Job.fetch(job_id, connection=django_rq.get_connection(QUEUE)).get_status(refresh=False)
    except NoSuchJobError:
        return None


def alive(job_id: str) -> bool:
    return _status(job_id) in _ALIVE


def waiting(job_id: str) -> bool:
    """Queued or scheduled: it will run (a started one may be a killed worker's)."""
    return _status(job_id) in _WAITING


def _send(func: str, args: tuple, job_id: str, delay: float | None) -> None:
    queue = django_rq.get_queue(QUEUE)
    if alive(job_id):
        return
    if delay and delay > 0:
        queue.enqueue_in(dt.timedelta(seconds=delay), func, *args, job_id=job_id, result_ttl=600, failure_ttl=86400)
    else:
        queue.enqueue(func, *args, job_id=job_id, result_ttl=600, failure_ttl=86400)


def _enqueue(func: str, arg, job_id: str, *, delay: float | None = None, on_commit: bool = True) -> None:
    args = arg if isinstance(arg, tuple) else (arg,)
    if on_commit:
        transaction.on_commit(lambda: _send(func, args, job_id, delay))
    else:
        _send(func, args, job_id, delay)


PUMP_MARK = "goldsmith:notify:pump-waiting"


def _wake(event_pk: int, job_id: str) -> None:
    connection = django_rq.get_connection(QUEUE)
    mark_seconds = max(settings.NOTIFY_LEASE_SECONDS, 60)  # a lost mark only costs a spare pump
    if not connection.set(PUMP_MARK, job_id, nx=True, ex=mark_seconds):
        marked = connection.get(PUMP_MARK)
        if marked is not None and waiting(marked.decode()):
            return  # it has not started: it will fan this event out too
        connection.set(PUMP_MARK, job_id, ex=mark_seconds)
    _send(FANOUT, (event_pk,), job_id, None)


def pump_started(job_id: str | None) -> None:
    """The pump `job_id` runs: events committed from now on must wake another."""
    if job_id is None:
        return
    connection = django_rq.get_connection(QUEUE)
    if connection.get(PUMP_MARK) == job_id.encode():
        connection.delete(PUMP_MARK)


def enqueue_fanout(event, *, on_commit: bool = True) -> None:
    """Make sure a pump will fan the event out (after the commit that wrote it)."""
    args = (event.pk, fanout_job_id(event))
    if on_commit:
        transaction.on_commit(lambda: _wake(*args))
    else:
        _wake(*args)


def enqueue_send(event_id: int, event_uuid, stamp: str, *, generation: int = 0, delay: float | None = None,
                 on_commit: bool = True) -> None:
    _enqueue(SEND, (event_id, generation), send_job_id(event_uuid, stamp), delay=delay, on_commit=on_commit)


def enqueue_digest(recipient_id: int, due: dt.datetime, *, delay: float | None = None, on_commit: bool = True) -> None:
    _enqueue(DIGEST, recipient_id, digest_job_id(recipient_id, due), delay=delay, on_commit=on_commit)
