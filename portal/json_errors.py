"""The API's error shape at the floor: what middleware and the access funnel need to answer
401 under /api/ without importing the API (api/errors.py builds on this and owns the rest).

    {"error": {"code": "<stable code>", "message": "<for people>", "problems": [...]}}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import JsonResponse

NOT_AUTHENTICATED = "not_authenticated"
BEARER_CHALLENGE = 'Bearer realm="goldsmith"'


def body(code: str, message: str, problems: Iterable[Any] | None = None) -> dict[str, Any]:
    """The error document; `problems` are objects with `as_dict()` (builds.schema.Problem)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if problems is not None:
        error["problems"] = [p.as_dict() for p in problems]
    return {"error": error}


def json_error(status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    """The same shape for plain Django views and middleware under /api/ (unknown paths, say)."""
    # Written as DRF's JSONRenderer writes (compact, UTF-8), so the bytes match the views' errors.
    response = JsonResponse(body(code, message), status=status_code,
                            json_dumps_params={"separators": (",", ":"), "ensure_ascii": False})
    for name, value in (headers or {}).items():
        response[name] = value
    return response
