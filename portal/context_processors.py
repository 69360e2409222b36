"""Template context every page gets."""

from __future__ import annotations

from django.conf import settings


def sandbox(request) -> dict:
    """`sandbox_time_scale`: the emulator's time scale when the portal talks to the emulator
    (AZURE_EMULATOR), so base.html can say that Azure is emulated; None against real Azure.

    The scale is GOLDSMITH_EMULATOR_TIME_SCALE, the one runall starts the emulator with.
    """
    return {"sandbox_time_scale": settings.GOLDSMITH_EMULATOR_TIME_SCALE if settings.AZURE_EMULATOR else None}
