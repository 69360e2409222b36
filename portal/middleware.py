"""Request metadata propagation: the request id, client IP and user agent that logs and audit events carry."""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import logging
import re
import uuid
from dataclasses import dataclass

from django.conf import settings


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


@functools.lru_cache(maxsize=8)
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def from_trusted_proxy(address: str | None) -> bool:
    """True when the direct peer (REMOTE_ADDR) is one of settings.TRUSTED_PROXIES."""
    if not address or not settings.TRUSTED_PROXIES:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


class RequestIdMiddleware:
    """Takes X-Request-ID from a trusted proxy (settings.TRUSTED_PROXIES) when well-formed, else
    makes one; echoes it back. A client's own X-Request-ID is ignored: the id ends up in the
    audit trail and the logs, and a chosen one could pass one request off as another."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        address = request.META.get("REMOTE_ADDR") or None
        incoming = request.headers.get("X-Request-ID", "") if from_trusted_proxy(address) else ""
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        meta = RequestMeta(request_id=request_id, ip=address,
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
