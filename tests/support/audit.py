"""Assertions about the audit trail, for tests of anything that changes state.

Every state-changing service and endpoint writes exactly one audit event; prove it with:

    from tests.support.audit import assert_one_event, expect_one_event

    with expect_one_event("gold_version.publish", gold_version, actor=alice) as caught:
        response = client.post(url)          # or a service call
    assert caught.event.changes["status"] == ["draft", "published"]

`expect_one_event` fails unless the block appends exactly one event in total, with that
action, about that object (model instance, or object_type/object_id), and the appended part
of the chain verifies. When the object only exists after the block, leave obj out and check
`caught.event` (or call `assert_event_about(caught.event, obj)`).

`assert_one_event(action, obj, since=mark)` is the looser form for flows that legitimately
write other events too: exactly one event with `action` after `mark = audit_mark()`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from portal import audit
from portal.models import AuditEvent

_UNSET = object()


def audit_mark() -> int:
    """The newest event id now (0 when empty): pass it as `since` later."""
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def events_since(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=mark).order_by("id"))


def describe(events: list[AuditEvent]) -> str:
    return "; ".join(f"#{e.id} {e.action} {e.object_type}:{e.object_id} by {e.actor_name} ({e.outcome})"
                     for e in events) or "none"


def object_key(obj: Any) -> tuple[str, str]:
    """(object_type, object_id) as audit.record() stores them for a model instance."""
    return obj._meta.model_name, str(getattr(obj, "uuid", None) or obj.pk)


def assert_event_about(event: AuditEvent, obj: Any = None, *, object_type: str | None = None,
                       object_id: str | None = None, actor: Any = _UNSET, outcome: str | None = "success",
                       department: Any = _UNSET) -> AuditEvent:
    """Check one event's object, actor, outcome and department; returns it."""
    if obj is not None:
        object_type, object_id = object_key(obj)
    if object_type is not None:
        assert event.object_type == object_type, f"event #{event.id} is about {event.object_type}, not {object_type}"
    if object_id is not None:
        assert event.object_id == str(object_id), f"event #{event.id} is about {event.object_id}, not {object_id}"
    if actor is not _UNSET:
        name = actor if isinstance(actor, str) else actor.get_username()
        assert event.actor_name == name, f"event #{event.id} names {event.actor_name} as actor, not {name}"
        if not isinstance(actor, str):
            assert event.actor_id == actor.pk
    if outcome is not None:
        assert event.outcome == outcome, f"event #{event.id} has outcome {event.outcome}, not {outcome}"
    if department is not _UNSET:
        wanted = getattr(department, "pk", department)
        assert event.department_id == wanted, f"event #{event.id} has department {event.department_id}, not {wanted}"
    return event


def assert_one_event(action: str, obj: Any = None, *, since: int = 0, **checks: Any) -> AuditEvent:
    """Exactly one event with `action` was appended after `since`; it is about obj (and **checks)."""
    events = events_since(since)
    matching = [event for event in events if event.action == action]
    assert len(matching) == 1, f"expected exactly one {action} event, found {len(matching)}: {describe(events)}"
    return assert_event_about(matching[0], obj, **checks)


@dataclass
class Caught:
    event: AuditEvent | None = None


@contextmanager
def expect_one_event(action: str, obj: Any = None, **checks: Any):
    """The block appends exactly one audit event, with `action`, about obj; the new links verify."""
    mark = audit_mark()
    caught = Caught()
    yield caught
    events = events_since(mark)
    assert len(events) == 1, f"expected exactly one event ({action}), found {len(events)}: {describe(events)}"
    assert events[0].action == action, f"expected a {action} event, found {describe(events)}"
    caught.event = assert_event_about(events[0], obj, **checks)
    verdict = audit.verify_chain(since_id=events[0].id, stored_checkpoints=False)
    assert verdict.ok, f"the chain does not verify after the event: #{verdict.bad_event_id} {verdict.reason}"


@contextmanager
def expect_no_event():
    """The block appends no audit event (reads, refused input)."""
    mark = audit_mark()
    yield
    events = events_since(mark)
    assert not events, f"expected no audit event, found {describe(events)}"


class _Rollback(Exception):
    pass


@contextmanager
def tampered():
    """Edit audit rows inside the block (the PostgreSQL append-only triggers are lifted for it);
    every change is rolled back when the block ends. For tests that prove tampering is caught."""
    from django.db import transaction

    try:
        with transaction.atomic(), audit.maintenance():
            yield
            raise _Rollback
    except _Rollback:
        pass


@contextmanager
def stored_before_redaction_rules():
    """Events recorded in the block are stored as an older Goldsmith would have: unredacted,
    under redaction rules version 0. For tests of the second line of defence (pages and exports
    redact again whatever is stored under older rules)."""
    original_redact, original_version = audit.redact, audit.RULES_VERSION
    audit.redact, audit.RULES_VERSION = (lambda value: value), 0
    try:
        yield
    finally:
        audit.redact, audit.RULES_VERSION = original_redact, original_version
