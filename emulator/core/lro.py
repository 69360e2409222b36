"""The Retry-After every emulated long-running operation sends (Image Builder, deployments).

One rule for every service: the control API's `retry_after` setting when set (tests set 0),
else a realistic interval divided by the time scale, never below one whole second (azure-core
honours Retry-After over its own polling interval, and waits 30 s per poll without it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.core.pipeline import App

RETRY_AFTER_SECONDS = 10  # realistic Retry-After on LRO answers, divided by the time scale
MIN_RETRY_AFTER = 1  # whole seconds: the least any LRO answer says (unless the setting overrides)


def retry_after(app: App, realistic_seconds: float = RETRY_AFTER_SECONDS) -> str:
    """The Retry-After header value for an LRO answer at this moment."""
    control = app.services.get("control")
    settings = getattr(control, "settings", None) or {}
    override = settings.get("retry_after")
    if override is not None:
        return str(int(override)) if float(override).is_integer() else str(override)
    return str(max(MIN_RETRY_AFTER, round(realistic_seconds / app.clock.time_scale)))
