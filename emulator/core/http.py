"""The emulator's HTTP vocabulary: requests, responses, ARM errors and the router.

Every service package (imagebuilder, compute, entra, resources, control) registers its routes
on a Router and handles `Request` -> `Response`; core.server turns sockets into Requests and
core.pipeline runs the shared middlewares (faults, authentication, request log) around the
handlers. Nothing here imports Django: the emulator is its own package and process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs


class ArmError(Exception):
    """An error answered in ARM's envelope: {"error": {"code", "message", "target", "details"}}."""

    def __init__(self, status: int, code: str, message: str, *, target: str | None = None,
                 details: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details or []
        self.headers = headers or {}

    def to_response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        error["details"] = self.details
        return Response(self.status, {"error": error}, headers=dict(self.headers))


@dataclass
class Request:
    method: str
    path: str  # percent-decoded path, no query string
    query: dict[str, list[str]]
    headers: Message  # case-insensitive look-ups: headers.get("Authorization")
    body: bytes
    base_url: str  # scheme://host:port the client used, for building absolute URLs
    params: dict[str, str] = field(default_factory=dict)  # named groups of the matched route
    claims: dict[str, Any] | None = None  # verified bearer token claims, set by the pipeline
    operation: str = ""  # the matched route's operation name, set by the router

    @classmethod
    def build(cls, method: str, raw_path: str, headers: Message, body: bytes, base_url: str) -> Request:
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(raw_path)
        # ARM accepts empty path segments (`.../Microsoft.VirtualMachineImages//imageTemplates/x`,
        # which `az resource create --resource-type` produces): collapse them.
        path = re.sub(r"/{2,}", "/", unquote(parts.path))
        return cls(method=method.upper(), path=path, query=parse_qs(parts.query, keep_blank_values=True),
                   headers=headers, body=body, base_url=base_url)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter; ARM treats parameter names case-insensitively."""
        for key, values in self.query.items():
            if key.lower() == name.lower() and values:
                return values[0]
        return default

    def json(self) -> Any:
        """The body as JSON; malformed JSON is ARM's InvalidRequestContent."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArmError(400, "InvalidRequestContent",
                           f"The request content was invalid and could not be deserialized: '{exc}'.") from exc

    @property
    def client_id(self) -> str | None:
        if not self.claims:
            return None
        return self.claims.get("appid") or self.claims.get("azp") or self.claims.get("oid")


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON; str -> text; bytes as they are; None -> no body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None

    def encode(self) -> tuple[bytes, str | None]:
        if self.body is None:
            return b"", self.content_type
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(self.body, separators=(",", ":")).encode(), self.content_type or "application/json; charset=utf-8"


class Drop(Exception):
    """Raised by a handler or the fault layer to close the connection without answering."""


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    operation: str  # name used in the request log and by fault rules, e.g. VirtualMachineImageTemplates_Get
    auth: str  # "arm": bearer token for ARM required; "none": public (Entra endpoints, control API)


class Router:
    """Maps (method, path) to a route. ARM paths are case-insensitive, like Azure's."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, operation: str, *, auth: str = "arm") -> Callable[[Handler], Handler]:
        compiled = re.compile(f"^{pattern}$", re.IGNORECASE)

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method.upper(), compiled, handler, operation, auth))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """Return the route and its path parameters; ArmError 404/405 when nothing matches."""
        path_matched = False
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            path_matched = True
            if route.method == method.upper():
                return route, found.groupdict()
        if path_matched:
            raise ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")
        raise ArmError(404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'.")


# Path fragments shared by the service modules.
SUB = r"/subscriptions/(?P<subscription>[^/]+)"
RG = SUB + r"/resourceGroups/(?P<resource_group>[^/]+)"
