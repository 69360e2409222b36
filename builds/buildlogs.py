"""Build logs: find, tail, read, keep and prune them. Every byte leaves here redacted.

A build's Packer logs live in its staging storage account until the staging group is deleted
(builds/azure.py finds and reads them by byte range): customization.log always, and
validation.log next to it when the template has in-VM validators. Every function takes the log's
name (`log=CUSTOMIZATION` or `VALIDATION`). Before cleanup deletes the template, `keep()` copies
each, redacted and gzip-compressed in members of about CHUNK_BYTES, into Goldsmith's own
storage: the database (BuildLogChunk) or BUILD_LOG_CONTAINER_URL. From then on every read uses
the kept copy. Memory stays flat whatever the size: the live log is read in ranges of
READ_BYTES, a kept one a member at a time. `failure()` is the summary that explains a failed
build: validation.log's when the build failed validating or customization.log names no failing
step.

Offsets: `tail(after=...)` speaks in bytes of the raw blob (the page's cursor); everything else
(pages, search, the API's Range) in bytes and lines of the redacted text.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import logging
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from builds import azure, packerlog
from builds.models import Build, BuildLog, BuildLogChunk
from portal.redact import LogRedactor, redact_log

log = logging.getLogger(__name__)

READ_BYTES = 4 * 1024 * 1024  # one ranged read of the live log when copying or streaming it
TAIL_BYTES = 256 * 1024  # the most one refresh of the live panel reads
START_BYTES = 64 * 1024  # how much of the end of a big running log the live panel opens with
CHUNK_BYTES = 1024 * 1024  # text per gzip member of a kept copy
PAGE_LINES = 500
SEARCH_HITS = 200
NO_NODE = "not available in this sandbox without Node"

CUSTOMIZATION = "customization"
VALIDATION = "validation"
LOGS = (CUSTOMIZATION, VALIDATION)
_BLOBS = {CUSTOMIZATION: azure.CUSTOMIZATION_LOG, VALIDATION: azure.VALIDATION_LOG}
_KINDS = {CUSTOMIZATION: "customizer", VALIDATION: "validator"}  # packerlog's step kinds
_BEFORE_VALIDATING = {"queued", "building", "customizing", "optimizing"}
_VALIDATING_ON = {"validating", "distributing"}


@dataclass(frozen=True)
class Tail:
    """New whole lines of the live log after a raw byte offset."""

    lines: tuple[tuple[int, str], ...]  # (line number, redacted text)
    next: int  # the raw offset to ask from next time
    size: int  # the blob's size at the read
    available: bool = True
    reason: str = ""  # why not available


@dataclass(frozen=True)
class Summary:
    """What the build page shows about a log without showing it."""

    available: bool
    source: str  # "kept", "live", "emulator" or ""
    reason: str  # when not available, said to the user
    sections: tuple[packerlog.Section, ...] = ()
    failed_step: packerlog.Section | None = None
    excerpt: tuple[str, ...] = ()
    lines: int | None = None
    size: int | None = None  # bytes of redacted text, when known
    sha256: str = ""  # of a kept copy's text
    kept_at: dt.datetime | None = None
    log: str = CUSTOMIZATION  # which log this is about

    @property
    def current(self) -> packerlog.Section | None:
        """The step running now (the last one, while it has no ending)."""
        return self.sections[-1] if self.sections and not self.sections[-1].complete else None


@dataclass(frozen=True)
class Page:
    lines: tuple[tuple[int, str], ...]
    number: int
    first_line: int
    has_next: bool
    total_lines: int | None


class Unavailable(Exception):
    """The log cannot be read now; the message says why (for the user)."""


# --- Which logs, and where -----------------------------------------------------------------------


def has_validators(build: Build) -> bool:
    """True when the build's template runs in-VM validators (so Image Builder writes validation.log)."""
    properties = (build.template or {}).get("properties") or {}
    return bool((properties.get("validate") or {}).get("inVMValidations"))


def log_names(build: Build) -> tuple[str, ...]:
    """The logs the build has (or will have): customization, and validation with validators."""
    return LOGS if has_validators(build) else (CUSTOMIZATION,)


def file_name(log: str) -> str:
    """The log's file name in the run folder (customization.log, validation.log)."""
    return _BLOBS[log]


def current_log(build: Build) -> str:
    """The log of the phase the build is in: validation.log from Validating on (when there are
    validators), customization.log before. The live panel tails it."""
    if has_validators(build) and (build.sub_state or "").lower() in _VALIDATING_ON:
        return VALIDATION
    return CUSTOMIZATION


def _check(log: str) -> str:
    if log not in _BLOBS:
        raise ValueError(f"unknown log {log!r}")
    return log


def location(build: Build, log: str = CUSTOMIZATION) -> azure.LogLocation | None:
    """The log's location in the staging account (customization.log's is found once and cached
    on the build; validation.log is its sibling in the same run folder); None when there is none
    yet. Raises azure.AzureError."""
    _check(log)
    if build.log_blob and build.log_account_url:
        found = azure.LogLocation(build.log_account_url, build.log_blob)
    elif not build.staging_resource_group or build.template_deleted_at:
        return None
    else:
        found = azure.staging_log_location(build.subscription_id, build.staging_resource_group)
        if found is not None and found.blob:
            Build.objects.filter(pk=build.pk).update(log_account_url=found.account_url, log_blob=found.blob)
            build.log_account_url, build.log_blob = found.account_url, found.blob
    if log == VALIDATION and found is not None and found.blob:
        return found.sibling(azure.VALIDATION_LOG)
    return found


def kept(build: Build, log: str = CUSTOMIZATION) -> BuildLog | None:
    return BuildLog.objects.filter(build=build, name=_check(log), kept_at__isnull=False).first()


def kept_logs(build: Build) -> list[BuildLog]:
    """Every finished kept copy of the build's logs, customization first."""
    return sorted(BuildLog.objects.filter(build=build, kept_at__isnull=False), key=lambda item: LOGS.index(item.name))


def _no_validation_reason(build: Build) -> str:
    """Why validation.log cannot be read without asking Azure ("" when it may exist)."""
    if not has_validators(build):
        return "This build's template has no validators, so there is no validation log."
    sub_state = (build.sub_state or "").lower()
    if build.is_terminal and sub_state in _BEFORE_VALIDATING:
        return "The build ended before its validators ran, so there is no validation log."
    if not build.is_terminal and sub_state not in _VALIDATING_ON:
        return "There is no validation log yet: Image Builder writes it when the validators run."
    if build.template_deleted_at:
        return "The validation log was deleted with the build's template, and Goldsmith kept no copy."
    return ""


def _missing_validation(build: Build) -> str:
    if build.is_terminal:
        return "Image Builder wrote no validation log for this build."
    return "There is no validation log yet: Image Builder writes it when the validators run."


def _no_log_reason(build: Build, found: azure.LogLocation | None) -> str:
    if found is None and settings.AZURE_EMULATOR and build.staging_resource_group and build.run_started:
        return f"The build log is {NO_NODE} (the emulator has no staging storage: start it with Azurite)."
    if build.template_deleted_at:
        return "The log was deleted with the build's template, and Goldsmith kept no copy."
    return "There is no log yet: Image Builder writes it once the build VM is running."


def _legacy_text(build: Build) -> str | None:
    """The emulator's own copy (/_emulator/blobs/…), served when it runs without Azurite."""
    uri = build.log_uri
    if not (settings.AZURE_EMULATOR and uri.startswith(settings.AZURE_ARM_ENDPOINT)):
        return None
    key = f"buildlog:legacy:{build.uuid}"
    text = cache.get(key)
    if text is None:
        text = azure.fetch_log(uri)
        if text is not None and build.is_terminal:
            cache.set(key, text, timeout=7 * 24 * 3600)
    return text


# --- Reading ------------------------------------------------------------------------------------


class _Source:
    """Redacted text of one log, as bytes, from any byte offset."""

    kind = ""
    size: int | None = None
    first_lines: list[tuple[int, int]] = []  # (text offset, line number) where reading may start

    def chunks(self, start: int = 0) -> Iterator[bytes]:
        raise NotImplementedError


class _KeptSource(_Source):
    kind = "kept"

    def __init__(self, kept_log: BuildLog):
        self.log = kept_log
        self.size = kept_log.size

    def _member(self, seq: int) -> bytes:
        _text_offset, gz_offset, gz_length, _line = self.log.index[seq]
        if self.log.storage == BuildLog.Storage.CONTAINER:
            data = azure.kept_log_read(self.log.blob_name, gz_offset, gz_length)
        else:
            data = bytes(BuildLogChunk.objects.values_list("data", flat=True).get(log=self.log, seq=seq))
        return zlib.decompress(data, wbits=31)

    def _first_member(self, *, offset: int | None = None, line: int | None = None) -> int:
        found = 0
        for seq, (text_offset, _gz, _length, first_line) in enumerate(self.log.index):
            if (offset is not None and text_offset <= offset) or (line is not None and first_line <= line):
                found = seq
        return found

    def chunks(self, start: int = 0) -> Iterator[bytes]:
        if not self.log.index:
            return
        seq = self._first_member(offset=start)
        skip = start - self.log.index[seq][0]
        for number in range(seq, len(self.log.index)):
            data = self._member(number)
            if skip:
                data, skip = data[skip:], 0
            yield data

    def lines_from(self, line: int) -> Iterator[tuple[int, str]]:
        if not self.log.index:
            return
        seq = self._first_member(line=line)
        number = self.log.index[seq][3]
        for member in range(seq, len(self.log.index)):
            for text in self._member(member).decode("utf-8", errors="replace").splitlines():
                if number >= line:
                    yield number, text
                number += 1


class _LiveSource(_Source):
    kind = "live"

    def __init__(self, found: azure.LogLocation, first: azure.LogChunk | None = None):
        self.location = found
        self.first = first  # the first range, when already read (to learn the log exists)

    def raw(self) -> Iterator[bytes]:
        offset = 0
        if self.first is not None:
            if not self.first.data:
                return
            offset = len(self.first.data)
            yield self.first.data
            if offset >= self.first.size:
                return
        while True:
            chunk = azure.read_log(self.location, offset, READ_BYTES)
            if not chunk.data:
                return
            offset += len(chunk.data)
            yield chunk.data
            if offset >= chunk.size:
                return

    def chunks(self, start: int = 0) -> Iterator[bytes]:
        redactor = LogRedactor()
        for data in self.raw():
            out = redactor.feed(data)
            if start:
                out, start = out[start:], max(0, start - len(out))
            if out:
                yield out
        out = redactor.finish()
        if start:
            out = out[start:]
        if out:
            yield out


class _TextSource(_Source):
    kind = "emulator"

    def __init__(self, text: str):
        self.data = redact_log(text).encode("utf-8")
        self.size = len(self.data)

    def chunks(self, start: int = 0) -> Iterator[bytes]:
        if start < len(self.data):
            yield self.data[start:]


def _source(build: Build, log: str = CUSTOMIZATION) -> _Source:
    """The best copy of the log: kept, live, or the emulator's own (customization.log only).
    Raises Unavailable, also when the live log's first range cannot be read."""
    found_kept = kept(build, log)
    if found_kept is not None:
        return _KeptSource(found_kept)
    if log == VALIDATION and (reason := _no_validation_reason(build)):
        raise Unavailable(reason)
    try:
        found = location(build, log)
    except azure.AzureError as exc:
        text = _legacy_text(build) if log == CUSTOMIZATION else None
        if text is not None:
            return _TextSource(text)
        raise Unavailable(f"The log could not be read from the staging storage: {exc.message}") from exc
    if found is not None and found.blob:
        try:
            return _LiveSource(found, azure.read_log(found, 0, READ_BYTES))
        except azure.AzureError as exc:
            if log == VALIDATION and exc.code == "BlobNotFound":
                raise Unavailable(_missing_validation(build)) from exc
            raise Unavailable(f"The log could not be read from the staging storage: {exc.message}") from exc
    text = _legacy_text(build) if log == CUSTOMIZATION else None
    if text is not None:
        return _TextSource(text)
    if log == VALIDATION and found is None and settings.AZURE_EMULATOR and build.run_started:
        raise Unavailable(f"The validation log is {NO_NODE} (the emulator has no staging storage: start it "
                          "with Azurite).")
    raise Unavailable(_no_log_reason(build, found))


def stream(build: Build, start: int = 0, *, log: str = CUSTOMIZATION) -> Iterator[bytes]:
    """The redacted log from byte `start`, in pieces. Raises Unavailable before the first piece."""
    return _source(build, log).chunks(start)


def opened(build: Build, *, log: str = CUSTOMIZATION) -> tuple[Iterator[bytes], int | None, str]:
    """stream() with the redacted size when known without reading the log (a kept copy)."""
    source = _source(build, log)
    return source.chunks(0), source.size, source.kind


def redacted_size(build: Build, *, log: str = CUSTOMIZATION) -> int:
    """Bytes of redacted text (a live log is read through once to learn it)."""
    source = _source(build, log)
    if source.size is not None:
        return source.size
    return sum(len(piece) for piece in source.chunks())


def _lines(source: _Source, first: int = 1) -> Iterator[tuple[int, str]]:
    if isinstance(source, _KeptSource):
        yield from source.lines_from(first)
        return
    number, carry = 1, b""
    for data in source.chunks():
        data = carry + data
        parts = data.split(b"\n")
        carry = parts.pop()
        for part in parts:
            if number >= first:
                yield number, part.decode("utf-8", errors="replace").rstrip("\r")
            number += 1
    if carry and number >= first:
        yield number, carry.decode("utf-8", errors="replace").rstrip("\r")


def page(build: Build, number: int = 1, *, per_page: int = PAGE_LINES, log: str = CUSTOMIZATION) -> Page:
    """Lines of page `number` (1-based) of the redacted log. Raises Unavailable."""
    source = _source(build, log)
    number = max(1, number)
    first = (number - 1) * per_page + 1
    found: list[tuple[int, str]] = []
    has_next = False
    for item in _lines(source, first):
        if len(found) == per_page:
            has_next = True
            break
        found.append(item)
    total = source.log.lines if isinstance(source, _KeptSource) else None
    return Page(tuple(found), number, first, has_next, total)


def page_of_line(line: int, per_page: int = PAGE_LINES) -> int:
    return (max(1, line) - 1) // per_page + 1


def search(build: Build, query: str, *, limit: int = SEARCH_HITS,
           log: str = CUSTOMIZATION) -> tuple[tuple[int, str], ...]:
    """Lines containing `query` (case-insensitive), at most `limit`. Raises Unavailable."""
    needle = query.casefold()
    if not needle:
        return ()
    found = []
    for number, text in _lines(_source(build, log)):
        if needle in text.casefold():
            found.append((number, text))
            if len(found) >= limit:
                break
    return tuple(found)


def _live_location(build: Build, after: int, log: str) -> tuple[azure.LogLocation | None, Tail | None]:
    """The live log's location, or (None, a Tail saying why there is none)."""
    if log == VALIDATION and (reason := _no_validation_reason(build)):
        return None, Tail((), after, 0, False, reason)
    try:
        found = location(build, log)
    except azure.AzureError as exc:
        return None, Tail((), after, 0, False, f"The log could not be read: {exc.message}")
    if found is None or not found.blob:
        return None, Tail((), after, 0, False, _no_log_reason(build, found))
    return found, None


def _read_error(build: Build, after: int, exc: azure.AzureError, log: str) -> Tail:
    if log == VALIDATION and exc.code == "BlobNotFound":
        return Tail((), after, 0, False, _missing_validation(build))
    return Tail((), after, 0, False, f"The log could not be read: {exc.message}")


def tail(build: Build, after: int = 0, *, first_line: int = 1, log: str = CUSTOMIZATION) -> Tail:
    """The whole lines written after raw byte `after` (at most TAIL_BYTES): one ranged read of
    the staging blob (plus, the first time, the look-up of where it is). Lines are numbered
    from `first_line`; 0 means the numbers are unknown (the panel started near the end) and
    every line gets 0."""
    found, missing = _live_location(build, after, log)
    if found is None:
        return missing
    try:
        chunk = azure.read_log(found, after, TAIL_BYTES)
    except azure.AzureError as exc:
        return _read_error(build, after, exc, log)
    return _tail_lines(build, after, chunk, first_line)


def tail_start(build: Build, *, log: str = CUSTOMIZATION) -> Tail:
    """The live panel's first read: the whole log when it is short (one read), else its last
    START_BYTES or so, from the first whole line in them (two reads), so a page opened on a
    big running log shows where it is now instead of catching up TAIL_BYTES per refresh. Those
    lines are numbered when the timeline's reader (sections()) has counted the log up to them,
    else numbered 0 (unknown)."""
    found, missing = _live_location(build, 0, log)
    if found is None:
        return missing
    try:
        chunk = azure.read_log(found, 0, START_BYTES)
        if len(chunk.data) >= chunk.size:
            return _tail_lines(build, 0, chunk, 1)
        start = chunk.size - START_BYTES
        chunk = azure.read_log(found, start, TAIL_BYTES)
    except azure.AzureError as exc:
        return _read_error(build, 0, exc, log)
    cut = chunk.data.find(b"\n") + 1  # skip the line the range began inside
    first_line = 0
    counted = _steps_state(build, found)
    if counted is not None:
        counted_to = counted[0] - counted[1].pending  # the end of the last whole line it read
        if start + cut <= counted_to <= start + len(chunk.data):
            first_line = counted[2].line_count - chunk.data[cut:counted_to - start].count(b"\n") + 1
    return _tail_lines(build, start + cut, azure.LogChunk(start + cut, chunk.data[cut:], chunk.size), first_line)


def _tail_lines(build: Build, after: int, chunk: azure.LogChunk, first_line: int) -> Tail:
    data = chunk.data
    at_end = after + len(data) >= chunk.size
    if not (at_end and build.is_terminal):
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) >= TAIL_BYTES:
            cut = len(data)  # one line longer than a whole read: show it in pieces
        data = data[:cut]
    redactor = LogRedactor()
    lines: list[tuple[int, str]] = []
    consumed = 0
    key_started: tuple[int, int] | None = None  # (raw offset, index in lines) where a private key began
    number = first_line
    for raw in data.splitlines(keepends=True):
        was_in_key = redactor.in_key
        out = redactor.feed(raw if raw.endswith(b"\n") else raw + b"\n")
        if redactor.in_key and not was_in_key:
            key_started = (consumed, len(lines))
        elif not redactor.in_key:
            key_started = None
        lines.append((number, out.decode("utf-8", errors="replace").rstrip("\r\n")))
        consumed += len(raw)
        number += 1 if first_line else 0
    if key_started is not None and not (at_end and build.is_terminal):
        consumed, keep_count = key_started  # wait for the key's END line: mask it all at once
        lines = lines[:keep_count]
    return Tail(tuple(lines), after + consumed, chunk.size)


# --- What the log says ----------------------------------------------------------------------------


def _section_dict(section: packerlog.Section) -> dict:
    data = asdict(section)
    for name in ("started_at", "ended_at"):
        data[name] = data[name].isoformat() if data[name] else None
    return data


def _section(data: dict) -> packerlog.Section:
    values = dict(data)
    for name in ("started_at", "ended_at"):
        values[name] = dt.datetime.fromisoformat(values[name]) if values.get(name) else None
    return packerlog.Section(**values)


def summary(build: Build, log: str = CUSTOMIZATION) -> Summary:
    """Sections, failing step and first error lines of one log: stored with a kept copy, else
    read (and, for a finished build, cached) from the live log."""
    found_kept = kept(build, log)
    if found_kept is not None:
        return Summary(True, "kept", "", tuple(_section(item) for item in found_kept.sections),
                       _section(found_kept.failed_step) if found_kept.failed_step else None,
                       tuple(found_kept.excerpt), found_kept.lines, found_kept.size, found_kept.sha256,
                       found_kept.kept_at, log)
    key = f"buildlog:summary:{build.uuid}" + ("" if log == CUSTOMIZATION else f":{log}")
    if build.is_terminal:
        cached = cache.get(key)
        if cached is not None:
            return cached
    try:
        source = _source(build, log)
    except Unavailable as exc:
        return Summary(False, "", str(exc), log=log)
    reader = packerlog.Reader(build.template, kind=_KINDS[log])
    try:
        for _number, text in _lines(source):
            reader.feed(text)
    except azure.AzureError as exc:
        return Summary(False, "", f"The log could not be read: {exc.message}", log=log)
    result = Summary(True, source.kind, "", tuple(reader.sections), reader.failed_step(), tuple(reader.excerpt),
                     reader.line_count, source.size, log=log)
    # A finished build's log stops changing once Image Builder has exported all of it.
    if build.is_terminal and (result.failed_step or result.excerpt or build.state != Build.State.FAILED):
        cache.set(key, result, timeout=24 * 3600)
    return result


def failure(build: Build) -> Summary:
    """The summary that explains a failed build: validation.log's when the template has
    validators and the build failed in Validating, or when customization.log names no failing
    step and validation.log does; customization.log's otherwise (also when validation.log
    cannot be read)."""
    customization = summary(build, CUSTOMIZATION)
    if not has_validators(build):
        return customization
    validating = (build.sub_state or "").lower() == "validating"
    if not validating and customization.failed_step is not None:
        return customization
    validation = summary(build, VALIDATION)
    if validation.available and (validation.failed_step is not None or (validating and validation.excerpt)):
        return validation
    return customization


def failed_step_data(build: Build) -> dict | None:
    """The step `failure(build)` names, as the JSON a kept copy stores in `failed_step`; None
    when no log names one. A kept copy is read from the database; otherwise the live log is read
    once and its summary cached (`summary`), so pages that refresh read it from the cache."""
    found = failure(build)
    return _section_dict(found.failed_step) if found.failed_step is not None else None


# What one call of sections() reads at most of a live log: a refresh stays well under a second,
# and a big log's steps catch up over a few refreshes (shared by everyone watching).
STEP_BYTES = 1024 * 1024
_STEP_SUB_STATES = {"customizing", "optimizing", "validating", "distributing"}


def sections(build: Build) -> tuple[packerlog.Section, ...]:
    """The steps so far, for the build page's timeline: customization.log's customizers, then
    (with validators, from Validating on) validation.log's validators. A finished build's come
    from summary(); a running build's are read on from where the last call stopped (the
    reader's state is cached with its raw offset), so a refresh costs one ranged read of the
    new bytes per log, never a read of the whole log. () when there is no log (yet) or it
    cannot be read."""
    found = _log_sections(build, CUSTOMIZATION)
    if has_validators(build) and not _no_validation_reason(build):
        found += _log_sections(build, VALIDATION)
    return found


def _log_sections(build: Build, log: str) -> tuple[packerlog.Section, ...]:
    if build.is_terminal or kept(build, log) is not None:
        found = summary(build, log)
        return found.sections if found.available else ()
    if not build.run_started or (build.sub_state or "").lower() not in _STEP_SUB_STATES:
        return ()
    try:
        where = location(build, log)
        if where is None or not where.blob:
            return ()
        state = _steps_state(build, where)
        if state is not None and cache.get(_steps_key(build, where) + ":fresh"):
            return tuple(state[2].sections)  # read less than a second ago (this page, or another viewer)
        offset, redactor, reader = state or (0, LogRedactor(), packerlog.Reader(build.template, kind=_KINDS[log]))
        chunk = azure.read_log(where, offset, STEP_BYTES)
        offset += len(chunk.data)
        # Lines are redacted before the reader keeps any (its excerpt goes into the cache).
        for text in redactor.feed(chunk.data).decode("utf-8", errors="replace").splitlines():
            reader.feed(text)
    except azure.AzureError:
        return ()  # validation.log not written yet (BlobNotFound), or a read that failed: next refresh
    cache.set(_steps_key(build, where), (offset, redactor, reader), timeout=24 * 3600)
    cache.set(_steps_key(build, where) + ":fresh", True, timeout=1)
    return tuple(reader.sections)


def _steps_key(build: Build, where: azure.LogLocation) -> str:
    return f"buildlog:steps:{build.uuid}:{where.blob}"


def _steps_state(build: Build, where: azure.LogLocation) -> tuple[int, LogRedactor, packerlog.Reader] | None:
    """(raw offset read to, the redactor holding any unfinished line, the reader) of sections()."""
    return cache.get(_steps_key(build, where))


# --- Keeping a copy -------------------------------------------------------------------------------


def keep(build: Build) -> BuildLog | None:
    """Copy each of the build's live logs (customization.log, and validation.log when the
    template has validators), redacted and compressed, into Goldsmith's storage. Once per log:
    a finished copy is never redone; an unfinished one, left by a worker that died, is redone
    from the start. Returns customization.log's copy (None when there is no log to keep).
    Raises azure.AzureError; a retry redoes only the logs not kept yet."""
    kept_customization = None
    for log in log_names(build):
        copy = _keep(build, log)
        if log == CUSTOMIZATION:
            kept_customization = copy
    return kept_customization


def _blob_name(build: Build, log: str) -> str:
    return f"{build.uuid}.log.gz" if log == CUSTOMIZATION else f"{build.uuid}.{log}.log.gz"


def _keep(build: Build, log: str) -> BuildLog | None:
    existing = BuildLog.objects.filter(build=build, name=log).first()
    if existing is not None and existing.kept_at is not None:
        return existing
    found = location(build, log)
    if found is None or not found.blob:
        return None
    pieces = _LiveSource(found).raw()
    try:
        first = next(pieces, b"")
    except azure.AzureError as exc:
        if log == VALIDATION and exc.code == "BlobNotFound":
            return None  # the run ended before its validators ran: there is nothing to keep
        raise
    storage = BuildLog.Storage.CONTAINER if settings.BUILD_LOG_CONTAINER_URL else BuildLog.Storage.DATABASE
    if existing is None:
        existing = BuildLog.objects.create(build=build, name=log, storage=storage,
                                           blob_name=_blob_name(build, log), source_url=found.url)
    else:
        BuildLogChunk.objects.filter(log=existing).delete()
        existing.storage = storage
    copy = _Copy(existing)
    redactor = LogRedactor()
    copy.add(redactor.feed(first))
    for data in pieces:
        copy.add(redactor.feed(data))
    copy.add(redactor.finish())
    copy.finish()
    return existing


class _Copy:
    """Redacted text in, gzip members out (stored as they fill), sections parsed on the way."""

    def __init__(self, kept_log: BuildLog):
        self.log = kept_log
        self.reader = packerlog.Reader(kept_log.build.template, kind=_KINDS[kept_log.name])
        self.digest = hashlib.sha256()
        self.pending = bytearray()
        self.index: list[list[int]] = []
        self.blocks: list[str] = []
        self.text_offset = self.gz_offset = 0
        self.line = 1
        self.last = b""

    def add(self, data: bytes) -> None:
        if not data:
            return
        self.digest.update(data)
        self.last = data[-1:]
        for text in data.decode("utf-8", errors="replace").splitlines():
            self.reader.feed(text)
        self.pending += data
        while len(self.pending) >= CHUNK_BYTES:
            cut = self.pending.rfind(b"\n", 0, CHUNK_BYTES) + 1 or CHUNK_BYTES
            self._member(bytes(self.pending[:cut]))
            del self.pending[:cut]

    def _member(self, data: bytes) -> None:
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        seq = len(self.index)
        if self.log.storage == BuildLog.Storage.CONTAINER:
            block = base64.b64encode(f"{seq:08d}".encode()).decode()
            azure.kept_log_stage(self.log.blob_name, block, packed)
            self.blocks.append(block)
        else:
            BuildLogChunk.objects.create(log=self.log, seq=seq, data=packed)
        self.index.append([self.text_offset, self.gz_offset, len(packed), self.line])
        self.text_offset += len(data)
        self.gz_offset += len(packed)
        self.line += data.count(b"\n")

    def finish(self) -> None:
        if self.pending:
            self._member(bytes(self.pending))
            self.pending.clear()
        sha256 = self.digest.hexdigest()
        if self.log.storage == BuildLog.Storage.CONTAINER:
            azure.kept_log_commit(self.log.blob_name, self.blocks, metadata={"sha256": sha256,
                                                                              "build": str(self.log.build.uuid),
                                                                              "log": self.log.name})
        failed = self.reader.failed_step()
        lines = self.line - 1 + (1 if self.text_offset and self.last != b"\n" else 0)
        BuildLog.objects.filter(pk=self.log.pk).update(
            size=self.text_offset, compressed_size=self.gz_offset, lines=lines, sha256=sha256, index=self.index,
            sections=[_section_dict(section) for section in self.reader.sections],
            failed_step=_section_dict(failed) if failed else None, excerpt=self.reader.excerpt,
            storage=self.log.storage, kept_at=timezone.now())
        self.log.refresh_from_db()


def kept_gzip(kept_log: BuildLog) -> Iterator[bytes]:
    """The kept copy as one gzip file (its members in order), for export."""
    source = _KeptSource(kept_log)
    for seq in range(len(kept_log.index)):
        _text, gz_offset, gz_length, _line = kept_log.index[seq]
        if kept_log.storage == BuildLog.Storage.CONTAINER:
            yield azure.kept_log_read(kept_log.blob_name, gz_offset, gz_length)
        else:
            yield bytes(BuildLogChunk.objects.values_list("data", flat=True).get(log=source.log, seq=seq))


def prune(now: dt.datetime | None = None) -> int:
    """Delete kept copies older than BUILD_LOG_RETENTION_DAYS (and unfinished ones a day old);
    returns how many. 0 days keeps them for ever."""
    days = settings.BUILD_LOG_RETENTION_DAYS
    if days <= 0:
        return 0
    now = now or timezone.now()
    old = list(BuildLog.objects.filter(kept_at__lt=now - dt.timedelta(days=days)))
    old += list(BuildLog.objects.filter(kept_at__isnull=True, started_at__lt=now - dt.timedelta(days=1)))
    for item in old:
        if item.storage == BuildLog.Storage.CONTAINER and item.kept_at is not None:
            azure.kept_log_delete(item.blob_name)
        with transaction.atomic():
            item.delete()
    return len(old)
