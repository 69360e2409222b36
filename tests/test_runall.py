"""`manage.py runall` as `make run` uses it: real child processes, real Redis, real signals."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from emulator.storage.azurite import NOT_INSTALLED as AZURITE_NOT_INSTALLED
from emulator.storage.azurite import find_binary as find_azurite
from portal.devservices import redis_answers

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_port_pair(*taken: int) -> int:
    """A free port whose successor is free too: the emulator's browser pages use the next port."""
    while True:
        port = free_port()
        if port + 1 in taken or port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def start_runall(tmp_path: Path, *args: str, web_port: int | None = None,
                 via_shell: bool = False, **settings: str) -> tuple[subprocess.Popen, Path, int]:
    """runall as a child of this process, or (via_shell) of a shell that writes its pid to runall.pid.
    Keyword arguments are extra environment settings for runall and its children."""
    # Nothing from the calling shell or the suite's own Redis: runall must bring its own.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AZURE_", "REDIS_URL"))}
    web_port = web_port or free_port()
    env.update(
        GOLDSMITH_VAR_DIR=str(tmp_path / "var"),
        GOLDSMITH_WEB_PORT=str(web_port),
        GOLDSMITH_EMULATOR_PORT=str(free_port_pair(web_port)),
        GOLDSMITH_AZURITE_PORT=str(free_port()),
        EMAIL_PORT=str(free_port()),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **settings,
    )
    log = tmp_path / "runall.log"
    with log.open("wb") as out:
        argv = [sys.executable, "manage.py", "runall", "--stop-timeout", "5", *args]
        if via_shell:
            argv = ["sh", "-c", f'"$@" & echo $! > {tmp_path / "runall.pid"}; wait', "sh", *argv]
        proc = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log, web_port


def wait_for_banner(proc: subprocess.Popen, log: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Press Ctrl-C to stop." in text:
            return text
        if proc.poll() is not None:
            pytest.fail(f"runall exited with {proc.returncode}:\n{text}")
        time.sleep(0.2)
    stop(proc)
    pytest.fail(f"runall did not come up:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def child_pids(text: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", text)}


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_it_runs_everything_and_stops_cleanly_on_sigterm(tmp_path):
    proc, log, port = start_runall(tmp_path, "--no-emulator")
    try:
        text = wait_for_banner(proc, log)
        assert f"http://127.0.0.1:{port}" in text
        assert healthz(port) == 200
        pids = child_pids(text)
        assert {"redis", "web", "worker"} <= set(pids)
        assert (tmp_path / "var" / "redis.sock").exists()
        # Children's lines carry their name. The worker may still be loading Django at the banner.
        wait_for_text(proc, log, "worker     | ", timeout=30)
    finally:
        code = stop(proc)

    assert code == 0, log.read_text()
    assert not any(is_alive(pid) for pid in pids.values())
    assert not (tmp_path / "var" / "redis.sock").exists()


def test_it_starts_the_mail_sink_and_keeps_each_message_in_var_mail(tmp_path):
    import smtplib
    from email.message import EmailMessage
    from email.parser import BytesParser
    from email.policy import default as default_policy

    proc, log, port = start_runall(tmp_path, "--no-emulator")
    try:
        text = wait_for_banner(proc, log)
        pids = child_pids(text)
        assert "mail" in pids
        assert f"Sent mail: http://127.0.0.1:{port}/sandbox/mail/" in text
        smtp_port = int(re.search(r"SMTP sink on 127.0.0.1:(\d+)", text).group(1))
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "goldsmith@localhost", "bob@example.com", "Hello"
        message.set_content("A build failed.")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.send_message(message, to_addrs=["bob@example.com", "hidden@example.com"])
        kept = list((tmp_path / "var" / "mail").glob("*.eml"))
        assert len(kept) == 1
        found = BytesParser(policy=default_policy).parsebytes(kept[0].read_bytes())
        assert found["Subject"] == "Hello"
        assert found["X-Envelope-To"] == "bob@example.com, hidden@example.com"
        assert found.get_content().strip() == "A build failed."
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()
    assert not is_alive(pids["mail"])


def wait_for_text(proc: subprocess.Popen, log: Path, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = log.read_text()
        if text in found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"runall exited with {proc.returncode}:\n{found}")
        time.sleep(0.2)
    pytest.fail(f"{text!r} did not appear:\n{log.read_text()}")


def test_it_restarts_a_child_that_dies_and_keeps_the_others(tmp_path):
    proc, log, port = start_runall(tmp_path, "--no-emulator")
    try:
        pids = child_pids(wait_for_banner(proc, log))
        os.kill(pids["worker"], signal.SIGKILL)
        wait_for_text(proc, log, "worker exited unexpectedly with code -9; restarting it in 1s", timeout=30)
        deadline = time.monotonic() + 30
        while child_pids(log.read_text())["worker"] == pids["worker"] and time.monotonic() < deadline:
            time.sleep(0.2)
        restarted = child_pids(log.read_text())
        assert restarted["worker"] != pids["worker"], log.read_text()
        assert is_alive(restarted["worker"])
        assert restarted["web"] == pids["web"]  # nobody else was touched
        assert healthz(port) == 200
        assert proc.poll() is None
    finally:
        code = stop(proc)

    assert code == 0, log.read_text()
    assert not any(is_alive(pid) for pid in restarted.values())


def test_it_stops_everything_when_the_process_that_started_it_dies(tmp_path):
    """`make` killed by a process manager (a signal to make alone): nothing may be left running."""
    shell, log, _ = start_runall(tmp_path, "--no-emulator", via_shell=True)
    pids = child_pids(wait_for_banner(shell, log))
    runall = int((tmp_path / "runall.pid").read_text())
    shell.kill()
    shell.wait(10)

    deadline = time.monotonic() + 30
    while is_alive(runall) and time.monotonic() < deadline:
        time.sleep(0.2)
    text = log.read_text()
    assert not is_alive(runall), text
    assert not any(is_alive(pid) for pid in pids.values()), text
    assert "the process that started runall exited" in text


def test_it_refuses_a_busy_web_port(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        proc, log, _ = start_runall(tmp_path, "--no-emulator", web_port=port)
        code = proc.wait(60)

    text = log.read_text()
    assert code == 1, text
    assert f"Port {port} on 127.0.0.1 is in use" in text
    assert "GOLDSMITH_WEB_PORT" in text
    assert "started" not in text  # nothing was left running


def test_it_starts_the_emulator_and_points_the_children_at_it(tmp_path):
    proc, log, port = start_runall(tmp_path)
    try:
        text = wait_for_banner(proc, log)
        assert "started emulator" in text
        assert healthz(port) == 200
        assert (tmp_path / "var" / "emulator" / "ca.pem").exists()
        if find_azurite() is not None:  # `make install` had Node: build logs go to Azurite
            assert "started azurite" in text
            assert (tmp_path / "var" / "azurite" / "tls" / "cert.pem").exists()
        else:
            assert AZURITE_NOT_INSTALLED in text
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()


def _idle(url: str) -> bool:
    """The worker waits for work: it says so in Redis and no job is waiting or running on its queues.

    Only then can Redis go away harmlessly: rq's worker retries a lost connection while it waits for a
    job, but quits when the connection fails around a job (its heartbeat after one, for instance)."""
    import redis
    from rq import Queue, Worker

    connection = redis.Redis.from_url(url)
    workers = Worker.all(connection=connection)
    queues = [Queue(name, connection=connection) for name in ("builds", "default")]
    return (bool(workers) and all(worker.get_state() == "idle" for worker in workers)
            and all(queue.count == 0 and queue.started_job_registry.count == 0 for queue in queues))


def _wait_until_quiet(url: str, timeout: float = 60) -> None:
    """Until the worker has been idle for a second and no per-minute cron job (the patch schedules')
    is due within the next few seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if 5 < time.time() % 60 < 52 and _idle(url):
            time.sleep(1)
            if _idle(url):
                return
        time.sleep(0.2)
    pytest.fail("the worker never went idle")


def test_the_worker_and_scheduler_ride_out_a_redis_restart(tmp_path):
    """Redis killed while the worker waits for work: runall starts it again, the worker
    reconnects by itself and still runs jobs. (A worker that meets the outage in the middle of a
    job exits, and runall starts it again: test_it_restarts_a_child_that_dies_and_keeps_the_others.)"""
    import redis
    from rq import Queue

    hourly = str(3600)  # the periodic jobs run once as the scheduler starts, then not during the test
    proc, log, port = start_runall(tmp_path, "--no-emulator", BUILD_SWEEP_SECONDS=hourly,
                                   BUILD_RECONCILE_SECONDS=hourly, NOTIFY_RECONCILE_SECONDS=hourly)
    try:
        pids = child_pids(wait_for_banner(proc, log))
        url = f"unix://{tmp_path / 'var' / 'redis.sock'}"
        _wait_until_quiet(url)  # the scheduler enqueues jobs as it starts
        os.kill(pids["redis"], signal.SIGKILL)
        wait_for_text(proc, log, "redis exited unexpectedly with code -9; restarting it in 1s", timeout=30)
        deadline = time.monotonic() + 30
        while child_pids(log.read_text())["redis"] == pids["redis"] and time.monotonic() < deadline:
            time.sleep(0.2)
        while not redis_answers(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        connection = redis.Redis.from_url(url)
        job = Queue("default", connection=connection).enqueue("os.getpid")
        deadline = time.monotonic() + 60
        while job.get_status(refresh=True) != "finished" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert job.get_status(refresh=True) == "finished", log.read_text()
        now = child_pids(log.read_text())
        assert now["worker"] == pids["worker"], log.read_text()  # it reconnected rather than being restarted
        assert is_alive(now["scheduler"])  # itself, or restarted by runall if it met the outage
        assert healthz(port) == 200
        assert proc.poll() is None
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()
