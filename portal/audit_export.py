"""Streaming exports of the audit trail: CSV and JSON Lines, in constant memory.

Every text cell goes through the one redaction function (portal.redact); CSV cells that a
spreadsheet would run as a formula (starting with =, +, -, @, tab or carriage return) get a
leading apostrophe. Each row carries the fields the hash covers plus prev_hash and hash, so
an auditor can check an export offline against the chain (docs/audit.md says how, and which
cells may differ).

Two ways to read the rows, both streaming with memory that does not grow with the export:

- PostgreSQL, CSV: one `COPY (SELECT ...) TO STDOUT WITH (FORMAT csv)` of the filtered query.
  Events stored under the current redaction rules were redacted by them when recorded; for
  older ones PostgreSQL flags, while it writes, each row whose free text matches the pattern
  every secret needs (portal.redact.SECRET_HINT) or is not ASCII. Here, one scan per chunk
  finds cells starting with a formula character. Only flagged rows and rows with such a cell
  are parsed, redacted and neutralised; the rest pass through as PostgreSQL wrote them. This
  is what lets a million rows leave at better than half of COPY's own speed.
- Otherwise (SQLite; JSON Lines everywhere): keyset batches of BATCH rows in id order,
  never OFFSET and never a server-side cursor that a connection pooler could break.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import itertools
import json
import re
from collections.abc import Iterator

from django.db import connections
from django.db.models import BooleanField, Expression, F, Func, QuerySet, TextField, Value
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from django.utils import timezone

from portal import audit
from portal.models import AuditEvent
from portal.redact import RULES_VERSION, SECRET_HINT, case_classes, might_contain_secret, redact, redact_text

BATCH = 5000
COLUMNS = ("id", "at", "actor_name", "actor_id", "actor_ip", "user_agent", "action", "object_type", "object_id",
           "object_label", "department_id", "department", "outcome", "request_id", "changes", "prev_hash", "hash")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TEXT_COLUMNS = frozenset({"actor_name", "user_agent", "object_label"})  # where a secret could hide
FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl")}
LINE_END = "\r\n"  # RFC 4180; it also makes the csv module quote cells holding a lone CR


def neutralise(cell: str) -> str:
    """A CSV cell that spreadsheets will show as text, never evaluate."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _changes_text(text: str | None) -> str:
    """The changes document as JSON text, redacted; parsed only when it might hold a secret."""
    if not text:
        return "{}"
    if not might_contain_secret(text):
        return text
    return json.dumps(redact(json.loads(text)), sort_keys=True, ensure_ascii=False)


def _header() -> bytes:
    return (",".join(COLUMNS) + LINE_END).encode()


# --- Keyset batches (any database) ----------------------------------------------------------------


def rows(queryset: QuerySet[AuditEvent], *, through_id: int, batch: int = BATCH) -> Iterator[tuple]:
    """Matching events up to through_id, oldest first, as tuples in COLUMNS order (redacted)."""
    base = (queryset.filter(id__lte=through_id).order_by("id")
            .annotate(changes_text=Cast("changes", TextField()))
            .values_list("id", "at", "actor_name", "actor_id", "actor_ip", "user_agent", "action", "object_type",
                         "object_id", "object_label", "department_id", "department__slug", "outcome", "request_id",
                         "changes_text", "prev_hash", "hash"))
    last = 0
    while True:
        page = list(base.filter(id__gt=last)[:batch])
        if not page:
            return
        for row in page:
            (event_id, at, actor_name, actor_id, actor_ip, user_agent, action, object_type, object_id, label,
             department_id, department, outcome, request_id, changes, prev_hash, hash_) = row
            yield (event_id, at.astimezone(dt.UTC).isoformat(timespec="microseconds"), redact_text(actor_name),
                   actor_id, actor_ip or "", redact_text(user_agent), action, object_type, object_id,
                   redact_text(label), department_id, department or "", outcome, request_id,
                   _changes_text(changes), prev_hash, hash_)
        last = page[-1][0]


def csv_chunks_keyset(queryset: QuerySet[AuditEvent], *, through_id: int, batch: int = BATCH) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=LINE_END)
    yield _header()
    for count, row in enumerate(rows(queryset, through_id=through_id, batch=batch), start=1):
        writer.writerow([neutralise(cell) if isinstance(cell, str) else ("" if cell is None else cell)
                         for cell in row])
        if count % batch == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def jsonl_chunks(queryset: QuerySet[AuditEvent], *, through_id: int, batch: int = BATCH) -> Iterator[bytes]:
    parts: list[str] = []
    for row in rows(queryset, through_id=through_id, batch=batch):
        document = dict(zip(COLUMNS, row, strict=True))
        changes = document.pop("changes")
        # The changes text is JSON already: splice it in rather than parse and print it again.
        parts.append(json.dumps(document, ensure_ascii=False)[:-1] + ', "changes": ' + changes + "}\n")
        if len(parts) == batch:
            yield "".join(parts).encode()
            parts.clear()
    yield "".join(parts).encode()


# --- COPY (PostgreSQL) ------------------------------------------------------------------------------


class _IsoUtc(Func):
    """A timestamp as Python's isoformat(timespec="microseconds") writes it in UTC."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    output_field = TextField()


class _Host(Func):
    template = "host(%(expressions)s)"
    output_field = TextField()


class _MaySecret(Expression):
    """True when the row must be screened again: stored under older redaction rules, and its
    free text matches portal.redact.SECRET_HINT (ASCII letters in either case) or holds
    anything but ASCII. Rows stored under the current rules were redacted by them already
    (redact() is idempotent, which tests/portal/test_redact.py checks), so PostgreSQL skips
    the pattern for them after one integer comparison.
    """

    output_field = BooleanField()

    def __init__(self, *, screen_all: bool = False):
        super().__init__()
        self.version = Value(0) if screen_all else F("redaction")
        self.text = Func(F("actor_name"), F("user_agent"), F("object_label"), Cast("changes", TextField()),
                         template="concat_ws(chr(1), %(expressions)s)", output_field=TextField())

    def get_source_expressions(self):
        return [self.version, self.text]

    def set_source_expressions(self, expressions):
        self.version, self.text = expressions

    def as_sql(self, compiler, connection):
        version, version_params = compiler.compile(self.version)
        text, text_params = compiler.compile(self.text)
        sql = (f"({version} < {RULES_VERSION} AND ({text} COLLATE \"C\" ~ '{case_classes(SECRET_HINT)}' "
               f"OR octet_length({text}) <> char_length({text})))")
        return sql, (*version_params, *text_params, *text_params, *text_params)


assert "'" not in SECRET_HINT and "%" not in SECRET_HINT  # written into the SQL as it is


def copy_sql(queryset: QuerySet[AuditEvent], *, through_id: int, screen_all: bool = False) -> tuple[str, tuple]:
    """The COPY statement (and its parameters) writing, per row, the screening flag ("t"/"f")
    and then the export's columns, as CSV. Formula cells are neutralised afterwards, here.
    screen_all treats every row as stored under older rules (the benchmark's worst case)."""
    flag = _MaySecret(screen_all=screen_all)
    selected = (queryset.filter(id__lte=through_id).order_by("id")
                .values_list(flag, "id", _IsoUtc("at"), "actor_name", "actor_id", _Host("actor_ip"), "user_agent",
                             "action", "object_type", "object_id", "object_label", "department_id",
                             "department__slug", "outcome", "request_id", Cast("changes", TextField()), "prev_hash",
                             "hash"))
    sql, params = selected.query.sql_with_params()
    return f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params


def _clean_csv_row(row: bytes) -> bytes:
    """One CSV row with secrets redacted and formula cells neutralised (the rare, slow path)."""
    cells = next(csv.reader([row.decode()]))
    fixed = []
    for name, cell in zip(COLUMNS, cells, strict=True):
        if name in _TEXT_COLUMNS:
            cell = redact_text(cell)
        elif name == "changes":
            cell = _changes_text(cell)
        fixed.append(neutralise(cell))
    if fixed == cells:
        return row
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerow(fixed)
    return buffer.getvalue().encode()


# A cell starting with a formula character, quoted or not (the first column, id, never does).
# False alarms (",-" inside a quoted JSON cell) only send a row through _clean_csv_row.
_FORMULA_CELL = re.compile(rb',[=+\-@\t\r]|,"[=+\-@\t\r]')


def csv_chunks_copy(queryset: QuerySet[AuditEvent], *, through_id: int, rows_per_chunk: int = 2000,
                    screen_all: bool = False) -> Iterator[bytes]:
    statement, params = copy_sql(queryset, through_id=through_id, screen_all=screen_all)
    yield _header()
    connection = connections[queryset.db]
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        pending: list[bytes] = []
        for data in copy:
            # "t,<row>\n" or "f,<row>\n": the flag goes, and LF becomes CRLF like the header.
            row = bytes(data)
            line = row[2:-1] + b"\r\n"
            pending.append(_clean_csv_row(line) if row[0] == 116 else line)
            if len(pending) == rows_per_chunk:
                yield _neutralised(pending)
                pending = []
        yield _neutralised(pending)


def _neutralised(pending: list[bytes]) -> bytes:
    chunk = b"".join(pending)
    found = _FORMULA_CELL.search(chunk)
    if found is None:
        return chunk
    ends = list(itertools.accumulate(map(len, pending)))
    while found is not None:
        index = bisect.bisect_right(ends, found.start())
        pending[index] = _clean_csv_row(pending[index])
        found = _FORMULA_CELL.search(chunk, ends[index])
    return b"".join(pending)


def csv_chunks(queryset: QuerySet[AuditEvent], *, through_id: int, batch: int = BATCH) -> Iterator[bytes]:
    if queryset.query.is_empty():
        # Filters that can match nothing (an empty `in`) do not even compile to SQL: just the header.
        return iter([_header()])
    if connections[queryset.db].vendor == "postgresql":
        return csv_chunks_copy(queryset, through_id=through_id)
    return csv_chunks_keyset(queryset, through_id=through_id, batch=batch)


def record_and_stream(*, actor, queryset: QuerySet[AuditEvent], export_format: str, filters: dict[str, str],
                      channel: str = "") -> StreamingHttpResponse:
    """Record one `export.download` event, then stream `queryset` in `export_format` (a key
    of FORMATS) as an attachment: the one way the export page and the API export.

    The event is recorded (and committed) before the first byte, so an export that fails
    half-way was still attempted; it bounds the export at the chain's head at that moment
    (`through_id`), which makes the export reproducible and keeps its own event out of it.
    `filters` are the active filters as the auditor gave them; `channel` ("api") is named in
    the event when the export did not come from the page.
    """
    through_id, _ = audit.head()
    changes = {"format": [None, export_format], "filters": [None, filters], "through_id": [None, through_id]}
    if channel:
        changes["channel"] = [None, channel]
    via = f", {channel.upper()}" if channel else ""
    audit.record("export.download", actor=actor, object_type="auditevent", object_id=str(through_id),
                 label=f"audit history export ({export_format}{via}) through event #{through_id}", changes=changes)
    content_type, extension = FORMATS[export_format]
    stamp = timezone.now().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(chunks(export_format, queryset, through_id=through_id), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="goldsmith-audit-{stamp}.{extension}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def chunks(export_format: str, queryset: QuerySet[AuditEvent], *, through_id: int) -> Iterator[bytes]:
    if export_format == "csv":
        return csv_chunks(queryset, through_id=through_id)
    if export_format == "jsonl":
        return jsonl_chunks(queryset, through_id=through_id)
    raise ValueError(f"unknown export format {export_format!r}")
