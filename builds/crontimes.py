"""Cron expressions of patch schedules (pure: no Django; builds/schedules.py stores and fires them).

Five fields (minute hour day-of-month month day-of-week), read by croniter, the parser rq's
own cron scheduler uses, in the schedule's IANA time zone: "0 3 * * 2#2" is 03:00 on the second
Tuesday of every month, local time (daylight saving included).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter


def problems(expression: str, time_zone: str) -> dict[str, str]:
    """{"cron" or "time_zone": message} for what is wrong; {} when both are usable."""
    found = {}
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        found["cron"] = ("Use five fields: minute hour day-of-month month day-of-week, e.g. 0 3 * * 2#2 "
                         "(03:00 on the second Tuesday of each month).")
    if time_zone not in available_timezones():
        found["time_zone"] = "Use an IANA time zone name, e.g. Europe/Berlin or UTC."
    return found


def next_runs(expression: str, time_zone: str, after: dt.datetime, count: int = 3) -> list[dt.datetime]:
    """The next `count` run times strictly after `after` (aware), in UTC. Raises ValueError
    for an expression or time zone that problems() refuses."""
    if problems(expression, time_zone):
        raise ValueError(f"not a usable schedule: {expression!r} in {time_zone!r}")
    try:
        zone = ZoneInfo(time_zone)
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - problems() checked it
        raise ValueError(time_zone) from exc
    times = croniter(expression, after.astimezone(zone))
    return [times.get_next(dt.datetime).astimezone(dt.UTC) for _ in range(count)]
