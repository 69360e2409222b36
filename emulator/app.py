"""Assembles the emulator: every service package registered on one App (emulator.core.pipeline).

This is the one module above the services; they import only emulator.core and each other's
backends, never this module, so there is no import cycle.
"""

from __future__ import annotations

from emulator import authorization, compute, control, entra, imagebuilder, msi, resources, seed, storage
from emulator.core.clock import Clock
from emulator.core.pipeline import App, Config, Middleware
from emulator.core.store import Store

__all__ = ["App", "Config", "Middleware", "build_app"]


def build_app(*, store: Store | None = None, clock: Clock | None = None, config: Config | None = None) -> App:
    """Assemble the emulator with every service registered; seed a new (empty) store."""
    config = config or Config()
    app = App(store=store or Store(), clock=clock or Clock(config.time_scale), config=config)
    # Order matters only for middlewares: control registers the request log and faults,
    # entra the authentication, so the log sees every request, even refused ones.
    for module in (control, entra, resources, authorization, msi, compute, storage, imagebuilder):
        module.register(app)
    app.seeder = seed.apply
    if seed.is_empty(app):
        seed.apply(app)
    return app
