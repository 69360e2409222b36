"""The build page's live log panel (shared by the build page and the tail fragment)."""

from __future__ import annotations

from builds import buildlogs
from builds.models import Build

POLL_SECONDS = 3  # the panel's refresh while the build runs (and the panel is open and visible)


def tail_context(build: Build, found: buildlogs.Tail, first_line: int = 1) -> dict:
    numbered = bool(found.lines[0][0]) if found.lines else bool(first_line)
    next_line = (found.lines[-1][0] + 1 if found.lines else first_line) if numbered else 0
    return {"build": build, "tail": found, "poll_seconds": POLL_SECONDS,
            "more": build.is_active or (found.available and found.next < found.size),
            "next_line": next_line}


def live_panel_context(request, build: Build) -> dict:
    """The build page's log panel: the end of the log so far (tail_start: a big log opens near
    its end, not at byte 0), its steps (read on incrementally by buildlogs.sections), and the
    poller."""
    follow = request.GET.get("follow") != "0"
    summary = buildlogs.summary(build) if build.is_terminal else None
    found = buildlogs.tail_start(build) if not build.is_terminal else None
    sections = summary.sections if summary is not None else buildlogs.sections(build)
    context = {"log_follow": follow, "log_summary": summary, "log_sections": sections,
               "log_current": sections[-1] if sections and not sections[-1].complete else None,
               "log_from_start": found is None or not found.lines or found.lines[0][0] == 1}
    if found is not None:
        context.update({"log_" + key: value for key, value in tail_context(build, found).items()})
    return context
