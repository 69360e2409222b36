"""The build page's live log panel (shared by the build page and the tail fragment)."""

from __future__ import annotations

from builds import buildlogs, packerlog
from builds.models import Build

POLL_SECONDS = 3  # the panel's refresh while the build runs (and the panel is open and visible)


def tail_context(build: Build, found: buildlogs.Tail, first_line: int = 1) -> dict:
    next_line = found.lines[-1][0] + 1 if found.lines else first_line
    return {"build": build, "tail": found, "poll_seconds": POLL_SECONDS,
            "more": build.is_active or (found.available and found.next < found.size),
            "next_line": next_line}


def live_panel_context(request, build: Build) -> dict:
    """The build page's log panel: the log so far (one read), its steps, and the poller."""
    follow = request.GET.get("follow") != "0"
    summary = buildlogs.summary(build) if build.is_terminal else None
    found = buildlogs.tail(build, 0) if not build.is_terminal else None
    sections = ()
    if found is not None and found.lines:
        reader = packerlog.Reader(build.template)
        for _number, text in found.lines:
            reader.feed(text)
        sections = tuple(reader.sections)
    elif summary is not None:
        sections = summary.sections
    context = {"log_follow": follow, "log_summary": summary, "log_sections": sections,
               "log_current": sections[-1] if sections and not sections[-1].complete else None}
    if found is not None:
        context.update({"log_" + key: value for key, value in tail_context(build, found).items()})
    return context
