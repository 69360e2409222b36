"""Pytest plugin (loaded with -p before pytest-django) that provides the services the suite needs.

When REDIS_URL is not set, a private redis-server is started on a Unix socket in a temporary
folder for the whole run, so `make test` works on a machine with nothing configured and never
touches a Redis someone else uses. DATABASE_URL is left alone: when it is unset, settings fall
back to SQLite (pytest-django gives the test database its own file).

Finding and starting redis-server lives in portal/devservices.py, shared with `make run`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from portal.devservices import find_redis_server, start_private_redis, stop_process

# Re-exported for code that imported them from here before they moved.
__all__ = ["find_redis_server", "start_private_redis"]


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if os.environ.get("REDIS_URL"):
        return
    folder = Path(tempfile.mkdtemp(prefix="goldsmith-test-redis-"))
    proc, url = start_private_redis(folder)
    os.environ["REDIS_URL"] = url

    def stop() -> None:
        stop_process(proc)
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
