"""Placeholder: being written. Loads the seed catalog into a new store."""


def is_empty(app) -> bool:
    return True


def apply(app) -> None:
    """Load the seed file (app.config.seed_path or emulator/seed.json) into the store."""
