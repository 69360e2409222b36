"""Times in the user's time zone, as the browser reports it.

static/app.js stores the browser's IANA zone (Intl.DateTimeFormat().resolvedOptions().timeZone)
in the `goldsmith_tz` cookie on every page, the sign-in page included, so the pages after
sign-in already render in the person's zone. Without the cookie (no JavaScript, or the very
first page) times are shown in settings.TIME_ZONE, labelled with the zone's abbreviation, so
they are never ambiguous. A per-user profile setting would need a model field; the browser's
own setting is what people expect and follows them when they travel.
"""

from __future__ import annotations

import zoneinfo
from urllib.parse import unquote

from django.utils import timezone

COOKIE = "goldsmith_tz"


def zone_from(value: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone named by the cookie, or None for a missing, malformed or unknown name."""
    value = unquote(value or "")  # tolerate a percent-encoded "/" (Europe%2FParis)
    if not value or len(value) > 64 or ".." in value or value.startswith("/"):
        return None
    try:
        return zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


class TimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = zone_from(request.COOKIES.get(COOKIE))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
