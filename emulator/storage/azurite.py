"""Azurite, Microsoft's storage emulator, as the sandbox's blob service for build logs.

Image Builder writes each run's Packer log into a storage account in the build's staging
resource group. Offline, Azurite plays that storage service: over HTTPS (a certificate signed by
the emulator's CA, so `AZURE_CA_BUNDLE` covers it) and with `--oauth basic`, so the portal reads
the logs with the same Entra credential and azure-storage-blob code it uses against Azure.

Azurite's accounts are fixed when it starts (AZURITE_ACCOUNTS), while Azure gives every staging
group its own account. So Azurite starts with a pool of accounts whose names are a pure function
of their position (`pool_accounts`), and the emulator, started with the same pool size, hands
each image template one account of the pool for its staging group (emulator/storage/backend.py).
Both sides compute the names from this module, so they always agree.

`Azurite` starts `node_modules/.bin/azurite-blob` (installed by `make install` from
package-lock.json) on a free port and stops it; runall and the tests share it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from emulator.core.tls import issue_certificate

REPO_ROOT = Path(__file__).resolve().parents[2]
POOL_SIZE = 32
# Azurite's documented well-known key (the one devstoreaccount1 has): every pool account uses it.
# Nothing signs with it here (the emulator and the portal use Entra tokens), but Azurite wants a key.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_ACCOUNT = "devstoreaccount1"
NOT_INSTALLED = "Node is not installed: build logs will not be available in this sandbox"


def pool_accounts(size: int = POOL_SIZE) -> list[str]:
    """The pool's account names: 24 lower-case hex characters each, like Image Builder's random
    staging account names, and the same for a given position on every machine."""
    return [hashlib.sha256(f"goldsmith-staging-{index}".encode()).hexdigest()[:24] for index in range(size)]


def accounts_env(size: int = POOL_SIZE) -> str:
    """AZURITE_ACCOUNTS for the pool (plus devstoreaccount1, which the variable would otherwise
    disable, for people poking at Azurite by hand)."""
    return ";".join(f"{name}:{ACCOUNT_KEY}" for name in [DEFAULT_ACCOUNT, *pool_accounts(size)])


def prepare_files(ca_folder: Path, folder: Path, host: str, size: int = POOL_SIZE) -> tuple[Path, Path, Path]:
    """cert.pem/key.pem for `host` (signed by the emulator's CA in ca_folder) and `accounts`
    (the AZURITE_ACCOUNTS value) in folder; returns their paths. docker-compose's Azurite reads
    these from the emulator's data volume."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key, accounts = folder / "cert.pem", folder / "key.pem", folder / "accounts"
    hosts = (host, "127.0.0.1", "localhost") if host not in ("127.0.0.1", "localhost") else ("127.0.0.1", "localhost")
    issue_certificate(ca_folder, hosts, cert, key)
    accounts.write_text(accounts_env(size))
    return cert, key, accounts


def find_binary(root: Path = REPO_ROOT) -> Path | None:
    """node_modules/.bin/azurite-blob when both it and node are installed, else None."""
    binary = root / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists() or shutil.which("node") is None:
        return None
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class Azurite:
    """An azurite-blob process over HTTPS with OAuth and the account pool.

    `folder` keeps Azurite's data (`--location`) and its TLS files; `ca_folder` is the
    emulator's data dir (its CA signs Azurite's certificate; created there if missing).
    """

    def __init__(self, folder: Path, ca_folder: Path, *, host: str = "127.0.0.1", port: int = 0,
                 pool: int = POOL_SIZE, binary: Path | None = None):
        self.folder = Path(folder)
        self.ca_folder = Path(ca_folder)
        self.host = host
        self.port = port
        self.pool = pool
        self.binary = binary or find_binary()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.folder / "azurite.log"

    @property
    def url(self) -> str:
        """The blob endpoint (path-style: accounts are the first path segment)."""
        return f"https://{self.host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.ca_folder / "ca.pem"

    @property
    def command(self) -> list[str]:
        return [str(self.binary), "--blobHost", self.host, "--blobPort", str(self.port),
                "--location", str(self.folder / "data"), "--cert", str(self.folder / "tls" / "cert.pem"),
                "--key", str(self.folder / "tls" / "key.pem"), "--oauth", "basic",
                # azure-storage-blob may send a newer x-ms-version than this Azurite knows.
                "--skipApiVersionCheck", "--silent"]

    def prepare(self) -> dict[str, str]:
        """Write its certificate, key and data folder; return the environment it must run with.
        For a caller that runs the process itself (runall's supervisor); start() does both."""
        if self.binary is None:
            raise RuntimeError(NOT_INSTALLED + " (run `make install`)")
        if not self.port:
            self.port = free_port(self.host)
        prepare_files(self.ca_folder, self.folder / "tls", self.host, self.pool)
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        return dict(os.environ, AZURITE_ACCOUNTS=accounts_env(self.pool))

    def start(self, timeout: float = 30.0) -> Azurite:
        """Start and wait until it answers HTTPS; RuntimeError (with its output) if it does not."""
        env = self.prepare()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Azurite did not start on {self.url}:\n{output}")
            time.sleep(0.1)
        return self

    def answers(self) -> bool:
        """True once Azurite answers HTTPS with any HTTP status (an anonymous request gets 4xx)."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        try:
            urllib.request.urlopen(f"{self.url}/{DEFAULT_ACCOUNT}?comp=list", timeout=2, context=context)  # noqa: S310
        except urllib.error.HTTPError:
            return True
        except (OSError, ssl.SSLError):
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it: SIGINT makes Azurite close its server and save its metadata, and it says so
        in its output; its process then lingers on timers, so it is killed once that line is
        there (or after `timeout` seconds)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if "successfully closed" in self.log_path.read_text(errors="replace")[-500:]:
                break
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout)

    def emulator_args(self) -> list[str]:
        """What `python -m emulator` needs to write logs here and report the staging accounts."""
        return ["--azurite", self.url, "--azurite-accounts", str(self.pool)]
