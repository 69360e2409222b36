"""The build page's live log panel (shared by the build page and the tail fragment)."""

from __future__ import annotations

from builds import buildlogs
from builds.models import Build

POLL_SECONDS = 3  # the panel's refresh while the build runs (and the panel is open and visible)


def tail_context(build: Build, found: buildlogs.Tail, first_line: int = 1, *, log: str = buildlogs.CUSTOMIZATION,
                 switched: bool = False) -> dict:
    numbered = bool(found.lines[0][0]) if found.lines else bool(first_line)
    next_line = (found.lines[-1][0] + 1 if found.lines else first_line) if numbered else 0
    return {"build": build, "tail": found, "poll_seconds": POLL_SECONDS,
            "more": build.is_active or (found.available and found.next < found.size),
            "next_line": next_line, "log": log, "log_file": buildlogs.file_name(log), "switched": switched,
            "line_prefix": "live-line-" if log == buildlogs.CUSTOMIZATION else f"live-{log}-line-"}


def live_panel_context(request, build: Build) -> dict:
    """The build page's log panel: the end of the log of the current phase so far
    (customization.log, validation.log from Validating on; tail_start: a big log opens near its
    end, not at byte 0), the steps of both (read on incrementally by buildlogs.sections), and
    the poller."""
    follow = request.GET.get("follow") != "0"
    log = buildlogs.current_log(build)
    summary = buildlogs.summary(build) if build.is_terminal else None
    found = buildlogs.tail_start(build, log=log) if not build.is_terminal else None
    sections = buildlogs.sections(build)
    current = sections[-1] if sections and not sections[-1].complete else None
    context = {"log_follow": follow, "log_summary": summary, "log_sections": sections, "log_current": current,
               "log_from_start": found is None or not found.lines or found.lines[0][0] == 1,
               "log_name": log, "log_file": buildlogs.file_name(log),
               "log_names": buildlogs.log_names(build),
               "log_current_prefix": "live-line-" if current is None or current.kind == "customizer"
               else "live-validation-line-"}
    if found is not None:
        context.update({"log_" + key: value for key, value in tail_context(build, found, log=log).items()})
    return context
