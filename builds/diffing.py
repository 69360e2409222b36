"""Line diffs of two template bodies, for the gold image diff page. Pure.

Both bodies are pretty-printed with sorted keys, so a diff shows what changed and never how
the JSON happened to be ordered. Side by side rows pair changed lines and mark the changed
characters inside them; unified rows are the familiar -/+ listing with context.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool


@dataclass(frozen=True)
class Side:
    number: int | None  # line number, None for a blank filler cell
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Row:
    kind: str  # "same", "changed", "added", "removed", "skip"
    left: Side
    right: Side


@dataclass(frozen=True)
class UnifiedLine:
    kind: str  # "same", "added", "removed", "hunk"
    old: int | None
    new: int | None
    text: str


@dataclass(frozen=True)
class Diff:
    rows: tuple[Row, ...]
    unified: tuple[UnifiedLine, ...]
    added: int
    removed: int

    @property
    def identical(self) -> bool:
        return self.added == 0 and self.removed == 0


def pretty(body: dict) -> list[str]:
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _plain(number: int | None, text: str) -> Side:
    return Side(number, (Segment(text, False),) if text else ())


def _inline(old: str, new: str) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """Character-level marks inside a changed pair of lines."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    left: list[Segment] = []
    right: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            left.append(Segment(old[i1:i2], False))
            right.append(Segment(new[j1:j2], False))
            continue
        if i2 > i1:
            left.append(Segment(old[i1:i2], True))
        if j2 > j1:
            right.append(Segment(new[j1:j2], True))
    return tuple(left), tuple(right)


def diff(old_body: dict, new_body: dict, *, context: int = 3) -> Diff:
    """Rows for both views; unchanged runs longer than 2*context lines are folded into a skip row."""
    old, new = pretty(old_body), pretty(new_body)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    rows: list[Row] = []
    added = removed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            length = i2 - i1
            if length > 2 * context + 1:
                keep_head = context if rows else 0
                keep_tail = context if (i2 < len(old) or j2 < len(new)) else 0
                for k in range(keep_head):
                    rows.append(Row("same", _plain(i1 + k + 1, old[i1 + k]), _plain(j1 + k + 1, new[j1 + k])))
                skipped = length - keep_head - keep_tail
                rows.append(Row("skip", Side(None, (Segment(f"{skipped} unchanged lines", False),)), Side(None, ())))
                for k in range(length - keep_tail, length):
                    rows.append(Row("same", _plain(i1 + k + 1, old[i1 + k]), _plain(j1 + k + 1, new[j1 + k])))
            else:
                for k in range(length):
                    rows.append(Row("same", _plain(i1 + k + 1, old[i1 + k]), _plain(j1 + k + 1, new[j1 + k])))
            continue
        removed += i2 - i1
        added += j2 - j1
        pairs = max(i2 - i1, j2 - j1)
        for k in range(pairs):
            has_old, has_new = i1 + k < i2, j1 + k < j2
            if has_old and has_new:
                left, right = _inline(old[i1 + k], new[j1 + k])
                rows.append(Row("changed", Side(i1 + k + 1, left), Side(j1 + k + 1, right)))
            elif has_old:
                rows.append(Row("removed", _plain(i1 + k + 1, old[i1 + k]), Side(None, ())))
            else:
                rows.append(Row("added", Side(None, ()), _plain(j1 + k + 1, new[j1 + k])))
    return Diff(tuple(rows), tuple(_unified(old, new, context)), added, removed)


def _unified(old: list[str], new: list[str], context: int) -> list[UnifiedLine]:
    lines: list[UnifiedLine] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        header = f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@"
        lines.append(UnifiedLine("hunk", None, None, header))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [UnifiedLine("same", i1 + k + 1, j1 + k + 1, old[i1 + k]) for k in range(i2 - i1)]
                continue
            lines += [UnifiedLine("removed", i + 1, None, old[i]) for i in range(i1, i2)]
            lines += [UnifiedLine("added", None, j + 1, new[j]) for j in range(j1, j2)]
    return lines
