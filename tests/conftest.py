"""Shared fixtures: personas, the emulator, Redis."""

pytest_plugins = ["tests.support.emulator"]
