"""Reading Image Builder's build logs: which step failed and why. Pure.

Packer writes "Starting provisioner <type>", then (for inline scripts) the path of the
uploaded script, whose number is the step's index in the template's customize (or
inVMValidations) list, then its output; a failing script ends with a "PACKER ERR" line that
gives the exit status. The build page uses this to point at the failing step by name instead
of leaving people to read a few thousand lines of log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCRIPT = re.compile(r"Provisioning with (?:shell|powershell) script: \S*?packer-(?:shell|powershell)-(\d+)\.\w+")
_START = re.compile(r"Starting provisioner ([\w-]+)")
_ERROR = re.compile(r"PACKER ERR ==> azure-arm: (.+)$")
_LOCATION = re.compile(r"(?:log location|logs are at location):? (\S+?)\.?(?:\s|$)")


@dataclass(frozen=True)
class FailingStep:
    index: int | None  # position in the template's list, when the log names it
    name: str  # the step's name in the template, or its type
    kind: str  # "customizer" or "validator"
    message: str  # the error line from the log
    line: int  # 1-based line number of the error in the log


def failing_step(log: str, template: dict, *, kind: str = "customizer") -> FailingStep | None:
    """The step whose failure stopped the build, or None when the log shows no failing step."""
    lines = log.splitlines()
    current_index: int | None = None
    current_type = ""
    for number, text in enumerate(lines, start=1):
        started = _START.search(text)
        if started:
            current_index, current_type = None, started.group(1)
            continue
        script = _SCRIPT.search(text)
        if script:
            current_index = int(script.group(1))
            continue
        error = _ERROR.search(text)
        if error and current_type:
            steps = _steps(template, kind)
            step = steps[current_index] if current_index is not None and current_index < len(steps) else {}
            name = step.get("name") or step.get("type") or current_type
            return FailingStep(current_index, name, kind, error.group(1).strip(), number)
    return None


def _steps(template: dict, kind: str) -> list[dict]:
    properties = template.get("properties") or {}
    if kind == "validator":
        return list((properties.get("validate") or {}).get("inVMValidations") or [])
    return list(properties.get("customize") or [])


def log_location(message: str) -> str:
    """The log URL or path Azure names in an error message ("" when it names none)."""
    found = _LOCATION.search(message or "")
    return found.group(1) if found else ""


def is_validation_failure(message: str) -> bool:
    return "validation" in (message or "").lower() and "packer validation" in (message or "").lower()
