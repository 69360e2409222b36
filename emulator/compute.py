"""Placeholder: being written. See emulator/README.md."""


def register(app) -> None:
    """Register this service's routes, middlewares and backend (app.services["compute"])."""
