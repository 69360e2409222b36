"""Request metadata propagation: the request id, client IP and user agent that logs and audit events carry."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""


_EMPTY = RequestMeta()
_meta: contextvars.ContextVar[RequestMeta | None] = contextvars.ContextVar("request_meta", default=None)
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def current_request_meta() -> RequestMeta:
    """Metadata of the web request being served; empty outside requests (workers, commands)."""
    return _meta.get() or _EMPTY


def current_request_id() -> str:
    return current_request_meta().request_id


class RequestIdMiddleware:
    """Takes X-Request-ID from a trusted proxy when well-formed, else makes one; echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        meta = RequestMeta(request_id=request_id, ip=request.META.get("REMOTE_ADDR") or None,
                           user_agent=request.headers.get("User-Agent", ""))
        token = _meta.set(meta)
        try:
            response = self.get_response(request)
        finally:
            _meta.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_meta().request_id or "-"
        return True
