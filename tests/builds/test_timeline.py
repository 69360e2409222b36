import datetime as dt

from builds import timeline
from builds.timeline import Event

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def run_events(*subs: str, end: str | None = None, step: float = 60) -> list[Event]:
    events = [Event(at(0), "pending"), Event(at(5), "submitting")]
    for index, sub in enumerate(subs):
        events.append(Event(at(10 + index * step), "running", sub))
    if end:
        events.append(Event(at(10 + len(subs) * step), end, subs[-1] if subs else ""))
    return events


def test_it_gives_each_phase_its_duration_until_the_next_event():
    found = timeline.phases(run_events("Queued", "Building", "Customizing", "Validating", "Distributing",
                                       end="succeeded"), final_state="succeeded", now=at(1000))
    assert [p.name for p in found] == ["Submitting", "Queued", "Building", "Customizing", "Validating",
                                       "Distributing"]
    assert [p.seconds for p in found] == [10, 60, 60, 60, 60, 60]
    assert all(p.outcome == "done" for p in found)


def test_it_marks_the_phase_a_failed_build_stopped_in():
    found = timeline.phases(run_events("Queued", "Building", "Customizing", end="failed"), final_state="failed",
                            now=at(1000))
    assert found[-1].name == "Customizing"
    assert found[-1].outcome == "failed"
    assert [p.outcome for p in found[:-1]] == ["done", "done", "done"]


def test_it_extends_the_current_phase_to_now_while_active():
    found = timeline.phases(run_events("Queued", "Building"), final_state="running", now=at(100))
    assert found[-1].name == "Building"
    assert found[-1].outcome == "active"
    assert found[-1].seconds == 30


def test_it_marks_the_phase_a_cancel_interrupted():
    events = [*run_events("Queued", "Building"), Event(at(80), "canceling", "Building"),
              Event(at(95), "canceled", "Building")]
    found = timeline.phases(events, final_state="canceled", now=at(500))
    assert [p.name for p in found] == ["Submitting", "Queued", "Building", "Canceling"]
    assert found[2].outcome == "canceled"


def test_it_merges_repeated_events_of_one_phase_and_accepts_any_casing():
    events = [Event(at(0), "running", "building"), Event(at(10), "running", "BUILDING"),
              Event(at(20), "running", "customizing"), Event(at(30), "succeeded")]
    found = timeline.phases(events, final_state="succeeded", now=at(40))
    assert [(p.name, p.seconds) for p in found] == [("Building", 20), ("Customizing", 10)]


def test_it_lays_out_every_standard_row_and_scales_bars_to_the_span():
    found = timeline.phases(run_events("Queued", "Building", end="succeeded"), final_state="succeeded", now=at(500))
    drawn = timeline.layout(found, width=700, label_width=100, duration_width=100)
    names = [bar.name for bar in drawn.bars]
    assert names == list(timeline.ROWS)
    by_name = {bar.name: bar for bar in drawn.bars}
    assert by_name["Customizing"].phase is None
    assert by_name["Submitting"].x == 100
    # Building ends the span: its bar reaches the end of the axis.
    assert round(by_name["Building"].x + by_name["Building"].width) == 600
    assert drawn.total == "2m 10s"


def test_it_adds_optional_rows_only_when_seen():
    found = timeline.phases(run_events("Customizing", "Optimizing", "Validating", end="succeeded"),
                            final_state="succeeded", now=at(500))
    names = [bar.name for bar in timeline.layout(found).bars]
    assert names.index("Optimizing") == names.index("Validating") - 1
    assert "Canceling" not in names


def test_it_formats_durations_for_people():
    assert timeline.format_duration(0.42) == "0.4s"
    assert timeline.format_duration(42) == "42s"
    assert timeline.format_duration(245) == "4m 05s"
    assert timeline.format_duration(3720) == "1h 02m"


def test_it_shows_the_phase_azure_says_a_run_stopped_in_even_if_the_sweep_missed_it():
    events = [*run_events("Queued", "Building"), Event(at(200), "failed", "Customizing")]
    found = timeline.phases(events, final_state="failed", now=at(500))
    assert [(p.name, p.outcome) for p in found[-2:]] == [("Building", "done"), ("Customizing", "failed")]
    assert found[-1].seconds == 0


def section(index, name, start, end, *, kind="customizer", exit_code=0, failed=False):
    from builds.packerlog import Section

    return Section(index, kind, "shell", name, 10 + index * 10, None if end is None else 15 + index * 10,
                   None if start is None else at(start), None if end is None else at(end), exit_code, failed)


def test_steps_sit_below_their_phase_on_the_same_axis():
    found = timeline.phases(run_events("Queued", "Building", "Customizing", "Validating", end="failed"),
                            final_state="failed", now=at(1000))
    steps = timeline.steps([section(0, "prepare", 130, 150), section(1, "install", 150, 185, exit_code=3, failed=True),
                            section(0, "smoke", 200, None, kind="validator", exit_code=None)],
                           now=at(1000), active=False)
    layout = timeline.layout(found, steps=steps)
    names = [(bar.name, bar.step is not None) for bar in layout.bars]
    assert names[names.index(("Customizing", False)) + 1:][:2] == [("prepare", True), ("install", True)]
    assert names[names.index(("Validating", False)) + 1] == ("smoke", True)
    prepare, install, smoke = (bar for bar in layout.bars if bar.step)
    assert (prepare.duration, prepare.outcome, install.duration, install.outcome) == ("20s", "done", "35s", "failed")
    assert install.step.exit_code == 3
    assert install.x > prepare.x and prepare.width > 0  # placed in time on the phases' axis
    assert (smoke.width, smoke.duration, smoke.outcome) == (0, "", "done")  # no ending: no bar
    assert layout.height == len(layout.bars) * layout.row_height + 24


def test_a_running_step_runs_until_now():
    [step] = timeline.steps([section(0, "install", 100, None, exit_code=None)], now=at(160), active=True)
    assert (step.outcome, step.seconds) == ("active", 60)
