"""Streaming exports of the audit trail: CSV and JSON Lines, in constant memory.

Rows are read in id order, a few thousand at a time by keyset (never OFFSET, never a
server-side cursor that a connection pooler could break), written to a chunk and yielded, so
memory stays flat however many events match. Every text cell goes through the one redaction
function (portal.redact); CSV cells that a spreadsheet would run as a formula (starting with
=, +, -, @, tab or carriage return) get a leading apostrophe.

Each row carries the fields the hash covers plus prev_hash and hash, so an auditor can check
an export offline against the chain (docs/audit.md says how, and which cells may differ).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator

from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from portal.models import AuditEvent
from portal.redact import might_contain_secret, redact, redact_text

BATCH = 5000
COLUMNS = ("id", "at", "actor_name", "actor_id", "actor_ip", "user_agent", "action", "object_type", "object_id",
           "object_label", "department_id", "department", "outcome", "request_id", "changes", "prev_hash", "hash")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl")}


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


def csv_chunks(queryset: QuerySet[AuditEvent], *, through_id: int, batch: int = BATCH) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
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


def chunks(export_format: str, queryset: QuerySet[AuditEvent], *, through_id: int) -> Iterator[bytes]:
    if export_format == "csv":
        return csv_chunks(queryset, through_id=through_id)
    if export_format == "jsonl":
        return jsonl_chunks(queryset, through_id=through_id)
    raise ValueError(f"unknown export format {export_format!r}")
