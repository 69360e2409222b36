"""The App every service registers on: the router plus the pipeline every request goes through.

Service packages register their routes, backends (`app.services[name]`) and middlewares in
emulator.app.build_app; middlewares wrap every handler in order (outermost first): the request
log, ARM headers, fault injection, bearer-token authentication, then each service's own.
A middleware is `(request, route, call_next) -> Response`. This module sits below the services:
they import `App` from here, and only emulator.app imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message

from emulator.core.clock import Clock
from emulator.core.http import ArmError, Request, Response, Route, Router
from emulator.core.store import Store

Middleware = Callable[[Request, Route, Callable[[Request], Response]], Response]


@dataclass
class Config:
    strict_auth: bool = False
    time_scale: float = 1.0
    seed_path: str | None = None
    # Where browsers reach Entra ID's sign-in and sign-out pages when they are also served over
    # plain HTTP on loopback (`--browser-http-port`); empty: on the HTTPS listener, like the rest.
    entra_browser_url: str = ""
    extra: dict = field(default_factory=dict)


class App:
    def __init__(self, *, store: Store, clock: Clock, config: Config):
        self.store = store
        self.clock = clock
        self.config = config
        self.router = Router()
        self.middlewares: list[Middleware] = []
        self.services: dict[str, object] = {}  # name -> backend object, for cross-service calls
        # Called after the store is cleared and reseeded, for services that keep derived state
        # in memory (indexes, fault rules, the request log).
        self.reset_hooks: list[Callable[[], None]] = []
        # Called after the control API changed the clock, for services that copy clock-driven
        # state elsewhere (the staging storage writes build logs into Azurite).
        self.clock_hooks: list[Callable[[], None]] = []
        # Fills an empty store (emulator.seed.apply, set by build_app, which sits above the services).
        self.seeder: Callable[[App], None] = lambda app: None

    def reset(self) -> None:
        """Forget everything and start again from the seed (the control API's reset)."""
        # One transaction: a reset between two tests is then a single commit, not one per record.
        with self.store.transaction():
            self.store.clear()
            self.seeder(self)
        for hook in self.reset_hooks:
            hook()

    def dispatch(self, method: str, path: str, *, on_behalf_of: Request, body: bytes = b"") -> Response:
        """Answer an internal ARM call as if the caller of `on_behalf_of` had made it: same bearer
        token, same base URL, the whole pipeline (authentication, denials, faults, request log).
        ARM's deployments use it to PUT each template resource through the serving service's own
        route, so every service validates a deployed resource exactly as it validates a PUT."""
        headers = Message()
        for name in ("Authorization", "x-ms-correlation-request-id"):
            if on_behalf_of.headers.get(name):
                headers[name] = on_behalf_of.headers[name]
        if body:
            headers["Content-Type"] = "application/json"
        return self.handle(Request.build(method, path, headers, body, on_behalf_of.base_url))

    def handle(self, request: Request) -> Response:
        try:
            route, params = self.router.match(request.method, request.path)
        except ArmError as error:
            # Unmatched requests still pass through the middlewares, so the request log records
            # them; the pseudo-route needs no authentication and answers the router's error.
            route, params = _unmatched_route(error), {}
        request.params = params
        request.operation = route.operation

        def innermost(req: Request) -> Response:
            try:
                return route.handler(req)
            except ArmError as error:
                return error.to_response()

        call = innermost
        for middleware in reversed(self.middlewares):
            call = _bind(middleware, route, call)
        try:
            return call(request)
        except ArmError as error:
            return error.to_response()


def _unmatched_route(error: ArmError) -> Route:
    import re

    def answer(request: Request) -> Response:
        raise error

    return Route("*", re.compile(".*"), answer, "Unmatched", "none")


def _bind(middleware: Middleware, route: Route, call_next: Callable[[Request], Response]) -> Callable[[Request], Response]:
    return lambda request: middleware(request, route, call_next)
