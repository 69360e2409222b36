"""The audit trail: one event per state-changing action, hash-chained, written in the caller's transaction.

Services call `record(...)` inside the `transaction.atomic` block that makes the change, so
the event and the change commit or roll back together. Appends are serialised (PostgreSQL
advisory lock; SQLite's IMMEDIATE transactions already admit one writer), each event's id is
the previous id + 1 and its hash covers the previous hash, so the chain never forks and any
tampering shows up in `verify_chain`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from portal.middleware import current_request_meta
from portal.models import AuditCheckpoint, AuditEvent, Department
from portal.redact import redact

GENESIS = "0" * 64
_LOCK_KEY = 0x60_1D_5A_17  # arbitrary constant naming the audit append lock
_HASHED_FIELDS = ("id", "at", "actor_id", "actor_name", "actor_ip", "user_agent", "action", "object_type",
                  "object_id", "object_label", "department_id", "changes", "request_id", "outcome")

Actor = AbstractBaseUser | str | None


def worker_actor() -> str:
    """The actor name for changes made by an RQ worker or the scheduler on this host."""
    return f"worker:{socket.gethostname()}"


def record(action: str, *, actor: Actor, obj: Any = None, object_type: str = "", object_id: str = "",
           label: str = "", department: Department | int | None = None, changes: dict | None = None,
           outcome: str = AuditEvent.Outcome.SUCCESS) -> AuditEvent:
    """Append one event. Call it inside the transaction that makes the change.

    obj, when given, fills object_type (model name), object_id (its `uuid` if it has one,
    else its pk) and label (str(obj)). Secrets in `changes` and the label are redacted.
    Web request metadata (request id, client IP, user agent) comes from the middleware.
    """
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(getattr(obj, "uuid", None) or obj.pk)
        label = label or str(obj)
    meta = current_request_meta()
    actor_user = actor if isinstance(actor, AbstractBaseUser) else None
    if actor_user is not None:
        actor_name = actor_user.get_username()
    else:
        actor_name = actor if isinstance(actor, str) and actor else "system"
    department_id = department.pk if isinstance(department, Department) else department
    now = timezone.now()
    with transaction.atomic():
        _lock()
        last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        prev_id, prev_hash = last if last else (0, GENESIS)
        event = AuditEvent(
            id=prev_id + 1,
            at=now.replace(microsecond=now.microsecond // 1000 * 1000),  # what the hash covers
            actor_id=actor_user.pk if actor_user is not None else None,
            actor_name=actor_name[:150],
            actor_ip=meta.ip,
            user_agent=meta.user_agent[:300],
            action=action,
            object_type=object_type[:64],
            object_id=str(object_id)[:64],
            object_label=redact(label)[:300],
            department_id=department_id,
            changes=redact(changes or {}),
            request_id=meta.request_id,
            outcome=outcome,
            prev_hash=prev_hash,
        )
        # Store exactly what gets hashed: a JSON round trip normalises the changes document.
        event.changes = json.loads(json.dumps(event.changes, sort_keys=True, default=str))
        event.hash = event_hash(event, prev_hash)
        event.save(force_insert=True)
    return event


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def canonical(event: AuditEvent) -> str:
    """The canonical JSON of an event's content (everything but the hashes)."""
    document = {}
    for name in _HASHED_FIELDS:
        value = getattr(event, name)
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).isoformat(timespec="milliseconds")
        document[name] = value
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(event: AuditEvent, prev_hash: str) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_event_id: int | None = None
    reason: str = ""


def verify_chain(*, since_id: int | None = None, checkpoint: dict | None = None) -> Verdict:
    """Walk the chain (from since_id, or the start) and report the first broken link.

    Detects modified rows (hash mismatch), deleted or inserted rows (prev_hash or id gap),
    reordering, and, with a checkpoint {"last_event_id", "head_hash", "count"}, truncation
    of events the checkpoint had seen.
    """
    events = AuditEvent.objects.order_by("id")
    expected_prev = GENESIS
    expected_id = 1
    if since_id and since_id > 1:
        before = AuditEvent.objects.filter(id__lt=since_id).order_by("-id").values_list("id", "hash").first()
        if before:
            expected_id, expected_prev = before[0] + 1, before[1]
        events = events.filter(id__gte=since_id)
    checked = 0
    last_id = expected_id - 1
    for event in _iterate(events):
        checked += 1
        if event.id != expected_id:
            return Verdict(False, checked, event.id, f"event {expected_id} is missing (next is {event.id})")
        if event.prev_hash != expected_prev:
            return Verdict(False, checked, event.id, "its prev_hash does not match the previous event's hash")
        if event_hash(event, event.prev_hash) != event.hash:
            return Verdict(False, checked, event.id, "its content does not match its hash (modified)")
        expected_prev, expected_id = event.hash, event.id + 1
        last_id = event.id
    if checkpoint:
        wanted_id = int(checkpoint["last_event_id"])
        if last_id < wanted_id:
            return Verdict(False, checked, wanted_id,
                           f"events after {last_id} up to checkpoint event {wanted_id} are missing (truncated)")
        at_checkpoint = AuditEvent.objects.filter(id=wanted_id).values_list("hash", flat=True).first()
        if at_checkpoint != checkpoint["head_hash"]:
            return Verdict(False, checked, wanted_id, "the event at the checkpoint does not have the checkpoint's hash")
    return Verdict(True, checked)


def _iterate(queryset, size: int = 2000) -> Iterator[AuditEvent]:
    """Keyset pagination: constant memory on any database."""
    last = 0
    while True:
        batch = list(queryset.filter(id__gt=last)[:size])
        if not batch:
            return
        yield from batch
        last = batch[-1].id


def checkpoint_create() -> AuditCheckpoint:
    """Record the current head (hash, count) so later truncation is detectable."""
    with transaction.atomic():
        _lock()
        head = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        last_id, head_hash = head if head else (0, GENESIS)
        return AuditCheckpoint.objects.create(last_event_id=last_id, head_hash=head_hash,
                                              count=AuditEvent.objects.count())
