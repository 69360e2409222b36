"""Reading Image Builder's Packer logs (customization.log, validation.log) into steps. Pure.

Image Builder runs each customizer (and each in-VM validator) as one Packer provisioner, which
Packer brackets with `(telemetry) Starting provisioner <type>` and `(telemetry) ending <type>`.
`sections()` turns a log into those steps, in order, so the build page can show each as a
foldable section with its start, end, duration and exit code; `failed_step()` names the step
that failed, `excerpt()` gives the first error lines.

Both line formats Image Builder has written are read (aib-reference-2 §1.4), and plain Packer
debug logs too:

    [<opId>] PACKER OUT ==> azure-arm: Provisioning with shell script: ...      (older: stdout)
    [<opId>] PACKER ERR 2024/05/01 10:00:00 [INFO] (telemetry) ending shell     (older: stderr debug log)
    [<opId>] PACKER ERR ==> azure-arm: Script exited with non-zero exit status: 1 ...   (older: UI error)
    [<opId>] PACKER 2024/05/01 10:00:00 ui: ==> azure-arm: Connected to SSH!    (newer)
    2024/05/01 10:00:00 [INFO] (telemetry) Starting provisioner shell           (PACKER_LOG=1)

Logs are read while they grow: the last section of a live tail may have no ending yet
(`complete` is False), and a line cut in the middle is read as far as it goes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_TS = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d"
_LINE = re.compile(
    rf"^(?:(?P<lead>{_TS}) )?"  # a timestamp before everything (Packer's own debug log)
    r"(?:\[[0-9A-Za-z-]+\] )?"  # Image Builder's operation id
    r"(?:PACKER(?: (?P<stream>OUT|ERR))?(?: |$))?"
    rf"(?:(?P<ts>{_TS}) )?"  # the debug log's timestamp (older ERR lines, newer format)
    r"(?P<message>.*)$")
_START = re.compile(r"\(telemetry\) Starting provisioner ([\w-]+)")
_END = re.compile(r"\(telemetry\) ending ([\w-]+)")
_EXIT = re.compile(r"exited with code: (-?\d+)")
_COMMUNICATOR = re.compile(r"Communicator ended with: (-?\d+)")
_SCRIPT_FAILED = re.compile(r"Script exited with non-zero exit status: (-?\d+)")
_ERRORS = (
    re.compile(r"Script exited with non-zero exit status"),
    re.compile(r"Provisioning step had errors"),
    re.compile(r"Build '[^']+' errored"),
    re.compile(r"^--> \S+: "),
    re.compile(r"==> [\w-]+: ERROR: "),
    re.compile(r"machine readable: [\w-]+,error "),
    re.compile(r"^ui error: "),
)
_BENIGN = re.compile(r"Builds finished but no artifacts were created")  # Azure's docs: harmless on its own
_LOCATION = re.compile(r"(?:log location|logs are at location):? (\S+?)\.?(?:\s|$)")
_DEBUG_INFO = re.compile(r"^(?:\S+ plugin: (?:" + _TS + r" )?)?\[(?:INFO|DEBUG|TRACE|WARN)\]")


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    stream: str  # "OUT", "ERR" or "" (newer format, or not a Packer line)
    at: dt.datetime | None
    message: str  # without the operation id, stream and timestamp prefixes


@dataclass(frozen=True)
class Section:
    """One customizer or validator step as the log shows it."""

    index: int  # position among the log's steps (= the step's index in the template's list)
    kind: str  # "customizer" or "validator"
    type: str  # the Packer provisioner: shell, powershell, file, windows-restart, windows-update
    name: str  # the step's name in the template when known, else the provisioner type
    start_line: int
    end_line: int | None  # the ending marker's line; None while the step runs (or was cut short)
    started_at: dt.datetime | None  # from the lines' timestamps, when they carry them
    ended_at: dt.datetime | None
    exit_code: int | None  # the communicator's exit code, when the log gives one
    failed: bool
    error_line: int | None = None  # a failed step's first error line (where the log page lands)

    @property
    def complete(self) -> bool:
        return self.end_line is not None

    @property
    def duration(self) -> dt.timedelta | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


def parse_line(number: int, raw: str) -> Line:
    """One line with its stream, timestamp and message (the prefixes taken off)."""
    found = _LINE.match(raw)
    stamp = (found.group("ts") or found.group("lead")) if found else None
    return Line(number, (found.group("stream") or "") if found else "", _time(stamp),
                found.group("message") if found else raw)


def lines(text: str) -> list[Line]:
    """Every line with its stream, timestamp and message (the prefixes taken off)."""
    return [parse_line(number, raw) for number, raw in enumerate(text.splitlines(), start=1)]


class Reader:
    """sections(), failed_step() and excerpt() for a log read piece by piece (a 50 MB log
    never has to be held whole): feed() it lines in order, then read `sections` (the last
    one may still be running) and `excerpt`."""

    def __init__(self, template: dict | None = None, *, kind: str = "customizer", max_excerpt: int = 20):
        self.kind = kind
        self._steps = _steps(template or {}, kind)
        self._max_excerpt = max_excerpt
        self._done: list[Section] = []
        self._current: dict | None = None
        self.excerpt: list[str] = []
        self.line_count = 0

    def feed(self, raw: str) -> None:
        self.line_count += 1
        line = parse_line(self.line_count, raw)
        error = _is_error(line)
        if len(self.excerpt) < self._max_excerpt:
            code = _EXIT.search(line.message)
            if (error or (code is not None and code.group(1) != "0")) and line.message not in self.excerpt:
                self.excerpt.append(line.message)
        message = line.message
        started = _START.search(message)
        if started:
            if self._current is not None:
                self._close(None, None)  # a step with no ending marker: Packer moved on
            self._current = {"type": started.group(1), "start": line.number, "at": line.at, "exit": None,
                             "failed": False, "error_line": None, "exit_line": None}
            return
        current = self._current
        if current is None:
            return
        ended = _END.search(message)
        if ended:
            self._close(line.number, line.at)
            return
        code = _EXIT.search(message) or _COMMUNICATOR.search(message)
        if code and current["exit"] is None:
            current["exit"] = int(code.group(1))
            if current["exit"] != 0:
                current["exit_line"] = line.number
        failed = _SCRIPT_FAILED.search(message)
        if failed:
            current["failed"] = True
            current["exit"] = int(failed.group(1)) if current["exit"] is None else current["exit"]
            current["script_line"] = current.get("script_line") or line.number
        elif error:
            current["failed"] = True
            current["error_line"] = current["error_line"] or line.number

    def feed_text(self, text: str) -> None:
        for raw in text.splitlines():
            self.feed(raw)

    @property
    def sections(self) -> list[Section]:
        if self._current is None:
            return list(self._done)
        return [*self._done, self._section(self._current, len(self._done), None, None)]

    def failed_step(self) -> Section | None:
        return next((section for section in self.sections if section.failed), None)

    def _close(self, end_line: int | None, ended_at: dt.datetime | None) -> None:
        assert self._current is not None
        self._done.append(self._section(self._current, len(self._done), end_line, ended_at))
        self._current = None

    def _section(self, current: dict, index: int, end_line: int | None, ended_at: dt.datetime | None) -> Section:
        step = self._steps[index] if index < len(self._steps) else {}
        allowed = set(step.get("validExitCodes") or [0]) if step.get("type") == "PowerShell" else {0}
        code = current["exit"]
        failed = current["failed"] or (code is not None and code not in allowed)
        # The line that says it failed in words ("Script exited with non-zero exit status: 3"),
        # else the communicator's exit code line.
        error_line = (current.get("script_line") or current["error_line"] or current.get("exit_line")) \
            if failed else None
        return Section(index, self.kind, current["type"], step.get("name") or current["type"], current["start"],
                       end_line, current["at"], ended_at, code, failed, error_line)


def sections(text: str, template: dict | None = None, *, kind: str = "customizer") -> list[Section]:
    """The log's steps in order. `kind` says which list of the template the log is about
    (customization.log: "customizer", validation.log: "validator"); the template gives names
    and, for PowerShell, the exit codes that count as success."""
    reader = Reader(template, kind=kind)
    reader.feed_text(text)
    return reader.sections


def failed_step(text: str, template: dict | None = None, *, kind: str = "customizer") -> Section | None:
    """The first step that failed, or None (the build may still have failed outside the steps:
    deploying the build VM, distributing; see excerpt())."""
    return next((section for section in sections(text, template, kind=kind) if section.failed), None)


def excerpt(text: str, max_lines: int = 20) -> list[str]:
    """The first error lines of the log (prefixes taken off), at most max_lines; [] when none."""
    reader = Reader(max_excerpt=max_lines)
    reader.feed_text(text)
    return reader.excerpt


def is_error(raw: str) -> bool:
    """True for a raw log line that reports an error (what the log page marks)."""
    return _is_error(parse_line(0, raw))


def _is_error(line: Line) -> bool:
    message = line.message
    if _BENIGN.search(message):
        return False
    if any(pattern.search(message) for pattern in _ERRORS):
        return True
    # Older format: Packer's UI errors come on stderr without a timestamp, unlike its debug log.
    return line.stream == "ERR" and line.at is None and message.startswith(("==> ", "--> ")) and not \
        _DEBUG_INFO.search(message)


def _steps(template: dict, kind: str) -> list[dict]:
    properties = template.get("properties") or {}
    if kind == "validator":
        return list((properties.get("validate") or {}).get("inVMValidations") or [])
    return list(properties.get("customize") or [])


def _time(stamp: str | None) -> dt.datetime | None:
    if not stamp:
        return None
    return dt.datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S").replace(tzinfo=dt.UTC)


def log_location(message: str) -> str:
    """The log URL or path Azure names in an error message ("" when it names none)."""
    found = _LOCATION.search(message or "")
    return found.group(1) if found else ""
