"""System checks of notifications (ids: goldsmith.E03x; docs/operations.md lists them)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

from portal.checks import TAG, is_loopback_host


@register(TAG)
def check_base_url(app_configs=None, **kwargs):
    """Deployed, every link in a message and an event body starts with NOTIFY_BASE_URL: its
    sandbox default (http://127.0.0.1:8000) would send people to their own machine."""
    if not settings.DEPLOYED:
        return []
    parts = urlsplit(settings.NOTIFY_BASE_URL or "")
    if parts.scheme in ("http", "https") and parts.hostname and not is_loopback_host(parts.hostname):
        return []
    return [Error(
        f"NOTIFY_BASE_URL is {settings.NOTIFY_BASE_URL!r} in a deployed portal.",
        hint="Links in e-mails, Teams and Slack messages and webhook bodies start with it; set it to the "
             "portal's public address, e.g. https://goldsmith.example.com.",
        id="goldsmith.E030",
    )]
