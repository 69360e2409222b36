"""Placeholder: the emulator fixtures are being written (see the emulator helpers)."""
