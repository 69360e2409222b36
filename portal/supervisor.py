"""A small process supervisor for `manage.py runall`: start children, relay their output, stop them.

Single-threaded on purpose: one selector loop reads every child's output and notices deaths
and signals, so there is no thread to race with fork or with the signal handlers. Children get
their own session, so a Ctrl-C in the terminal reaches only the supervisor, which then stops
them in order (the apps before Redis and the emulator they still need while shutting down).

Once everything is up, a child that exits is started again, after 1 s, then 2, 4... (up to
30 s) while it keeps crashing; when it has crashed `crash_limit` times within `crash_window`
seconds it is hopeless (a bad setting, a port taken), and ChildFailed stops everything. While
starting up, any death is fatal at once: the user is still watching and the cause is fresh.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from portal.devservices import send_signal


class Stopping(Exception):
    """SIGINT or SIGTERM arrived, or our parent died: stop everything and exit 0."""


class ChildFailed(Exception):
    """A child exited when it should not have; the message says which and how."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    service: bool  # services (Redis, the emulator) are stopped after the apps that use them
    one_shot: bool = False  # a set-up step, whose exit is expected
    pending: bytes = field(default=b"")
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    crashes: list[float] = field(default_factory=list)  # monotonic times of its recent exits
    restart_at: float | None = None  # set while it waits out its backoff

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


class Supervisor:
    def __init__(self, out: TextIO, *, prefix_width: int = 10, restart_delay: float = 1.0,
                 restart_max_delay: float = 30.0, crash_limit: int = 5, crash_window: float = 60.0):
        self.out = out
        self.width = prefix_width
        self.restart_delay = restart_delay
        self.restart_max_delay = restart_max_delay
        self.crash_limit = crash_limit
        self.crash_window = crash_window
        self.children: list[Child] = []
        self.selector = selectors.DefaultSelector()
        self.signal_received: int | None = None
        self._previous_handlers: dict[int, object] = {}
        self._parent = os.getppid()

    # --- signals -----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum, frame) -> None:
        # Only note it: the loop acts on it between reads, where it is safe to do I/O.
        self.signal_received = signum

    def _raise_if_signalled(self) -> None:
        if self.signal_received is not None:
            raise Stopping(signal.Signals(self.signal_received).name)
        if os.getppid() != self._parent:
            # Whoever started us (make, a shell, a process manager) died without passing on a
            # signal; the children must not outlive it.
            raise Stopping("the process that started runall exited")

    # --- output ------------------------------------------------------------------------

    def say(self, name: str, line: str) -> None:
        self.out.write(f"{name:<{self.width}} | {line}\n")
        self.out.flush()

    def _relay(self, child: Child, data: bytes) -> None:
        lines = (child.pending + data).split(b"\n")
        child.pending = lines.pop()
        for line in lines:
            self.say(child.name, line.decode("utf-8", "replace").rstrip("\r"))

    def pump(self, timeout: float) -> None:
        """Relay whatever output arrives within timeout seconds."""
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            child: Child = key.data
            data = os.read(key.fd, 65536)
            if data:
                self._relay(child, data)
            else:
                self.selector.unregister(key.fd)
                if child.pending:
                    self._relay(child, b"\n")

    # --- children ----------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], *, env: dict[str, str], cwd: str,
              service: bool = False, one_shot: bool = False) -> Child:
        child = Child(name, self._popen(argv, env, cwd), service, one_shot, argv=argv, env=env, cwd=cwd)
        self.children.append(child)
        self._started(child)
        return child

    @staticmethod
    def _popen(argv: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen:
        return subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def _started(self, child: Child) -> None:
        self.selector.register(child.proc.stdout, selectors.EVENT_READ, child)
        argv = child.argv
        self.say("goldsmith", f"started {child.name} (pid {child.proc.pid}): "
                              f"{' '.join([os.path.basename(argv[0]), *argv[1:]])}")

    def _check_children(self) -> None:
        for child in self.children:
            if not child.one_shot and not child.running:
                raise ChildFailed(f"{child.name} exited unexpectedly with code {child.proc.returncode}")

    def _restart_children(self) -> None:
        """Start again the children that exited, each after its backoff; raises ChildFailed for
        one that crashed crash_limit times within crash_window seconds."""
        now = time.monotonic()
        for child in self.children:
            if child.one_shot:
                continue
            if child.restart_at is None:
                if not child.running:
                    self._schedule_restart(child, now)
            elif now >= child.restart_at:
                child.restart_at = None
                child.proc = self._popen(child.argv, child.env, child.cwd)
                child.pending = b""
                self._started(child)

    def _schedule_restart(self, child: Child, now: float) -> None:
        code = child.proc.returncode
        self._drain(child, timeout=1)  # its last words (a traceback, say) come before ours
        child.crashes = [moment for moment in child.crashes if now - moment < self.crash_window] + [now]
        if len(child.crashes) >= self.crash_limit:
            raise ChildFailed(f"{child.name} exited with code {code}, its {len(child.crashes)}th exit within "
                              f"{self.crash_window:g}s; not restarting it again")
        delay = min(self.restart_delay * 2 ** (len(child.crashes) - 1), self.restart_max_delay)
        self.say("goldsmith", f"{child.name} exited unexpectedly with code {code}; restarting it in {delay:g}s")
        child.restart_at = now + delay

    def wait_until(self, ready: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Relay output until ready() is true; raises Stopping, or ChildFailed on a death or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self._raise_if_signalled()
            self._check_children()
            if ready():
                return
            if time.monotonic() > deadline:
                raise ChildFailed(f"{what} was not ready after {timeout:g}s")
            self.pump(0.2)

    def run_step(self, name: str, argv: list[str], *, env: dict[str, str], cwd: str) -> None:
        """Run a one-shot command to completion, relaying its output; raises ChildFailed if it fails."""
        child = self.spawn(name, argv, env=env, cwd=cwd, one_shot=True)
        while child.running:
            self._raise_if_signalled()
            self._check_children()
            self.pump(0.2)
        self._drain(child, timeout=5)
        self.children.remove(child)
        if child.proc.returncode != 0:
            raise ChildFailed(f"{name} failed with code {child.proc.returncode}")

    def watch(self) -> None:
        """Relay output and restart children that die, until a signal arrives (raises Stopping)
        or a child keeps crashing (ChildFailed)."""
        while True:
            self._raise_if_signalled()
            self._restart_children()
            self.pump(0.5)

    def _drain(self, child: Child, timeout: float) -> None:
        """Relay what an exited child still has in its pipe, then close it."""
        if child.proc.stdout.closed:  # drained already, when it exited and waits for its restart
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and child.proc.stdout.fileno() in self.selector.get_map():
            self.pump(0.05)
        if child.proc.stdout.fileno() in self.selector.get_map():
            self.selector.unregister(child.proc.stdout)
        child.proc.stdout.close()

    def stop_all(self, timeout: float) -> None:
        """Stop the apps, then the services: SIGTERM to each process group, SIGKILL after timeout.

        A second Ctrl-C while waiting skips the rest of the grace period.
        """
        self.signal_received = None
        for services in (False, True):
            group = [child for child in self.children if child.service is services]
            for child in reversed(group):
                if child.running:
                    self.say("goldsmith", f"stopping {child.name}")
                    send_signal(child.proc, signal.SIGTERM, group=True)
            deadline = time.monotonic() + timeout
            while any(child.running for child in group):
                if time.monotonic() > deadline or self.signal_received is not None:
                    self._kill([child for child in group if child.running])
                    break
                self.pump(0.1)
            for child in group:
                child.proc.wait()
                # A grandchild (RQ's work horse, say) can outlive its parent: end the whole group.
                send_signal(child.proc, signal.SIGKILL, group=True)
        for child in self.children:
            self._drain(child, timeout=1)
        self.children.clear()

    def _kill(self, children: list[Child]) -> None:
        for child in children:
            self.say("goldsmith", f"killing {child.name}")
            send_signal(child.proc, signal.SIGKILL, group=True)
