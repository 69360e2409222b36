"""Every event type Goldsmith announces, with the JSON Schema of its body (pure: no I/O).

docs/events.md lists the same types and schemas; tests/notify/test_catalog.py holds the two in
step (and validates every body emitted by today's code against its schema). A type's name never
changes once released: receivers route on it.

Every body has `type`, `id` (the event's UUID, also the base of the idempotency key),
`occurred_at` (ISO 8601, UTC), `link` (the page to open) and one object named after the event's
family (`build`, `version`, `approval`, `rollout`, `source`, `audit`) whose `id` is the
object's UUID (or number, for the audit chain).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}


@dataclass(frozen=True)
class EventType:
    name: str
    title: str
    family: str  # the key of the object in the body
    object_schema: dict[str, Any]
    emitted: bool  # emitted by today's code (the others are reserved for features in progress)
    summary: str = ""
    severity: str = "info"  # info, good, warning, attention: a colour for Teams and Slack
    defaults: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (role, scope) subscribed by default

    def schema(self) -> dict[str, Any]:
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "type": "object",
            "required": ["type", "id", "occurred_at", "link", self.family],
            "properties": {
                "type": {"const": self.name},
                "id": {"type": "string", "format": "uuid"},
                "occurred_at": {"type": "string", "format": "date-time"},
                "link": {"type": "string", "format": "uri"},
                self.family: self.object_schema,
            },
        }


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["id", *required], "properties": properties}


_BUILD = _object(["state", "department", "gold_image", "gold_version", "requested_by"], {
    "id": {"type": "string", "format": "uuid"},
    "state": _STR,
    "department": _NSTR,
    "gold_image": _STR,
    "gold_version": _STR,
    "requested_by": _STR,
    "error_code": _STR,
    "error_message": _STR,
    "finished_at": _NSTR,
})
_VERSION = _object(["gold_image", "version", "status"], {
    "id": {"type": "string", "format": "uuid"},
    "gold_image": _STR,
    "version": _STR,
    "status": _STR,
    "reason": _STR,
    "actor": _STR,
})
_APPROVAL = _object(["subject", "department", "requested_by"], {
    "id": {"type": "string"},
    "subject": {"type": "object", "description": "what waits for approval: {type, id, label}"},
    "department": _NSTR,
    "requested_by": _STR,
    "decided_by": _NSTR,
    "comment": _STR,
})
_ROLLOUT = _object(["gold_image", "version", "state"], {
    "id": {"type": "string"},
    "gold_image": _STR,
    "version": _STR,
    "state": _STR,
    "wave": {"type": ["integer", "null"]},
    "waves": {"type": ["integer", "null"]},
    "reason": _STR,
})
_SOURCE = _object(["publisher", "offer", "sku", "version"], {
    "id": {"type": "string"},
    "publisher": _STR,
    "offer": _STR,
    "sku": _STR,
    "version": _STR,
    "deprecation_date": _NSTR,
    "gold_images": {"type": "array", "items": _STR},
})
_AUDIT = _object(["reason", "bad_event_id", "checked"], {
    "id": {"type": "integer"},
    "reason": _STR,
    "bad_event_id": {"type": ["integer", "null"]},
    "checked": {"type": "integer"},
})

_EDITOR_DEPT = ("editor", "department")
_SECURITY = ("security", "all")

TYPES: tuple[EventType, ...] = (
    EventType("build.succeeded", "Build succeeded", "build", _BUILD, True, "The image is built and distributed.",
              "good"),
    EventType("build.failed", "Build failed", "build", _BUILD, True, "The build failed.", "attention",
              defaults=(_EDITOR_DEPT,)),
    EventType("build.partially_succeeded", "Build partially succeeded", "build", _BUILD, True,
              "Some distribution targets failed.", "warning", defaults=(_EDITOR_DEPT,)),
    EventType("build.canceled", "Build canceled", "build", _BUILD, True, "The build was canceled."),
    EventType("build.stuck", "Build stuck canceling", "build", _BUILD, True,
              "The build has been canceling for too long: check its template in Azure.", "warning",
              defaults=(_EDITOR_DEPT,)),
    EventType("approval.requested", "Approval requested", "approval", _APPROVAL, True,
              "Something waits for your approval.", "warning",
              defaults=(("editor", "approvals"), ("security", "approvals"))),
    EventType("approval.approved", "Approved", "approval", _APPROVAL, True, "The request was approved.", "good"),
    EventType("approval.rejected", "Rejected", "approval", _APPROVAL, True, "The request was rejected.", "attention"),
    EventType("version.published", "Gold image version published", "version", _VERSION, True,
              "A new gold image version can be built."),
    EventType("version.promoted", "Gold image version promoted", "version", _VERSION, True,
              "A gold image version was promoted."),
    EventType("version.deprecated", "Gold image version deprecated", "version", _VERSION, True,
              "A gold image version is out of date.", "warning"),
    EventType("version.revoked", "Gold image version revoked", "version", _VERSION, True,
              "Nothing may be built from this gold image version any more.", "attention"),
    EventType("rollout.started", "Rollout started", "rollout", _ROLLOUT, True, "A rollout started.",
              defaults=(_SECURITY,)),
    EventType("rollout.wave_done", "Rollout wave done", "rollout", _ROLLOUT, True, "A rollout wave finished.",
              "good", defaults=(_SECURITY,)),
    EventType("rollout.stopped", "Rollout stopped at threshold", "rollout", _ROLLOUT, True,
              "A rollout stopped at its failure threshold.", "attention", defaults=(_SECURITY,)),
    EventType("rollout.finished", "Rollout finished", "rollout", _ROLLOUT, True, "A rollout finished.", "good",
              defaults=(_SECURITY,)),
    EventType("source.available", "New source image available", "source", _SOURCE, True,
              "A newer source image is available.", defaults=(_SECURITY,)),
    EventType("source.deprecation_scheduled", "Source deprecation scheduled", "source", _SOURCE, True,
              "A source image will be deprecated.", "warning", defaults=(_SECURITY,)),
    EventType("audit.verify_failed", "Audit chain verification failed", "audit", _AUDIT, True,
              "The periodic verification found a broken link in the audit trail.", "attention",
              defaults=(("auditor", "all"),)),
)
BY_NAME: dict[str, EventType] = {event.name: event for event in TYPES}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def get(name: str) -> EventType:
    """The event type `name`; raises KeyError for an unknown one (a typo must fail loudly)."""
    return BY_NAME[name]


def schema_problems(body: dict[str, Any]) -> list[str]:
    """What is wrong with an event body against its type's schema (empty when it is valid)."""
    event = BY_NAME.get(body.get("type", ""))
    if event is None:
        return [f"unknown event type {body.get('type')!r}"]
    validator = jsonschema.Draft202012Validator(event.schema(), format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
            for error in validator.iter_errors(body)]


# The subscription scopes that mean something for each family (the profile page offers these).
SCOPES_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "build": ("mine", "department", "all"),
    "approval": ("approvals", "department", "all"),
    "version": ("owned", "all"),
    "rollout": ("owned", "department", "all"),
    "source": ("owned", "all"),
    "audit": ("all",),
}


def markdown() -> str:
    """The catalog section of docs/events.md (tests/notify/test_catalog.py keeps them equal)."""
    lines = ["| type | emitted today | what happened |", "| --- | --- | --- |"]
    lines += [f"| `{e.name}` | {'yes' if e.emitted else 'reserved'} | {e.summary} |" for e in TYPES]
    for event in TYPES:
        lines += ["", f"### `{event.name}`", "", f"{event.title}. {event.summary}"
                  + ("" if event.emitted else " Reserved: emitted once its feature lands."), "",
                  "```json", json.dumps(event.schema(), indent=2), "```"]
    return "\n".join(lines) + "\n"
