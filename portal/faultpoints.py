"""Crash points for fault-injection tests: kill the worker at an exact step boundary.

The orchestration's promise is that a worker may die anywhere; tests prove it by setting
GOLDSMITH_FAULT_POINTS="submit.template_created:horse,..." for one worker process, which
then SIGKILLs itself (the RQ work-horse running the job) or its whole worker (the horse's
parent too) the first time it reaches that point. Unset, `reached` does nothing; a deployed
portal with it set is refused by system check goldsmith.E011.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "GOLDSMITH_FAULT_POINTS"


def reached(point: str) -> None:
    spec = os.environ.get(ENV, "")
    if not spec:
        return
    for item in spec.split(","):
        name, _, target = item.strip().partition(":")
        if name != point:
            continue
        if target == "worker" and _is_rq_worker(os.getppid()):
            os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def _is_rq_worker(pid: int) -> bool:
    """Only ever kill a parent that is an RQ worker (never a test runner or a shell)."""
    try:
        return b"rqworker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
