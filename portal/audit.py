"""The audit trail: one event per state-changing action, hash-chained, written in the caller's transaction.

Services call `record(...)` inside the `transaction.atomic` block that makes the change, so
the event and the change commit or roll back together. Appends are serialised (PostgreSQL
advisory lock; SQLite's IMMEDIATE transactions already admit one writer), each event's id is
the previous id + 1 and its hash covers the previous hash, so the chain never forks and any
tampering shows up in `verify_chain`.

The chain, precisely (docs/audit.md has the prose version):

- `hash = SHA-256(prev_hash + canonical(event))`, where `canonical` is the JSON of the fields
  in `HASHED_FIELDS` with sorted keys, no spaces, UTF-8, times in UTC with microseconds (the
  `redaction` column is deliberately not among them: docs/audit.md says why, and what a change
  to it can hide);
- the first event has id 1 and `prev_hash = GENESIS`; every later event has the previous id
  + 1 and the previous event's hash as `prev_hash`;
- `at` never goes backwards along the chain (an event written while the clock stepped back
  takes its predecessor's time), so a time range is an id range;
- a retention prune (`prune`, break-glass, docs/audit.md) removes the oldest events and
  records an `audit.prune` event naming the last pruned id and its hash: the retained chain
  then starts from that anchor instead of GENESIS.

Refusals anybody can cause (`auth.login_failed`, `access.denied`) go through
`record_refusal`, which writes one event per key and minute and appends the count of the
repeats with the key's next event, so the trail cannot be flooded and is never updated.

The hash chain detects changes by anybody who does not rewrite every later event. Somebody
with write access who recomputes the whole tail is caught by checkpoints kept outside the
database (`manage.py auditcheckpoint --output`, checked by `verifyaudit --checkpoint`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from portal.middleware import current_request_meta
from portal.models import AuditCheckpoint, AuditEvent, Department
from portal.redact import RULES_VERSION, redact

GENESIS = "0" * 64
CHECKPOINT_FORMAT = "goldsmith-audit-checkpoint/1"
_LOCK_KEY = 0x60_1D_5A_17  # arbitrary constant naming the audit append lock
HASHED_FIELDS = ("id", "at", "actor_id", "actor_name", "actor_ip", "user_agent", "action", "object_type",
                 "object_id", "object_label", "department_id", "changes", "request_id", "outcome")
_HASHED_FIELDS = HASHED_FIELDS  # the old private name, kept for callers that used it
# The PostgreSQL triggers installed by migration 0002 (named here for the break-glass helper).
IMMUTABLE_TRIGGERS = {"portal_auditevent": "audit_event_immutable",
                      "portal_auditcheckpoint": "audit_checkpoint_immutable"}

Actor = AbstractBaseUser | str | None
log = logging.getLogger(__name__)


def worker_actor() -> str:
    """The actor name for changes made by an RQ worker or the scheduler on this host."""
    return f"worker:{socket.gethostname()}"


def _actor_name(actor: Actor) -> str:
    if isinstance(actor, AbstractBaseUser):
        return actor.get_username()
    return actor if isinstance(actor, str) and actor else "system"


def record(action: str, *, actor: Actor, obj: Any = None, object_type: str = "", object_id: str = "",
           label: str = "", department: Department | int | None = None, changes: dict | None = None,
           outcome: str = AuditEvent.Outcome.SUCCESS) -> AuditEvent:
    """Append one event and return it. Call it inside the transaction that makes the change.

    obj, when given, fills object_type (model name), object_id (its `uuid` if it has one,
    else its pk) and label (str(obj)). Secrets in `changes`, the label and the user agent are
    redacted, and the event notes the version of the redaction rules (exports rely on it).
    Web request metadata (request id, client IP, user agent) comes from the middleware.

    On PostgreSQL the append lock is held until the caller's transaction ends, so call
    record() as the last step of a service, after any slow work.
    """
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(getattr(obj, "uuid", None) or obj.pk)
        label = label or str(obj)
    meta = current_request_meta()
    actor_user = actor if isinstance(actor, AbstractBaseUser) else None
    actor_name = _actor_name(actor)
    department_id = department.pk if isinstance(department, Department) else department
    with transaction.atomic():
        _lock()
        last = AuditEvent.objects.order_by("-id").values_list("id", "hash", "at").first()
        prev_id, prev_hash, prev_at = last if last else (0, GENESIS, None)
        # Taken under the lock and never before the predecessor's: time order is chain order.
        at = timezone.now()
        if prev_at is not None and at < prev_at:
            at = prev_at
        event = AuditEvent(
            id=prev_id + 1,
            at=at,
            actor_id=actor_user.pk if actor_user is not None else None,
            actor_name=_text(actor_name, 150),
            actor_ip=meta.ip,
            user_agent=_text(redact(meta.user_agent), 300),
            action=_text(action, 64),
            object_type=_text(object_type, 64),
            object_id=_text(str(object_id), 64),
            object_label=_text(redact(label), 300),
            department_id=department_id,
            # Store exactly what gets hashed and read back: see normalise().
            changes=normalise(redact(changes or {})),
            request_id=_text(meta.request_id, 64),
            outcome=outcome,
            prev_hash=prev_hash,
            redaction=RULES_VERSION,
        )
        event.hash = event_hash(event, prev_hash)
        event.save(force_insert=True)
    return event


# --- Refusals: at most one event per key and window ------------------------------------------

# How long the cache remembers a key's last refusal event and the refusals folded into it; a
# count not reported within this time (no refusal of that key came since) is lost.
_REFUSAL_MEMORY = 7 * 24 * 60 * 60


def _refusal_pointer(action: str, address: str, actor_name: str, reason: str) -> str:
    digest = hashlib.sha256("\x00".join((action, address, actor_name, reason)).encode()).hexdigest()
    return f"audit:refusal:last:{digest}"


def _folded_key(event_hash: str) -> str:
    return f"audit:refusal:folded:{event_hash}"


def record_refusal(action: str, *, actor: Actor, changes: dict | None = None, **fields: Any) -> AuditEvent | None:
    """Record a refusal (`auth.login_failed`, `access.denied`) unless its key was recorded within
    the window; returns the event, or None when the refusal was folded into an earlier one.

    The key is (action, client address, actor name, changes["reason"]). The first refusal of a
    key is recorded as usual; repeats within AUDIT_REFUSAL_WINDOW_SECONDS of that event are only
    counted (in the cache, against that event's hash). The next refusal of the key after the
    window is recorded with `changes["repeats"] = {"of": <event id>, "count": <n>}`: n refusals
    like event #id happened after it and are not events of their own. The trail stays
    append-only and every event is hashed as usual; docs/audit.md has the design.

    Outside web requests (no client address), with a window of 0 (a pending count still goes
    into the event), or when the cache cannot be reached, every refusal is recorded: losing a
    refusal is worse than a longer trail.
    """
    address = current_request_meta().ip
    window = settings.AUDIT_REFUSAL_WINDOW_SECONDS
    changes = dict(changes or {})
    if not address:
        return record(action, actor=actor, changes=changes, **fields)
    pointer = _refusal_pointer(action, address, _actor_name(actor), str(changes.get("reason", "")))
    try:
        last_hash = cache.get(pointer)
        # The cache only points: the event itself says whether the window is still open (and a
        # pointer to an event that was rolled back, or never committed, points at nothing).
        last = AuditEvent.objects.filter(hash=last_hash).values_list("id", "at").first() if last_hash else None
        if last is not None and timezone.now() - last[1] < dt.timedelta(seconds=window):
            folded_key = _folded_key(last_hash)
            cache.add(folded_key, 0, _REFUSAL_MEMORY)
            if cache.incr(folded_key) == 1:
                log.warning("audit: repeated %s from %s folded into event #%s for %s s", action, address,
                            last[0], window)
            return None
        folded = cache.get(_folded_key(last_hash), 0) if last is not None else 0
        if folded:
            cache.delete(_folded_key(last_hash))
            changes["repeats"] = {"of": last[0], "count": folded}
    except Exception:
        log.warning("audit: the cache is unreachable, recording every refusal", exc_info=True)
        return record(action, actor=actor, changes=changes, **fields)
    event = record(action, actor=actor, changes=changes, **fields)
    try:
        cache.set(pointer, event.hash, _REFUSAL_MEMORY)
    except Exception:
        log.warning("audit: the cache is unreachable, refusal not remembered", exc_info=True)
    return event


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _text(value: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL; dropping it here keeps the stored value the hashed one.
    return value.replace("\x00", "")[:limit]


def normalise(value: Any) -> Any:
    """A JSON document that reads back from the database exactly as written, on SQLite and PostgreSQL.

    jsonb re-prints numbers (1e16 comes back as 10000000000000000, an int) and refuses NUL
    characters and NaN, so integral floats become ints, non-finite floats and anything that
    is not JSON become strings, and NULs are dropped. Hashing the normalised value means a
    stored event verifies whatever the database did to its JSON.
    """
    if isinstance(value, str):
        return value.replace("\x00", "")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {normalise(str(key)): normalise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(item) for item in value]
    return normalise(str(value))


def canonical_values(values: dict[str, Any]) -> str:
    """The canonical JSON of an event's content given as {field: value} (HASHED_FIELDS)."""
    document = {}
    for name in HASHED_FIELDS:
        value = values[name]
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).isoformat(timespec="microseconds")
        document[name] = value
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical(event: AuditEvent) -> str:
    """The canonical JSON of an event's content (everything but the hashes)."""
    return canonical_values({name: getattr(event, name) for name in HASHED_FIELDS})


def chain_hash(prev_hash: str, canonical_json: str) -> str:
    return hashlib.sha256((prev_hash + canonical_json).encode()).hexdigest()


def event_hash(event: AuditEvent, prev_hash: str) -> str:
    return chain_hash(prev_hash, canonical(event))


# --- Verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A head the chain had at some time: event `last_event_id` had hash `head_hash`."""

    last_event_id: int
    head_hash: str
    count: int | None = None
    at: str = ""
    source: str = "database"

    def as_dict(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "last_event_id": self.last_event_id, "head_hash": self.head_hash,
                "count": self.count, "at": self.at}


class CheckpointError(ValueError):
    """A checkpoint document that cannot be read (missing keys, wrong types)."""


def checkpoint_from_dict(document: Any, source: str = "file") -> Checkpoint:
    """Parse one checkpoint document ({"last_event_id", "head_hash", ...}); raises CheckpointError."""
    if not isinstance(document, dict):
        raise CheckpointError("a checkpoint must be a JSON object")
    try:
        last_event_id = document["last_event_id"]
        head_hash = document["head_hash"]
    except KeyError as exc:
        raise CheckpointError(f"a checkpoint needs {exc.args[0]!r}") from exc
    if isinstance(last_event_id, bool) or not isinstance(last_event_id, int) or last_event_id < 0:
        raise CheckpointError("last_event_id must be a non-negative integer")
    if not (isinstance(head_hash, str) and len(head_hash) == 64 and all(c in "0123456789abcdef" for c in head_hash)):
        raise CheckpointError("head_hash must be 64 lowercase hex digits")
    count = document.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise CheckpointError("count must be an integer")
    return Checkpoint(last_event_id, head_hash, count, str(document.get("at", "")), source)


def checkpoints_from_text(text: str, source: str = "file") -> list[Checkpoint]:
    """Checkpoints from a JSON object, a JSON array of objects, or JSON Lines; raises CheckpointError."""
    text = text.strip()
    if not text:
        raise CheckpointError("the file is empty")
    try:
        documents = json.loads(text)
    except json.JSONDecodeError:
        try:
            documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"not JSON or JSON Lines ({exc.msg} at line {exc.lineno})") from exc
    if isinstance(documents, dict):
        documents = [documents]
    if not isinstance(documents, list) or not documents:
        raise CheckpointError("expected a checkpoint object, a list of them, or JSON Lines")
    return [checkpoint_from_dict(document, source) for document in documents]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_event_id: int | None = None
    reason: str = ""
    first_id: int | None = None  # first and last event walked
    last_id: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Anchor:
    """Where the retained chain starts: GENESIS before event 1, or a prune's anchor."""

    next_id: int
    prev_hash: str
    prune_event_id: int | None = None


_FIELDS = (*HASHED_FIELDS, "prev_hash", "hash")


def verify_chain(*, since_id: int | None = None, checkpoint: dict | None = None,
                 checkpoints: Iterable[Checkpoint] = (), stored_checkpoints: bool = True,
                 batch_size: int = 5000) -> Verdict:
    """Walk the chain (from since_id, or the start) and report the first broken link.

    Detects modified rows (hash mismatch), deleted or inserted rows (id gap, prev_hash
    mismatch), reordering, and, against checkpoints (given, plus those stored in the
    database unless stored_checkpoints=False), truncation of events a checkpoint had seen
    and rewrites of the chain before it. `checkpoint` is the older single-dict form.
    Never raises for tampered data; reading is in id order with keyset pagination, so
    memory stays flat for any length.
    """
    wanted = list(checkpoints)
    if checkpoint:
        wanted.append(checkpoint_from_dict(checkpoint, "argument"))
    if stored_checkpoints:
        wanted += [Checkpoint(cp.last_event_id, cp.head_hash, cp.count, cp.at.isoformat(), f"stored checkpoint {cp.pk}")
                   for cp in AuditCheckpoint.objects.order_by("id")]
    notes: list[str] = []
    first = AuditEvent.objects.order_by("id").values_list("id", "prev_hash").first()
    anchor = _anchor(first)
    if isinstance(anchor, Verdict):
        return anchor
    if anchor.prune_event_id:
        notes.append(f"events up to #{anchor.next_id - 1} were pruned by event #{anchor.prune_event_id}")
    expected_id, expected_prev = anchor.next_id, anchor.prev_hash
    if since_id and since_id > expected_id:
        before = AuditEvent.objects.filter(id__lt=since_id).order_by("-id").values_list("id", "hash").first()
        if before:
            expected_id, expected_prev = before[0] + 1, before[1]
    checked = 0
    first_walked = last_walked = None
    rows = AuditEvent.objects.filter(id__gte=expected_id).order_by("id").values_list(*_FIELDS)
    for row in _keyset(rows, batch_size):
        values = dict(zip(_FIELDS, row, strict=True))
        event_id = values["id"]
        checked += 1
        first_walked = first_walked or event_id
        if event_id != expected_id:
            return Verdict(False, checked, event_id, f"event #{expected_id} is missing (the next one is #{event_id})",
                           first_walked, last_walked, tuple(notes))
        if values["prev_hash"] != expected_prev:
            return Verdict(False, checked, event_id, "its prev_hash is not the previous event's hash "
                           "(an event before it was removed, inserted or changed)", first_walked, last_walked,
                           tuple(notes))
        if chain_hash(values["prev_hash"], canonical_values(values)) != values["hash"]:
            return Verdict(False, checked, event_id, "its content does not match its hash (modified)",
                           first_walked, last_walked, tuple(notes))
        expected_prev, expected_id = values["hash"], event_id + 1
        last_walked = event_id
    head_id = expected_id - 1
    for point in sorted(wanted, key=lambda cp: cp.last_event_id):
        problem = _check_checkpoint(point, head_id, anchor, notes)
        if problem:
            bad_id, reason = problem
            return Verdict(False, checked, bad_id, reason, first_walked, last_walked, tuple(notes))
    return Verdict(True, checked, None, "", first_walked, last_walked, tuple(notes))


def _anchor(first: tuple[int, str] | None) -> _Anchor | Verdict:
    if first is None or first[0] == 1:
        return _Anchor(1, GENESIS)
    first_id, first_prev = first
    if first_id < 1:
        return Verdict(False, 0, first_id, f"event #{first_id} has an id below 1 (inserted)")
    for event_id, changes in (AuditEvent.objects.filter(action="audit.prune").order_by("-id")
                              .values_list("id", "changes")):
        through = _after(changes, "pruned_through")
        if through == first_id - 1:
            anchor_hash = _after(changes, "anchor_hash")
            if anchor_hash != first_prev:
                return Verdict(False, 0, first_id, f"its prev_hash is not the anchor hash that prune event "
                               f"#{event_id} recorded")
            return _Anchor(first_id, first_prev, event_id)
    return Verdict(False, 0, first_id, f"events #1 to #{first_id - 1} are missing and no audit.prune event "
                   "accounts for them (deleted)")


def _after(changes: Any, name: str) -> Any:
    value = changes.get(name) if isinstance(changes, dict) else None
    return value[1] if isinstance(value, list) and len(value) == 2 else None


def _check_checkpoint(point: Checkpoint, head_id: int, anchor: _Anchor,
                      notes: list[str]) -> tuple[int, str] | None:
    where = f"{point.source} (event #{point.last_event_id})"
    if point.last_event_id == 0:
        return None if point.head_hash == GENESIS else (1, f"{where} names event 0 with a hash other than GENESIS")
    if point.last_event_id > head_id:
        return (head_id + 1, f"events #{head_id + 1} to #{point.last_event_id} are missing: the chain ends at "
                f"#{head_id} but {where} saw them (truncated)")
    if point.last_event_id < anchor.next_id - 1:
        notes.append(f"{where} predates the retained events (pruned through #{anchor.next_id - 1}); "
                     "check it against the archive")
        return None
    if point.last_event_id == anchor.next_id - 1:
        if point.head_hash != anchor.prev_hash:
            return (anchor.next_id, f"{where} does not match the prune anchor")
        return None
    stored = AuditEvent.objects.filter(id=point.last_event_id).values_list("hash", flat=True).first()
    if stored != point.head_hash:
        return (point.last_event_id, f"its hash differs from {where}: the chain was rewritten up to here")
    return None


def _keyset(queryset, size: int) -> Iterator[tuple]:
    """Rows of an id-ordered values_list query, `size` at a time: constant memory on any database."""
    last = None
    while True:
        page = queryset if last is None else queryset.filter(id__gt=last)
        batch = list(page[:size])
        if not batch:
            return
        yield from batch
        last = batch[-1][0]


def _iterate(queryset, size: int = 2000) -> Iterator[AuditEvent]:
    """Model instances of an id-ordered query, keyset-paginated (kept for older callers)."""
    last = 0
    while True:
        batch = list(queryset.filter(id__gt=last)[:size])
        if not batch:
            return
        yield from batch
        last = batch[-1].id


# --- Checkpoints and retention --------------------------------------------------------------------


def head() -> tuple[int, str]:
    """(id, hash) of the newest event, or (0, GENESIS) for an empty trail."""
    last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    return last if last else (0, GENESIS)


@transaction.atomic
def checkpoint_create(*, actor: Actor = "system") -> AuditCheckpoint:
    """Record the current head (id, hash, count) so later truncation or rewriting is detectable.

    Also appends an `audit.checkpoint` event naming the head, so the checkpoint itself is in
    the chain. Export the returned checkpoint (`checkpoint_document`) to storage outside the
    database: only a copy out of reach of the database's writers proves anything.
    """
    _lock()
    last_id, head_hash = head()
    checkpoint = AuditCheckpoint.objects.create(last_event_id=last_id, head_hash=head_hash,
                                                count=AuditEvent.objects.count())
    record("audit.checkpoint", actor=actor, object_type="auditcheckpoint", object_id=str(checkpoint.pk),
           label=f"checkpoint at event #{last_id}",
           changes={"last_event_id": [None, last_id], "head_hash": [None, head_hash],
                    "count": [None, checkpoint.count]})
    return checkpoint


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The portable form of a checkpoint, as written by `auditcheckpoint` and read by `verifyaudit`."""
    return Checkpoint(checkpoint.last_event_id, checkpoint.head_hash, checkpoint.count,
                      checkpoint.at.astimezone(dt.UTC).isoformat(timespec="seconds")).as_dict()


@contextlib.contextmanager
def maintenance() -> Iterator[None]:
    """Break glass: lift the PostgreSQL triggers that refuse UPDATE and DELETE on the audit tables.

    Only inside a transaction, which it requires, and only for that transaction: ALTER TABLE
    is transactional in PostgreSQL and takes an exclusive lock, so no other session writes
    (or reads) the tables until it commits, and a rollback re-arms the triggers too. Needs
    the privileges of the tables' owner. A no-op on SQLite, which has no such triggers.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit.maintenance() must run inside transaction.atomic()")
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        for table, trigger in IMMUTABLE_TRIGGERS.items():
            cursor.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER "{trigger}"')
    yield
    with connection.cursor() as cursor:
        for table, trigger in IMMUTABLE_TRIGGERS.items():
            cursor.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER "{trigger}"')


def iter_events_as_dicts(*, through_id: int | None = None, batch_size: int = 5000) -> Iterator[dict[str, Any]]:
    """Every stored event (up to through_id) as a dict of HASHED_FIELDS + prev_hash + hash, in id order."""
    rows = AuditEvent.objects.order_by("id").values_list(*_FIELDS)
    if through_id is not None:
        rows = rows.filter(id__lte=through_id)
    for row in _keyset(rows, batch_size):
        values = dict(zip(_FIELDS, row, strict=True))
        values["at"] = values["at"].astimezone(dt.UTC).isoformat(timespec="microseconds")
        yield values


@dataclass(frozen=True)
class PruneResult:
    through_id: int
    deleted: int
    anchor_hash: str
    event: AuditEvent


def prune(*, through_id: int, actor: Actor, archive_sha256: str, reason: str) -> PruneResult:
    """Delete events 1..through_id (retention), leaving an anchor so the rest still verifies.

    The caller has archived those events first (`auditprune` writes them as JSON Lines and
    passes the archive's SHA-256). Refuses to prune the newest event or a broken chain.
    Writes one `audit.prune` event naming the last pruned id and its hash, in the same
    transaction as the deletion. Raises ValueError when refused.
    """
    with transaction.atomic():
        _lock()
        last_id, _ = head()
        if through_id >= last_id:
            raise ValueError(f"refusing to prune through #{through_id}: the newest event is #{last_id}, "
                             "and the chain must keep at least its head")
        anchor = AuditEvent.objects.filter(id=through_id).values_list("hash", flat=True).first()
        if anchor is None:
            raise ValueError(f"there is no event #{through_id} (already pruned, or never written)")
        with maintenance():
            deleted, _ = AuditEvent.objects.filter(id__lte=through_id).delete()
        event = record("audit.prune", actor=actor, object_type="auditevent", object_id=str(through_id),
                       label=f"events through #{through_id} pruned",
                       changes={"pruned_through": [None, through_id], "anchor_hash": [None, anchor],
                                "deleted": [None, deleted], "archive_sha256": [None, archive_sha256],
                                "reason": [None, reason]})
    return PruneResult(through_id, deleted, anchor, event)
