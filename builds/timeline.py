"""A build's BuildEvents -> the phases of its timeline, and their geometry for the SVG. Pure.

Each event says "from this moment the build was in (state, sub-state)". A phase runs from
the event that entered it to the next event (or to `now` while the build is active); the
phases the sweep did not see are simply absent. The build page draws one row per phase in
Image Builder's order, with a bar placed on a shared time axis.

Below Customizing and Validating come the steps the Packer log shows (`steps()` takes
packerlog's sections: name, start, end, exit code, failed): one indented row each, on the
same axis when the log's lines carry timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Image Builder's run sub-states in the order a run goes through them.
SUB_STATES = ("Queued", "Building", "Customizing", "Optimizing", "Validating", "Distributing")
# Rows always drawn (an unseen one stays empty); Optimizing and Canceling appear only when seen.
ROWS = ("Submitting", "Queued", "Building", "Customizing", "Validating", "Distributing")
TERMINAL = {"succeeded", "partially_succeeded", "failed", "canceled"}


@dataclass(frozen=True)
class Event:
    at: dt.datetime
    state: str
    sub_state: str = ""


@dataclass(frozen=True)
class Phase:
    name: str
    start: dt.datetime
    end: dt.datetime
    outcome: str  # "done", "active", "failed", "canceled"

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


@dataclass(frozen=True)
class Step:
    """A customizer or validator step, as the log shows it."""

    name: str
    kind: str  # "customizer" or "validator"
    start: dt.datetime | None
    end: dt.datetime | None  # the step's end, or `now` while it runs; None when the log has no times
    exit_code: int | None
    outcome: str  # "done", "active", "failed"

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def phase(self) -> str:
        return "Validating" if self.kind == "validator" else "Customizing"


@dataclass(frozen=True)
class Bar:
    """One row of the SVG: a phase (or an empty row), or a step below its phase, with
    coordinates in user units."""

    row: int
    name: str
    phase: Phase | None
    x: float
    width: float
    y: float
    step: Step | None = None

    @property
    def duration(self) -> str:
        if self.step is not None:
            return format_duration(self.step.seconds) if self.step.seconds is not None else ""
        return format_duration(self.phase.seconds) if self.phase else ""

    @property
    def outcome(self) -> str:
        if self.step is not None:
            return self.step.outcome
        return self.phase.outcome if self.phase else "unseen"

    @property
    def short_name(self) -> str:
        """The name as it fits the label column (the whole name is in the row's title)."""
        limit = 14 if self.step is not None else 18
        return self.name if len(self.name) <= limit else self.name[:limit - 1] + "…"


@dataclass(frozen=True)
class Layout:
    bars: tuple[Bar, ...]
    width: float
    height: float
    label_width: float
    axis_width: float
    row_height: float
    total: str  # the whole span, formatted

    @property
    def failed(self) -> Bar | None:
        return next((bar for bar in self.bars if bar.phase and bar.phase.outcome == "failed"), None)

    @property
    def has_steps(self) -> bool:
        return any(bar.step is not None for bar in self.bars)


def steps(sections: Iterable, *, now: dt.datetime, active: bool) -> list[Step]:
    """packerlog Sections -> Steps. A step without an ending runs until `now` while the build is
    active; after the build, it stopped (failed, or the log was cut) and gets no end."""
    found = []
    for section in sections:
        end = section.ended_at
        if section.failed:
            outcome = "failed"
        elif section.end_line is None and active:
            outcome, end = "active", (now if section.started_at else None)
        else:
            outcome = "done"
        found.append(Step(section.name, section.kind, section.started_at, end, section.exit_code, outcome))
    return found


def phase_name(state: str, sub_state: str) -> str | None:
    """The timeline row a (state, sub-state) pair belongs to; None for terminal states."""
    if state in TERMINAL:
        return None
    if state in ("pending", "submitting"):
        return "Submitting"
    if state == "canceling":
        return "Canceling"
    for name in SUB_STATES:  # Image Builder's casing, whatever the stored casing is
        if sub_state.lower() == name.lower():
            return name
    return "Queued"  # running without a sub-state yet: Image Builder queues first


def phases(events: Iterable[Event], *, final_state: str, now: dt.datetime,
           finished_at: dt.datetime | None = None) -> list[Phase]:
    """The phases the build went through, oldest first, with consecutive repeats merged.

    The last phase ends at the next event, `finished_at` or `now`; a failed or canceled build
    marks the phase it was in when it stopped.
    """
    ordered = sorted(events, key=lambda event: event.at)
    result: list[Phase] = []
    for index, event in enumerate(ordered):
        name = phase_name(event.state, event.sub_state)
        if name is None:
            stopped_in = phase_name("running", event.sub_state) if event.sub_state else None
            if (event.state in ("failed", "canceled") and stopped_in and result
                    and stopped_in not in {phase.name for phase in result}):
                # The sweep never saw the phase the run stopped in (it was shorter than a sweep
                # period), but Azure names it: show it, at the moment the run ended.
                result.append(Phase(stopped_in, event.at, event.at, "done"))
            continue
        if index + 1 < len(ordered):
            end, outcome = ordered[index + 1].at, "done"
        else:
            end, outcome = (finished_at or now), ("active" if final_state not in TERMINAL else "done")
        if result and result[-1].name == name:
            result[-1] = Phase(name, result[-1].start, end, outcome)
        else:
            result.append(Phase(name, event.at, end, outcome))
    if result and final_state in ("failed", "canceled"):
        last = result[-1]
        if final_state == "canceled" and last.name == "Canceling" and len(result) > 1:
            # Canceling is how it ended; the phase it interrupted carries the mark.
            before = result[-2]
            result[-2] = Phase(before.name, before.start, before.end, "canceled")
        else:
            result[-1] = Phase(last.name, last.start, last.end, final_state)
    return result


def layout(found: Sequence[Phase], *, steps: Sequence[Step] = (), width: float = 720, label_width: float = 110,
           duration_width: float = 130, row_height: float = 26) -> Layout:
    """Rows for every standard phase (plus any extra seen) with bars scaled to the whole span;
    each step in a row below its phase."""
    names = list(ROWS)
    seen = {phase.name for phase in found}
    if "Optimizing" in seen:
        names.insert(names.index("Validating"), "Optimizing")
    if "Canceling" in seen:
        names.append("Canceling")
    by_name = {phase.name: phase for phase in found}  # a name appears once after merging in practice
    axis_width = width - label_width - duration_width
    moments = [moment for phase in found for moment in (phase.start, phase.end)]
    moments += [moment for step in steps for moment in (step.start, step.end) if moment is not None]
    if found:
        start = min(moments)
        span = max((max(moments) - start).total_seconds(), 1e-6)
    else:
        start, span = None, 1.0

    def place(begin: dt.datetime, seconds: float) -> tuple[float, float]:
        assert start is not None
        x = label_width + (begin - start).total_seconds() / span * axis_width
        bar_width = max(3.0, seconds / span * axis_width)
        return round(min(x, label_width + axis_width - bar_width), 1), round(bar_width, 1)

    bars: list[Bar] = []
    for name in names:
        phase = by_name.get(name)
        y = len(bars) * row_height
        if phase is None or start is None:
            bars.append(Bar(len(bars), name, None, label_width, 0, y))
        else:
            bars.append(Bar(len(bars), name, phase, *place(phase.start, phase.seconds), y))
        for step in (item for item in steps if item.phase == name):
            y = len(bars) * row_height
            if step.start is None or step.seconds is None or start is None:
                bars.append(Bar(len(bars), step.name, None, label_width, 0, y, step))
            else:
                bars.append(Bar(len(bars), step.name, None, *place(step.start, step.seconds), y, step))
    total = format_duration(span) if found else ""
    return Layout(tuple(bars), width, len(bars) * row_height + 24, label_width, axis_width, row_height, total)


def format_duration(seconds: float) -> str:
    """1h 02m, 4m 05s, 12s, or 0.4s for the short phases the emulator produces."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
