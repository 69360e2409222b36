"""A build's BuildEvents -> the phases of its timeline, and their geometry for the SVG. Pure.

Each event says "from this moment the build was in (state, sub-state)". A phase runs from
the event that entered it to the next event (or to `now` while the build is active); the
phases the sweep did not see are simply absent. The build page draws one row per phase in
Image Builder's order, with a bar placed on a shared time axis.
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
class Bar:
    """One row of the SVG: a phase (or an empty row) with coordinates in user units."""

    row: int
    name: str
    phase: Phase | None
    x: float
    width: float
    y: float

    @property
    def duration(self) -> str:
        return format_duration(self.phase.seconds) if self.phase else ""


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


def layout(found: Sequence[Phase], *, width: float = 720, label_width: float = 110, duration_width: float = 130,
           row_height: float = 26) -> Layout:
    """Rows for every standard phase (plus any extra seen) with bars scaled to the whole span."""
    names = list(ROWS)
    seen = {phase.name for phase in found}
    if "Optimizing" in seen:
        names.insert(names.index("Validating"), "Optimizing")
    if "Canceling" in seen:
        names.append("Canceling")
    by_name = {phase.name: phase for phase in found}  # a name appears once after merging in practice
    axis_width = width - label_width - duration_width
    if found:
        start = min(phase.start for phase in found)
        span = max((max(phase.end for phase in found) - start).total_seconds(), 1e-6)
    else:
        start, span = None, 1.0
    bars = []
    for row, name in enumerate(names):
        phase = by_name.get(name)
        y = row * row_height
        if phase is None or start is None:
            bars.append(Bar(row, name, None, label_width, 0, y))
            continue
        x = label_width + (phase.start - start).total_seconds() / span * axis_width
        bar_width = max(3.0, phase.seconds / span * axis_width)
        x = min(x, label_width + axis_width - bar_width)
        bars.append(Bar(row, name, phase, round(x, 1), round(bar_width, 1), y))
    total = format_duration(span) if found else ""
    return Layout(tuple(bars), width, len(names) * row_height + 24, label_width, axis_width, row_height, total)


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
