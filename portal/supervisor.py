"""A small process supervisor for `manage.py runall`: start children, relay their output, stop them.

Single-threaded on purpose: one selector loop reads every child's output and notices deaths
and signals, so there is no thread to race with fork or with the signal handlers. Children get
their own session, so a Ctrl-C in the terminal reaches only the supervisor, which then stops
them in order (the apps before Redis and the emulator they still need while shutting down).
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

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


class Supervisor:
    def __init__(self, out: TextIO, *, prefix_width: int = 10):
        self.out = out
        self.width = prefix_width
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
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        child = Child(name, proc, service, one_shot)
        self.children.append(child)
        self.selector.register(proc.stdout, selectors.EVENT_READ, child)
        self.say("goldsmith", f"started {name} (pid {proc.pid}): {' '.join([os.path.basename(argv[0]), *argv[1:]])}")
        return child

    def _check_children(self) -> None:
        for child in self.children:
            if not child.one_shot and not child.running:
                raise ChildFailed(f"{child.name} exited unexpectedly with code {child.proc.returncode}")

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
        """Relay output until a signal arrives (raises Stopping) or a child dies (ChildFailed)."""
        while True:
            self._raise_if_signalled()
            self._check_children()
            self.pump(0.5)

    def _drain(self, child: Child, timeout: float) -> None:
        """Relay what an exited child still has in its pipe, then close it."""
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
