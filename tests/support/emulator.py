"""Pytest plugin: the Azure emulator as a real process, and helpers to drive its control API.

One emulator process serves the whole session (`emulator_process`, session-scoped); the
function-scoped `emulator` fixture resets it before each test, so every test starts from the
seed with the startup time scale, an unfrozen clock, no faults and an empty request log.
Tests talk to it through the real SDKs (`imagebuilder_client`, `EmulatorHandle.credential()`)
and to its control API (`/_emulator/...`, see emulator/README.md) through the helpers here.

The process is started as `python -m emulator --port 0 ...` so a test can also restart or
kill it; GOLDSMITH_EMULATOR_TIME_SCALE sets the session's time scale (default 600: a typical
build of about 20 simulated minutes takes two seconds).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]

# The identities the seed provides (see /tmp/emulator_contract.md and emulator/README.md).
TENANT_ID = "11111111-1111-1111-1111-111111111111"
SUBSCRIPTION_ID = "22222222-2222-2222-2222-222222222222"
RESOURCE_GROUP = "goldsmith-images"
LOCATION = "eastus"
WORKER_CLIENT_ID = "goldsmith-worker"
WORKER_SECRET = "emulator-secret"
ARM_SCOPE = "https://management.azure.com/.default"

DEFAULT_TIME_SCALE = float(os.environ.get("GOLDSMITH_EMULATOR_TIME_SCALE", "600"))
_LISTENING = re.compile(r"listening on (https://\S+)")


class EmulatorProcess:
    """`python -m emulator` as a child process; `start()` waits for its listening line."""

    def __init__(self, data_dir: Path | None, *, time_scale: float = DEFAULT_TIME_SCALE,
                 port: int = 0, extra_args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        self.time_scale = time_scale
        self.port = port
        self.extra_args = extra_args
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.output: list[str] = []

    @property
    def command(self) -> list[str]:
        command = [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", str(self.port),
                   "--time-scale", str(self.time_scale)]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        return command + list(self.extra_args)

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        """Start the process and return once it prints its base URL; RuntimeError if it does not."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(self.command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        found = threading.Event()

        def pump() -> None:
            # Keep draining the pipe for the process's whole life so it never blocks on a full pipe.
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line.rstrip("\n"))
                match = _LISTENING.search(line)
                if match and not self.base_url:
                    self.base_url = match.group(1)
                    found.set()

        threading.Thread(target=pump, name="emulator-output", daemon=True).start()
        if not found.wait(timeout):
            self.stop()
            raise RuntimeError("the emulator did not start:\n" + "\n".join(self.output[-40:]))
        return self

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    @property
    def ca_path(self) -> Path:
        """The CA clients must trust: DIR/ca.pem, or the path the process printed without --data-dir."""
        if self.data_dir is not None:
            return self.data_dir / "ca.pem"
        for line in self.output:
            match = re.search(r"\(CA: (.+)\)", line)
            if match:
                return Path(match.group(1))
        raise RuntimeError("the emulator did not print its CA path")


@dataclass
class EmulatorHandle:
    """A running emulator: its URL, the CA to trust, and typed helpers for the control API."""

    base_url: str
    ca_path: Path
    process: EmulatorProcess | None = None
    startup_time_scale: float = DEFAULT_TIME_SCALE
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.verify = str(self.ca_path)

    # -- raw access -------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/_emulator/" + path)

    def control(self, method: str, path: str, json: Any = None, *, expect: int | None = 200,
                **params: Any) -> requests.Response:
        """Call the control API. `path` is relative to /_emulator/ unless it starts with '/'.

        Raises AssertionError when `expect` is set and the status differs (with the body shown).
        """
        # verify is passed on each call: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        response = self.http.request(method, self.url(path), json=json, params=params or None, timeout=30,
                                     verify=str(self.ca_path))
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response

    # -- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seed: store, faults, denials, forced failures, request log and clock."""
        self.control("POST", "reset")

    def requests(self, since: int = 0, *, control: bool = False, **filters: Any) -> list[dict]:
        """Request-log entries with seq > since (control calls excluded unless control=True)."""
        params = {"since": since, "control": "true" if control else "false", **filters}
        return self.control("GET", "requests", **params).json()["value"]

    def last_seq(self) -> int:
        return self.control("GET", "requests", since=0, control="true", limit=0).json()["lastSeq"]

    def stats(self, since: int = 0) -> dict:
        return self.control("GET", "stats", since=since).json()

    # -- clock ------------------------------------------------------------------------------
    def clock(self, **changes: Any) -> dict:
        """GET the clock, or POST changes: freeze=bool, advance_seconds=N, time_scale=N."""
        if not changes:
            return self.control("GET", "clock").json()
        return self.control("POST", "clock", changes).json()

    def freeze(self) -> dict:
        return self.clock(freeze=True)

    def unfreeze(self) -> dict:
        return self.clock(freeze=False)

    def advance(self, seconds: float) -> dict:
        """Move the emulator's clock forward by `seconds` of real (unscaled) time."""
        return self.clock(advance_seconds=seconds)

    def advance_simulated(self, seconds: float) -> dict:
        """Move forward by `seconds` of simulated Azure time (divided by the current time scale)."""
        scale = self.clock()["time_scale"]
        return self.clock(advance_seconds=seconds / scale)

    def set_time_scale(self, scale: float) -> dict:
        """Applies to builds and provisioning started from now on (reset restores the startup value)."""
        return self.clock(time_scale=scale)

    def settings(self, **changes: Any) -> dict:
        if not changes:
            return self.control("GET", "settings").json()
        return self.control("POST", "settings", changes).json()

    # -- catalog (helper CAT's endpoints) ---------------------------------------------------
    def add_image(self, **fields: Any) -> dict:
        """Add a platform image version (location, publisher, offer, sku, version, ...)."""
        return self.control("POST", "catalog/images", fields, expect=None).json()

    def add_gallery_image(self, **fields: Any) -> dict:
        """Add an Azure Compute Gallery image definition (id or subscription/resource_group/gallery/name, ...)."""
        return self.control("POST", "catalog/gallery-images", fields, expect=None).json()

    def add_managed_image(self, **fields: Any) -> dict:
        """Add a managed image (id, location, osType, hyperVGeneration, ...)."""
        return self.control("POST", "catalog/managed-images", fields, expect=None).json()

    # -- faults, denials, failures ----------------------------------------------------------
    def add_fault(self, operation: str = "*", status: int | None = None, *, rate: float = 1.0,
                  count: int | None = None, retry_after: float | None = None, latency_ms: int = 0,
                  drop: bool = False, **extra: Any) -> dict:
        rule = {"operation": operation, "status": status, "rate": rate, "count": count,
                "retry_after": retry_after, "latency_ms": latency_ms, "drop": drop, **extra}
        return self.control("POST", "faults", {k: v for k, v in rule.items() if v is not None}, expect=201).json()

    def clear_faults(self) -> None:
        self.control("DELETE", "faults", expect=204)

    def deny(self, principal: str, action: str = "*", scope: str | None = None) -> dict:
        body = {"principal": principal, "action": action}
        if scope:
            body["scope"] = scope
        return self.control("POST", "denials", body, expect=201).json()

    def clear_denials(self) -> None:
        self.control("DELETE", "denials", expect=204)

    def force_failure(self, template: str, sub_state: str, *, resource_group: str = RESOURCE_GROUP,
                      subscription: str = SUBSCRIPTION_ID, code: str | None = None,
                      message: str | None = None) -> dict:
        """Make the next run of the template fail at `sub_state` (Queued ... Distributing)."""
        body = {"subscription": subscription, "resource_group": resource_group, "template": template,
                "sub_state": sub_state}
        if code:
            body["code"] = code
        if message:
            body["message"] = message
        return self.control("POST", "imagebuilder/forced-failures", body, expect=201).json()

    def set_unavailable_regions(self, regions: list[str]) -> dict:
        """Distribution to these regions fails (PartiallySucceeded when other targets succeed)."""
        return self.control("PUT", "imagebuilder/unavailable-regions", {"regions": regions}).json()

    def blob(self, url_or_path: str) -> requests.Response:
        """Fetch a build log by the URL found in lastRunStatus.message (or a /_emulator/blobs/ path)."""
        url = url_or_path if url_or_path.startswith("http") else self.url(url_or_path)
        return self.http.get(url, timeout=30, verify=str(self.ca_path))

    # -- SDK clients ------------------------------------------------------------------------
    def credential(self, client_id: str = WORKER_CLIENT_ID, secret: str = WORKER_SECRET,
                   tenant_id: str = TENANT_ID):
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(tenant_id, client_id, secret, authority=self.base_url,
                                      disable_instance_discovery=True, connection_verify=str(self.ca_path))

    def client_kwargs(self, **overrides: Any) -> dict:
        """Keyword arguments for any azure-mgmt client aimed at the emulator (no polling delay,
        no retries unless asked, so fault tests see every response)."""
        kwargs = {"base_url": self.base_url, "credential_scopes": [ARM_SCOPE],
                  "connection_verify": str(self.ca_path), "polling_interval": 0, "retry_total": 0}
        kwargs.update(overrides)
        return kwargs

    def imagebuilder_client(self, credential=None, subscription_id: str = SUBSCRIPTION_ID, **overrides: Any):
        from azure.mgmt.imagebuilder import ImageBuilderClient

        return ImageBuilderClient(credential or self.credential(), subscription_id, **self.client_kwargs(**overrides))

    def compute_client(self, credential=None, subscription_id: str = SUBSCRIPTION_ID, **overrides: Any):
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(credential or self.credential(), subscription_id,
                                       **self.client_kwargs(**overrides))

    # -- waiting ----------------------------------------------------------------------------
    @staticmethod
    def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
        """Poll until predicate() returns something truthy and return it; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
            time.sleep(interval)


@pytest.fixture(scope="session")
def emulator_process(tmp_path_factory) -> Iterator[EmulatorHandle]:
    """The session's emulator process (state in a data dir under pytest's tmp)."""
    data_dir = tmp_path_factory.mktemp("emulator-data")
    process = EmulatorProcess(data_dir, time_scale=DEFAULT_TIME_SCALE).start()
    try:
        yield EmulatorHandle(process.base_url, process.ca_path, process, DEFAULT_TIME_SCALE)
    finally:
        process.stop()


@pytest.fixture
def emulator(emulator_process: EmulatorHandle) -> EmulatorHandle:
    """The session emulator, reset to the seed before the test, answering LROs with Retry-After 0.

    Azure's SDKs honour Retry-After over their polling_interval, and the emulator never says
    less than 1 s by default; tests poll at once instead (test_control checks the default)."""
    emulator_process.reset()
    emulator_process.settings(retry_after=0)
    return emulator_process


@pytest.fixture
def fast_emulator(emulator: EmulatorHandle) -> EmulatorHandle:
    """The reset emulator at a very high time scale (a whole build in well under a second)."""
    emulator.set_time_scale(20000)
    return emulator


@pytest.fixture
def imagebuilder_client(emulator: EmulatorHandle):
    """azure-mgmt-imagebuilder's ImageBuilderClient for the seeded worker principal, polling at once."""
    return emulator.imagebuilder_client()
