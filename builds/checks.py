"""System checks of the build domain (ids continue portal/checks.py's goldsmith.E0xx series;
docs/operations.md lists them)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, register

from portal.checks import TAG
from portal.faultpoints import ENV


@register(TAG)
def check_fault_points(app_configs=None, **kwargs):
    if not settings.DEPLOYED or not os.environ.get(ENV):
        return []
    return [Error(
        f"{ENV} is set in a deployed portal: workers would kill themselves at the named points.",
        hint=f"{ENV} is for fault-injection tests only; unset it.",
        id="goldsmith.E011",
    )]
