"""System checks for Goldsmith's configuration (`manage.py check`, and before migrate/runserver).

Each problem has a stable id, listed in docs/operations.md, so operators can search for it
and silence one deliberately with SILENCED_SYSTEM_CHECKS. The checks read settings when they
run, not at import, so tests can drive them with override_settings.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

TAG = "goldsmith"
EMULATOR_CLIENT_SECRET = "emulator-secret"
# The placeholder ids that settings fall back to for the emulator; real Azure never issues them.
EMULATOR_TENANT_ID = "11111111-1111-1111-1111-111111111111"
EMULATOR_SUBSCRIPTION_ID = "22222222-2222-2222-2222-222222222222"
# Host names that can only mean this machine (or Django's test client), never a public site.
_LOOPBACK_NAMES = {"localhost", "testserver"}
# The service name docker-compose.yml gives the emulator.
_EMULATOR_NAMES = {"emulator"}
_IDENTITY = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.managedidentity/userassignedidentities/[^/]+$",
    re.IGNORECASE,
)
_REDIS_SCHEMES = {"redis", "rediss", "unix"}


def is_loopback_host(host: str) -> bool:
    """True for localhost, *.localhost, 127.0.0.0/8 and ::1, with or without brackets or port."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _points_at_emulator(url: str) -> bool:
    host = _url_host(url)
    return bool(host) and (is_loopback_host(host) or host in _EMULATOR_NAMES)


@register(TAG)
def check_debug_hosts(app_configs=None, **kwargs):
    if not settings.DEBUG:
        return []
    public = [host for host in settings.ALLOWED_HOSTS if not is_loopback_host(host)]
    if not public:
        return []
    return [Error(
        f"DEBUG is on while ALLOWED_HOSTS admits non-loopback hosts ({', '.join(public)}).",
        hint="DEBUG pages show settings and source code to anyone who can reach them: unset DEBUG "
             "for a reachable portal, or keep ALLOWED_HOSTS to localhost while debugging.",
        id="goldsmith.E001",
    )]


@register(TAG)
def check_deployed_against_emulator(app_configs=None, **kwargs):
    if not settings.DEPLOYED:
        return []
    reasons = [
        f"{name} points at {_url_host(getattr(settings, name))}"
        for name in ("AZURE_ARM_ENDPOINT", "AZURE_AUTHORITY_HOST")
        if _points_at_emulator(getattr(settings, name))
    ]
    if settings.AZURE_EMULATOR:
        reasons.append("AZURE_EMULATOR is on")
    if not reasons:
        return []
    return [Error(
        f"The portal is deployed but talks to the Azure emulator: {'; '.join(reasons)}.",
        hint="Builds would never reach Azure. Unset AZURE_ARM_ENDPOINT, AZURE_AUTHORITY_HOST and "
             "AZURE_EMULATOR (the defaults are public Azure), or unset ALLOWED_HOSTS for a local demo.",
        id="goldsmith.E002",
    )]


@register(TAG)
def check_ca_bundle(app_configs=None, **kwargs):
    bundle = settings.AZURE_CA_BUNDLE
    if not bundle or Path(bundle).is_file():
        return []
    return [Warning(
        f"AZURE_CA_BUNDLE names {bundle}, which is not a file.",
        hint="Every Azure call will fail TLS verification. With the emulator the file is "
             "<emulator data dir>/ca.pem, written on its first start; against real Azure leave it unset.",
        id="goldsmith.W003",
    )]


@register(TAG)
def check_arm_endpoint_https(app_configs=None, **kwargs):
    if urlsplit(settings.AZURE_ARM_ENDPOINT).scheme == "https":
        return []
    return [Error(
        f"AZURE_ARM_ENDPOINT must be an https:// URL, got {settings.AZURE_ARM_ENDPOINT!r}.",
        hint="The Azure SDK refuses to send bearer tokens over plain HTTP. Use "
             "https://management.azure.com, or the emulator's https address.",
        id="goldsmith.E004",
    )]


@register(TAG)
def check_deployed_database(app_configs=None, **kwargs):
    if not settings.DEPLOYED or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return []
    return [Warning(
        "The portal is deployed on SQLite.",
        hint="SQLite serialises every write and lives on one machine's disk: set DATABASE_URL to "
             "a PostgreSQL database before several web processes and workers share it.",
        id="goldsmith.W005",
    )]


@register(TAG)
def check_deployed_client_secret(app_configs=None, **kwargs):
    if not settings.DEPLOYED or settings.AZURE_CLIENT_SECRET != EMULATOR_CLIENT_SECRET:
        return []
    return [Warning(
        "The portal is deployed with the emulator's placeholder AZURE_CLIENT_SECRET.",
        hint="Set AZURE_CLIENT_SECRET (or AZURE_CLIENT_SECRET_FILE) to the service principal's secret; "
             "Entra ID will refuse the placeholder.",
        id="goldsmith.W006",
    )]


@register(TAG)
def check_authority_https(app_configs=None, **kwargs):
    if urlsplit(settings.AZURE_AUTHORITY_HOST).scheme == "https":
        return []
    return [Error(
        f"AZURE_AUTHORITY_HOST must be an https:// URL, got {settings.AZURE_AUTHORITY_HOST!r}.",
        hint="MSAL and azure-identity only talk to an authority over TLS. Use "
             "https://login.microsoftonline.com, or the emulator's https address.",
        id="goldsmith.E007",
    )]


@register(TAG)
def check_redis_url(app_configs=None, **kwargs):
    scheme = urlsplit(settings.REDIS_URL).scheme
    if scheme in _REDIS_SCHEMES:
        return []
    return [Error(
        f"REDIS_URL must start with redis://, rediss:// or unix://, got scheme {scheme!r}.",
        hint="Without a usable Redis no build is ever queued; the mistake would otherwise only "
             "show at the first enqueue.",
        id="goldsmith.E008",
    )]


@register(TAG)
def check_deployed_azure_ids(app_configs=None, **kwargs):
    if not settings.DEPLOYED:
        return []
    placeholders = [
        name for name, placeholder in (("AZURE_TENANT_ID", EMULATOR_TENANT_ID),
                                       ("AZURE_SUBSCRIPTION_ID", EMULATOR_SUBSCRIPTION_ID))
        if getattr(settings, name) == placeholder
    ]
    if not placeholders:
        return []
    return [Warning(
        f"The portal is deployed with the emulator's placeholder {' and '.join(placeholders)}.",
        hint="Set them to your Entra ID tenant and the subscription that holds AZURE_RESOURCE_GROUP.",
        id="goldsmith.W009",
    )]


@register(TAG)
def check_template_identity(app_configs=None, **kwargs):
    if _IDENTITY.match(settings.AZURE_TEMPLATE_IDENTITY):
        return []
    return [Error(
        "AZURE_TEMPLATE_IDENTITY is not the resource id of a user-assigned managed identity.",
        hint="Image Builder rejects every template without one. Expected "
             "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/"
             "userAssignedIdentities/<name>.",
        id="goldsmith.E010",
    )]
