"""docs/examples/build-and-wait.sh, run as a pipeline would run it: against a live portal with a
real RQ worker, the emulator and a sweep loop, until the build has succeeded; and refused."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from api import throttling
from tests.api.conftest import token_of

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "build-and-wait.sh"


class Sweeper(threading.Thread):
    """The scheduler's periodic sweep, every half second, while the script waits."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopping = threading.Event()

    def run(self):
        from django.db import connection

        from builds import monitor

        try:
            while not self.stopping.wait(0.5):
                monitor.sweep()
                monitor.reconcile()
        finally:
            connection.close()


@pytest.fixture
def portal(live_server, rq_worker, azure_emulator):
    sweeper = Sweeper()
    sweeper.start()
    yield live_server.url
    sweeper.stopping.set()
    sweeper.join(10)


def run_script(url: str, token: str, *args: str, poll: str = "0.3") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "GOLDSMITH_URL": url,
           "GOLDSMITH_TOKEN": token, "POLL_SECONDS": poll, "TIMEOUT_MINUTES": "2"}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=150,
                          check=False)


def test_it_requests_a_build_and_waits_for_it_honouring_retry_after(portal, world, bob, settings, monkeypatch,
                                                                      caplog):
    # One request per two-second window, and the script polls without pausing: it runs into 429
    # in every window, and only waiting the Retry-After it is given keeps that to one per window.
    settings.API_RATE_PER_MINUTE = 1
    monkeypatch.setattr(throttling, "WINDOW_SECONDS", 2)
    started = time.monotonic()

    result = run_script(portal, token_of(bob), "ubuntu", "1.0.0", "web/nginx@1.0.0", poll="0")

    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    build = json.loads(result.stdout)
    assert build["state"] == "succeeded" and build["layers"] == ["web/nginx@1.0.0"], result.stderr
    assert build["outputs"], result.stdout
    waits = result.stderr.count("(Retry-After)")
    throttled = [r for r in caplog.records if r.getMessage().startswith("Too Many Requests")]
    assert waits >= 1 and len(throttled) == waits, (len(throttled), result.stderr)
    # Honouring Retry-After means at most about one refusal per window; ignoring it, one per poll.
    assert len(throttled) <= took / throttling.WINDOW_SECONDS + 2, (took, result.stderr)


def test_a_refused_request_lists_the_problems_and_exits_2(live_server, world, bob, azure_emulator):
    result = run_script(live_server.url, token_of(bob), "ubuntu", "1.1.0", "data/tools@1.0.0")

    assert result.returncode == 2
    assert "refused (400): This build cannot be requested." in result.stderr
    assert "build.not-found  version" in result.stderr and "build.not-found  layers[0]" in result.stderr
    assert result.stdout == ""


def test_a_bad_token_exits_2(live_server, db):
    result = run_script(live_server.url, "gst_not-a-token", "ubuntu", "1.0.0")

    assert result.returncode == 2 and "refused (401)" in result.stderr
