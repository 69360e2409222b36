"""Long-running operations shared by the services.

- `retry_after(app)`: the Retry-After every LRO answer carries (the initial answer and each
  status poll): the control API's `retry_after` setting when set, else 10 s divided by the time
  scale, never below 1 (azure-core honours it over its own polling_interval).
- `ClockOperations`: async operation documents that end by the emulator clock. A service starts
  one with the simulated seconds it lasts; its status is computed on every read (InProgress
  until then, Succeeded after), so a frozen clock freezes it and advancing the clock ends it,
  with nothing running in the background.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from emulator.core.clock import iso
from emulator.core.http import ArmError

if TYPE_CHECKING:
    from emulator.core.pipeline import App

RETRY_AFTER_SECONDS = 10  # realistic Retry-After on LRO answers, divided by the time scale
MIN_RETRY_AFTER = 1  # whole seconds: the least any LRO answer says (unless the retry_after setting overrides)
POLL_HOLD = 0.02  # seconds an in-progress poll may be held when Retry-After is 0


def retry_after(app: App, realistic_seconds: float = RETRY_AFTER_SECONDS) -> str:
    """The Retry-After header value for an LRO answer at this moment (Image Builder, galleries,
    deployments): the control API's `retry_after` setting when set (tests set 0), else a realistic
    interval divided by the time scale, never below one whole second."""
    control = app.services.get("control")
    settings = getattr(control, "settings", None) or {}
    override = settings.get("retry_after")
    if override is not None:
        return str(int(override)) if float(override).is_integer() else str(override)
    return str(max(MIN_RETRY_AFTER, round(realistic_seconds / app.clock.time_scale)))


class ClockOperations:
    """Operation documents of one kind in app.store, each ending at its `until` (emulator clock)."""

    def __init__(self, app: App, kind: str):
        self.app = app
        self.kind = kind

    def start(self, *, subscription: str, location: str, seconds: float, **extra: Any) -> dict:
        """A new operation lasting `seconds` simulated seconds (0: already Succeeded)."""
        now = self.app.clock.now()
        op = {"id": str(uuid.uuid4()), "subscription": subscription, "location": location,
              "startTime": iso(now), "start": now.timestamp(),
              "until": (now + self.app.clock.scaled(seconds)).timestamp(), **extra}
        self.app.store.put(self.kind, op["id"], op)
        return op

    def status(self, op: dict) -> str:
        return "InProgress" if self.app.clock.now().timestamp() < op["until"] else "Succeeded"

    def document(self, op: dict) -> dict:
        """Azure-AsyncOperation's status document: {name, status, startTime[, endTime]}."""
        status = self.status(op)
        body = {"name": op["id"], "status": status, "startTime": op["startTime"]}
        if status != "InProgress":
            body["endTime"] = iso(datetime.fromtimestamp(op["until"], UTC))
        return body

    def poll(self, subscription: str, op_id: str) -> dict:
        """The operation for a status poll; 404 OperationNotFound when unknown. When Retry-After
        is 0 an in-progress answer is held up to POLL_HOLD seconds, so no client can spin."""
        op = self.app.store.get(self.kind, op_id)
        if op is None or op["subscription"].lower() != subscription.lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        if self.status(op) == "InProgress" and retry_after(self.app) == "0" and not self.app.clock.frozen:
            time.sleep(min(POLL_HOLD, max(0.0, op["until"] - self.app.clock.now().timestamp())))
        return op
