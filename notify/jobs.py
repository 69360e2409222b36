"""RQ entry points of notifications (thin): each takes an id and calls one step.

Named by dotted path in notify/queue.py; the scheduler (builds/cron.py) registers the periodic
ones. Nothing else imports this module.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.urls import reverse
from rq import get_current_job

from notify import delivery, events, queue
from notify.models import OutboxEvent
from portal import audit

log = logging.getLogger(__name__)


def event_fanout(event_id: int) -> dict[str, int]:
    """The pump: fan the event out and send its deliveries in the same job (no job, no fork, per
    delivery), then every other event waiting for its fan-out, while its time budget lasts."""
    job = get_current_job()
    queue.pump_started(job.id if job else None)
    return delivery.pump(event_id)


def event_send(event_id: int, generation: int = 0) -> dict[str, int]:
    return delivery.send_event(event_id, generation=generation)


def delivery_send(delivery_id: int) -> str:
    """One delivery (jobs enqueued before sending was batched per event may still be queued)."""
    return delivery.send(delivery_id)


def digest_send(recipient_id: int) -> int:
    return delivery.send_digest(recipient_id)


def notify_reconcile() -> dict[str, int]:
    return delivery.reconcile()


def audit_verify() -> dict:
    """The periodic verification of the audit chain; a broken link emits audit.verify_failed
    once per broken event (the next runs find the same link and stay quiet)."""
    verdict = audit.verify_chain()
    if verdict.ok:
        return {"ok": True, "checked": verdict.checked}
    log.error("audit chain verification failed at event %s: %s", verdict.bad_event_id, verdict.reason)
    object_id = str(verdict.bad_event_id or 0)
    with transaction.atomic():
        if not OutboxEvent.objects.filter(type="audit.verify_failed", object_id=object_id).exists():
            events.emit("audit.verify_failed", object_type="audit_event", object_id=object_id,
                        link=reverse("portal:audit-verify"),
                        data={"id": verdict.bad_event_id or 0, "reason": verdict.reason,
                              "bad_event_id": verdict.bad_event_id, "checked": verdict.checked})
    return {"ok": False, "bad_event_id": verdict.bad_event_id, "reason": verdict.reason}
