"""Emitting events: one outbox row, written inside the transaction of the change it reports.

`emit` is called by the services and workers that make the change (builds/lifecycle.py,
builds/services.py, ...) after the change and its audit event, inside their
`transaction.atomic` block: the row commits or rolls back with the change, so no event is
lost when a worker dies or Redis is flushed (the reconciler fans out what a lost job did not),
and none is announced for a change that rolled back. Fan-out is enqueued on commit.

Imports only models and the catalog, never web/ or api/, so any domain module may import it.
"""

from __future__ import annotations

import uuid as uuid_
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from notify import catalog, queue
from notify.models import OutboxEvent


def absolute(path: str) -> str:
    """The portal's address for `path` (NOTIFY_BASE_URL + path): links in messages need a host."""
    return settings.NOTIFY_BASE_URL.rstrip("/") + path


def emit(type: str, *, object_type: str, object_id: Any, data: dict[str, Any], link: str,
         department_id: int | None = None, subjects: dict[str, list[int]] | None = None) -> OutboxEvent:
    """Write event `type` (a catalog name; KeyError otherwise) to the outbox.

    `data` is the object's part of the body (the catalog's schema for the type's family; its
    `id` is `object_id`); `link` is a path or URL of the page to open; `department_id` decides
    who may receive it (the access funnel's rule); `subjects` names users it concerns directly:
    {"requested_by": [id], "owners": [...], "approvers": [...]} for the "my ..." subscriptions.
    Call it inside the writer's transaction. Returns the row.
    """
    event_type = catalog.get(type)
    event_uuid = uuid_.uuid4()
    occurred_at = timezone.now()
    body = {
        "type": type,
        "id": str(event_uuid),
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "link": link if "://" in link else absolute(link),
        event_type.family: data,
    }
    event = OutboxEvent.objects.create(uuid=event_uuid, type=type, object_type=object_type, object_id=str(object_id),
                                       department_id=department_id, subjects=subjects or {}, body=body,
                                       occurred_at=occurred_at)
    queue.enqueue_fanout(event)
    return event


# --- Today's emitters ---------------------------------------------------------------------------

BUILD_TYPES = {"succeeded": "build.succeeded", "failed": "build.failed",
               "partially_succeeded": "build.partially_succeeded", "canceled": "build.canceled"}


def build_event(build, type: str) -> OutboxEvent:
    """Emit `type` (build.*) for a Build row; a failed build links to its failing step."""
    gold_version = build.gold_version
    link = reverse("builds:build-detail", args=[build.uuid]) + ("#failing-step" if type == "build.failed" else "")
    data = {
        "id": str(build.uuid),
        "state": build.state,
        "department": build.department.slug if build.department_id else None,
        "gold_image": gold_version.gold_image.slug,
        "gold_version": gold_version.version,
        "requested_by": build.requested_by.get_username(),
        "error_code": build.error_code,
        "error_message": build.error_message[:1000],
        "finished_at": build.finished_at.isoformat() if build.finished_at else None,
    }
    return emit(type, object_type="build", object_id=build.uuid, data=data, link=link,
                department_id=build.department_id, subjects={"requested_by": [build.requested_by_id]})


def build_finished(build) -> OutboxEvent | None:
    """Emit the event of a build's terminal state (none for other states)."""
    type = BUILD_TYPES.get(build.state)
    return build_event(build, type) if type else None


def version_event(gold_version, type: str, *, actor: Any = None, reason: str = "") -> OutboxEvent:
    """Emit `type` (version.*) for a GoldImageVersion row; `actor` is a user or a name."""
    image = gold_version.gold_image
    name = actor.get_username() if hasattr(actor, "get_username") else str(actor or "system")
    data = {"id": str(gold_version.uuid), "gold_image": image.slug, "version": gold_version.version,
            "status": gold_version.status, "reason": reason, "actor": name}
    return emit(type, object_type="gold_version", object_id=gold_version.uuid, data=data,
                link=reverse("builds:gold-version", args=[image.slug, gold_version.version]),
                subjects={"owners": [image.created_by_id]})
