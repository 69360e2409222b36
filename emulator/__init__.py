"""Goldsmith's Azure emulator: Image Builder, the Compute image catalog and Entra ID over HTTPS.

A standalone package and process (no Django): `python -m emulator --help`.
"""
