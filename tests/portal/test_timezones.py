"""Times in the browser's zone (the goldsmith_tz cookie set by static/app.js)."""

import datetime as dt

import pytest
from django.template import Context, Template
from django.utils import timezone

from portal import timezones

MOMENT = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)


def render_when(value=MOMENT) -> str:
    return Template("{% load goldsmith %}{% when value %}").render(Context({"value": value}))


def test_it_accepts_known_zones_only():
    assert str(timezones.zone_from("Europe/Paris")) == "Europe/Paris"
    assert str(timezones.zone_from("Europe%2FParis")) == "Europe/Paris"
    for bad in ("", None, "Mars/Olympus", "../../etc/passwd", "/etc/localtime", "x" * 100):
        assert timezones.zone_from(bad) is None


def test_times_render_in_the_active_zone_with_the_zone_named():
    with timezone.override("Europe/Paris"):
        text = render_when()
    assert ">1 Jul 2026, 14:00 CEST</time>" in text
    assert 'datetime="2026-07-01T12:00:00+00:00"' in text
    assert "ago)" in text


def test_a_missing_time_says_never():
    assert "never" in render_when(None)


@pytest.mark.parametrize("cookie, expected", [("America/New_York", "EDT"), ("Nowhere/Land", "UTC")])
def test_the_middleware_uses_the_cookie_or_falls_back(rf, cookie, expected):
    seen = {}

    def view(request):
        seen["name"] = timezone.localtime(MOMENT).tzname()
        return None

    request = rf.get("/")
    request.COOKIES[timezones.COOKIE] = cookie
    timezones.TimezoneMiddleware(view)(request)
    assert seen["name"] == expected
    assert timezone.get_current_timezone_name() == "UTC"  # deactivated after the request
