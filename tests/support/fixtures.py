"""The shared public fixtures (../shared/fixtures): real Image Builder templates and REST examples.

Tests that need them skip when the folder is absent, so `make test` passes on any machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

FIXTURES = Path(os.environ.get("GOLDSMITH_FIXTURES", Path(__file__).resolve().parents[3] / "shared" / "fixtures"))
TEMPLATES = FIXTURES / "aib-templates"
REST_EXAMPLES = FIXTURES / "aib-rest-examples"

needs_fixtures = pytest.mark.skipif(not TEMPLATES.is_dir(), reason=f"shared fixtures not found at {FIXTURES}")


def template_files() -> list[Path]:
    return sorted(TEMPLATES.glob("*.json")) if TEMPLATES.is_dir() else []


def rest_example(name: str) -> dict:
    return json.loads((REST_EXAMPLES / f"{name}.json").read_text())


def rest_put_bodies() -> list[tuple[str, dict]]:
    """(name, body) of every CreateOrUpdate example for image templates."""
    if not REST_EXAMPLES.is_dir():
        return []
    found = []
    for path in sorted(REST_EXAMPLES.glob("*.json")):
        example = json.loads(path.read_text())
        if example.get("operationId") == "VirtualMachineImageTemplates_CreateOrUpdate":
            found.append((path.stem, example["parameters"]["parameters"]))
    return found
