"""The emulator application: the router plus the pipeline every request goes through.

Service modules register their routes in `build_app`; middlewares wrap every handler in
order (outermost first): the request log, fault injection, bearer-token authentication.
A middleware is `(request, route, call_next) -> Response`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from emulator.clock import Clock
from emulator.core import ArmError, Request, Response, Route, Router
from emulator.store import Store

Middleware = Callable[[Request, Route, Callable[[Request], Response]], Response]


@dataclass
class Config:
    strict_auth: bool = False
    time_scale: float = 1.0
    seed_path: str | None = None
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

    def reset(self) -> None:
        """Forget everything and start again from the seed (the control API's reset)."""
        from emulator import seed

        # One transaction: a reset between two tests is then a single commit, not one per record.
        with self.store.transaction():
            self.store.clear()
            seed.apply(self)
        for hook in self.reset_hooks:
            hook()

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


def build_app(*, store: Store | None = None, clock: Clock | None = None, config: Config | None = None) -> App:
    """Assemble the emulator with every service registered; seed a new (empty) store."""
    from emulator import compute, control, entra, imagebuilder, resources, seed

    config = config or Config()
    app = App(store=store or Store(), clock=clock or Clock(config.time_scale), config=config)
    # Order matters only for middlewares: control registers the request log and faults,
    # entra the authentication, so the log sees every request, even refused ones.
    for module in (control, entra, resources, compute, imagebuilder):
        module.register(app)
    if seed.is_empty(app):
        seed.apply(app)
    return app
