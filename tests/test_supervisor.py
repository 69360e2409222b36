"""portal.supervisor with real child processes: restarts with backoff, and giving up."""

from __future__ import annotations

import io
import sys
import time

import pytest

from portal.supervisor import ChildFailed, Supervisor

UNBUFFERED = {"PYTHONUNBUFFERED": "1"}


def run_for(supervisor: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor._restart_children()
        supervisor.pump(0.05)


def test_it_restarts_a_child_that_dies_and_names_it(tmp_path):
    out = io.StringIO()
    supervisor = Supervisor(out, restart_delay=0.2)
    # Dies at once the first time (no marker yet), then stays up.
    script = ("import os, sys, time\n"
              "if not os.path.exists(sys.argv[1]):\n"
              "    open(sys.argv[1], 'w').close(); print('dying'); sys.exit(3)\n"
              "print('up'); time.sleep(60)\n")
    child = supervisor.spawn("flaky", [sys.executable, "-c", script, str(tmp_path / "marker")], env=UNBUFFERED,
                             cwd="/")
    first = child.proc.pid
    try:
        run_for(supervisor, 2.0)
        text = out.getvalue()
        assert "flaky exited unexpectedly with code 3; restarting it in 0.2s" in text
        assert child.running
        assert child.proc.pid != first
        assert text.count("started flaky") == 2
        assert "flaky      | dying" in text
        assert "flaky      | up" in text
    finally:
        supervisor.stop_all(5)


def test_its_backoff_doubles_and_it_gives_up_after_repeated_fast_crashes():
    out = io.StringIO()
    supervisor = Supervisor(out, restart_delay=0.1, crash_limit=4, crash_window=30)
    supervisor.spawn("broken", [sys.executable, "-c", "raise SystemExit(2)"], env=UNBUFFERED, cwd="/")
    started = time.monotonic()
    try:
        with pytest.raises(ChildFailed, match="broken exited with code 2, its 4th exit within 30s"):
            run_for(supervisor, 10.0)
    finally:
        supervisor.stop_all(5)
    text = out.getvalue()
    assert [f"restarting it in {delay}s" in text for delay in ("0.1", "0.2", "0.4")] == [True] * 3
    assert text.count("started broken") == 4
    assert time.monotonic() - started >= 0.7  # the backoff was waited out


def test_it_forgets_crashes_outside_the_window():
    out = io.StringIO()
    supervisor = Supervisor(out, restart_delay=0.05, crash_limit=2, crash_window=0.3)
    script = "import time; time.sleep(0.5)"  # lives longer than the window each time
    supervisor.spawn("slowpoke", [sys.executable, "-c", script], env=UNBUFFERED, cwd="/")
    try:
        run_for(supervisor, 3.0)  # would give up at the second exit if old crashes counted
    finally:
        supervisor.stop_all(5)
    assert out.getvalue().count("started slowpoke") >= 3
