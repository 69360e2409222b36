"""System checks for sign-in settings (ids goldsmith.W020 and on; listed in docs/operations.md)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

from portal.checks import TAG, _points_at_emulator

EMULATOR_PORTAL_SECRET = "emulator-portal-secret"
_ENTRA_TRIO = ("ENTRA_CLIENT_ID", "ENTRA_TENANT_ID", "ENTRA_CLIENT_SECRET")


@register(TAG)
def check_entra_complete(app_configs=None, **kwargs):
    given = [name for name in _ENTRA_TRIO if getattr(settings, name, "")]
    if not given or len(given) == len(_ENTRA_TRIO):
        return []
    missing = [name for name in _ENTRA_TRIO if name not in given]
    return [Warning(
        f"Entra ID sign-in is half configured: {', '.join(missing)} not set, so it is off.",
        hint="Set all three of ENTRA_CLIENT_ID, ENTRA_TENANT_ID and ENTRA_CLIENT_SECRET (or _FILE), or none.",
        id="goldsmith.W020",
    )]


@register(TAG)
def check_entra_authority_https(app_configs=None, **kwargs):
    if not settings.ENTRA_ENABLED or urlsplit(settings.ENTRA_AUTHORITY_HOST).scheme == "https":
        return []
    return [Error(
        f"ENTRA_AUTHORITY_HOST must be an https:// URL, got {settings.ENTRA_AUTHORITY_HOST!r}.",
        hint="ID tokens and the client secret travel over this connection.",
        id="goldsmith.E021",
    )]


@register(TAG)
def check_deployed_entra_emulator(app_configs=None, **kwargs):
    if not (settings.DEPLOYED and settings.ENTRA_ENABLED):
        return []
    if settings.ENTRA_CLIENT_SECRET != EMULATOR_PORTAL_SECRET and not _points_at_emulator(settings.ENTRA_AUTHORITY_HOST):
        return []
    return [Error(
        "The deployed portal signs people in with the emulator's Entra ID (its login host or its placeholder secret).",
        hint="Anyone can pick any user, roles included, on the emulator's sign-in page. Point ENTRA_AUTHORITY_HOST "
             "at https://login.microsoftonline.com and use your app registration's secret.",
        id="goldsmith.E022",
    )]
