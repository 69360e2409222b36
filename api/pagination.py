"""Cursor pages for every list: `?limit=` (1-100, default 25) and an opaque `?cursor=`.

A page answers {"results": [...], "next": "<URL of the next page>" or null}. Cursors are
keyset positions (the last row's sort keys), never offsets: a page costs the same number of
queries at row 10 and at row 10 million, and rows added meanwhile do not shift the pages a
pipeline is walking. They go forward only; start again without a cursor for the newest rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from rest_framework import serializers

from api.errors import ProblemsError, problem

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


class PageParams(serializers.Serializer):
    """The query parameters every list takes (documented once, validated once)."""

    cursor = serializers.CharField(required=False, max_length=500,
                                   help_text="The `next` link's cursor: leave it out for the first page.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT,
                                     help_text=f"Rows per page, 1 to {MAX_LIMIT}.")


def encode(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """The position a cursor holds, or None for the first page; 400 when it is not ours."""
    if not cursor:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict) or set(position) != set(keys) or \
            not all(isinstance(value, str | int) and not isinstance(value, bool) for value in position.values()):
        raise ProblemsError("The request is not valid.", [
            problem("request.cursor", "cursor", "This cursor was not made by this list: use the `next` link as given.")])
    return position


def next_url(request, position: dict[str, Any] | None) -> str | None:
    """The URL of the page after this one (same filters and limit), or None for the last page."""
    if position is None:
        return None
    query = request.query_params.copy()
    query["cursor"] = encode(position)
    return request.build_absolute_uri(request.path) + "?" + query.urlencode()


def page(rows: list, limit: int, position_of) -> tuple[list, dict[str, Any] | None]:
    """Split `limit + 1` fetched rows into the page and the next page's position (if any)."""
    if len(rows) > limit:
        return rows[:limit], position_of(rows[limit - 1])
    return rows, None
