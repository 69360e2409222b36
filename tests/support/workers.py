"""Pytest plugin: the portal pointed at the emulator, real RQ worker processes, and Redis hygiene.

- `azure_emulator`: settings aimed at the session's emulator (reset to its seed), Azure
  clients rebuilt, throttling gates and queues cleared.
- `worker_env`: the environment a subprocess (worker, scheduler, live server) needs to share
  this test's database, Redis and emulator.
- `rq_worker`: a real `manage.py rqworker builds default --with-scheduler` process that a
  test can SIGKILL and restart; stopped at the end of the test.
- `run_sweeps`: a helper that sweeps and reconciles in this process until a condition holds
  (the scheduler's job, without waiting for its period).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django_rq
import pytest
from django.db import connection
from django.test import override_settings

from tests.support.emulator import EmulatorHandle

REPO_ROOT = Path(__file__).resolve().parents[2]


def flush_redis() -> None:
    """Empty the test Redis database: queues, scheduled jobs, gates, caches."""
    django_rq.get_connection("default").flushdb()


# The template identities tests use (tests/factories.py, tests/support/aib.py). The seed has no
# identities, and preflight refuses a build whose identity does not exist or lacks permissions,
# so each test starts in a well-kept subscription: both exist and hold Contributor on it. Tests
# about missing permissions revoke that grant (revoke_subscription_grant).
TEST_IDENTITIES = ("goldsmith-aib", "aib-builder")
# The seeded goldsmith-worker principal the portal signs in as (AZURE_PRINCIPAL_ID in tests).
WORKER_PRINCIPAL_ID = "00000000-0000-4000-9000-000000000001"


def identity_id(name: str, resource_group: str = "goldsmith-images") -> str:
    from tests.support.emulator import SUBSCRIPTION_ID

    return (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{resource_group}/providers/"
            f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}")


def create_identity(emulator: EmulatorHandle, name: str, resource_group: str = "goldsmith-images",
                    location: str = "eastus") -> str:
    """Create a user-assigned identity through ARM (azure-mgmt-msi); returns its principal id."""
    from azure.mgmt.msi import ManagedServiceIdentityClient

    from tests.support.emulator import SUBSCRIPTION_ID

    client = ManagedServiceIdentityClient(emulator.credential(), SUBSCRIPTION_ID, **emulator.client_kwargs())
    found = client.user_assigned_identities.create_or_update(resource_group, name, {"location": location})
    return found.principal_id


def grant(emulator: EmulatorHandle, principal_id: str, role: str, scope: str) -> None:
    emulator.control("POST", "authorization/grant", {"principalId": principal_id, "role": role, "scope": scope},
                     expect=None)


def revoke_subscription_grant(emulator: EmulatorHandle, principal_id: str) -> None:
    from tests.support.emulator import SUBSCRIPTION_ID

    emulator.control("POST", "authorization/revoke", {"principalId": principal_id, "role": "Contributor",
                                                      "scope": f"/subscriptions/{SUBSCRIPTION_ID}"})


def enforce_without_network_role(emulator: EmulatorHandle) -> str:
    """Image Builder enforces permissions, and the template identity (goldsmith-aib) holds what
    a build needs except a role on the network: returns its principal id."""
    from builds import azure
    from tests.support.emulator import SUBSCRIPTION_ID

    principal = azure.identity(identity_id("goldsmith-aib")).principal_id
    revoke_subscription_grant(emulator, principal)
    for group in ("goldsmith-images", "goldsmith-galleries"):
        grant(emulator, principal, "Contributor", f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}")
    emulator.control("POST", "authorization/enforce", {"subscription": SUBSCRIPTION_ID, "enabled": True})
    return principal


def provision_identities(emulator: EmulatorHandle) -> dict[str, str]:
    from tests.support.emulator import SUBSCRIPTION_ID

    principals = {"portal": WORKER_PRINCIPAL_ID}
    grant(emulator, WORKER_PRINCIPAL_ID, "Contributor", f"/subscriptions/{SUBSCRIPTION_ID}")
    # The build log lives in each staging group's storage (Image Builder names the group).
    grant(emulator, WORKER_PRINCIPAL_ID, "Storage Blob Data Reader", f"/subscriptions/{SUBSCRIPTION_ID}")
    for name in TEST_IDENTITIES:
        principals[name] = create_identity(emulator, name)
        grant(emulator, principals[name], "Contributor", f"/subscriptions/{SUBSCRIPTION_ID}")
    return principals


@pytest.fixture
def azure_emulator(emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    """Settings pointing Goldsmith's Azure wrapper at the (reset) emulator, with the test
    identities created and granted Contributor on the subscription (see TEST_IDENTITIES)."""
    from builds import azure

    flush_redis()
    provision_identities(emulator)
    with override_settings(AZURE_ARM_ENDPOINT=emulator.base_url, AZURE_AUTHORITY_HOST=emulator.base_url,
                           AZURE_CA_BUNDLE=str(emulator.ca_path), AZURE_EMULATOR=True, AZURE_POLLING_INTERVAL=0,
                           AZURE_CLIENT_ID="goldsmith-worker", AZURE_CLIENT_SECRET="emulator-secret",
                           AZURE_PRINCIPAL_ID=WORKER_PRINCIPAL_ID):
        azure.reset_clients()
        azure.lookup_cache_clear()
        try:
            yield emulator
        finally:
            azure.reset_clients()
            azure.lookup_cache_clear()
    flush_redis()


def database_url() -> str:
    """A URL for the database this test runs on (the test database, not the configured one)."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        name = settings_dict["NAME"]
        if str(name).startswith(":memory:") or "mode=memory" in str(name):
            pytest.skip("a worker process needs a file database; set the SQLite TEST NAME")
        return f"sqlite:///{name}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{host}{port}/{settings_dict['NAME']}"


@pytest.fixture
def worker_env(transactional_db, azure_emulator: EmulatorHandle) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "AZURE_ARM_ENDPOINT": azure_emulator.base_url,
        "AZURE_AUTHORITY_HOST": azure_emulator.base_url,
        "AZURE_CA_BUNDLE": str(azure_emulator.ca_path),
        "AZURE_EMULATOR": "1",
        "AZURE_POLLING_INTERVAL": "0",
        "AZURE_CLIENT_ID": "goldsmith-worker",
        "AZURE_CLIENT_SECRET": "emulator-secret",
        "AZURE_PRINCIPAL_ID": WORKER_PRINCIPAL_ID,
        "PYTHONUNBUFFERED": "1",
    })
    for name in ("BUILD_LEASE_SECONDS", "BUILD_SWEEP_SECONDS", "BUILD_MISSING_GRACE_SECONDS"):
        from django.conf import settings

        env[name] = str(getattr(settings, name))
    return env


class WorkerProcess:
    """`manage.py rqworker builds default --with-scheduler` as a child process."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "builds", "default", "--with-scheduler",
             "--worker-ttl", "20"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self, *, horse_only: bool = False) -> None:
        """SIGKILL the worker (or only the work-horse child running the current job)."""
        if self.proc is None:
            return
        if horse_only:
            for child in _children(self.proc.pid):
                os.kill(child, signal.SIGKILL)
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:  # already gone (killed by a fault point, say)
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:  # no procps: read /proc directly
        out = "\n".join(p.name for p in Path("/proc").iterdir() if p.name.isdigit() and
                        _ppid(p) == pid)
    return [int(item) for item in out.split()]


def _ppid(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().split(") ")[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


@pytest.fixture
def rq_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        yield worker
    finally:
        worker.stop()
        flush_redis()


def submit(build_id: int, *, timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Run the build's submit step in this process as a worker would: again, without the job's
    delay, while Azure is still provisioning its template (the step released the build, still
    `submitting`, and asked to be run later). Returns the last step's StepResult."""
    from builds import lifecycle
    from builds.models import Build

    deadline = time.monotonic() + timeout
    while True:
        result = lifecycle.submit(build_id)
        if result.retry_in is None or Build.objects.get(pk=build_id).state != Build.State.SUBMITTING:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"build {build_id} still submitting after {timeout}s: {result}")
        time.sleep(interval)


def run_sweeps(until: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Sweep and reconcile in this process until `until()` is truthy; return its value."""
    from builds import monitor

    deadline = time.monotonic() + timeout
    while True:
        value = until()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        monitor.sweep()
        monitor.reconcile()
        time.sleep(interval)
