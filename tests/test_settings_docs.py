"""Docs consistency: every environment variable Goldsmith reads is documented, and only those.

Variables are found by the call shape of the portal/env.py helpers (`env_str("NAME", ...)`,
`env_bool(`, `env_int(`, `env_list(`, `was_set(`), read from the source with ast so that a
call split over several lines still counts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
HELPERS = {"env_str", "env_bool", "env_int", "env_list", "was_set"}
# Modules that read the environment through the helpers.
SOURCES = [BASE_DIR / "portal" / "settings.py", BASE_DIR / "portal" / "management" / "commands" / "runall.py"]
# Read by programs other than ours (gunicorn) or by the container entrypoint's shell.
READ_ELSEWHERE = {"WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "GOLDSMITH_MIGRATE"}
ENV_EXAMPLE = BASE_DIR / ".env.example"
OPERATIONS = BASE_DIR / "docs" / "operations.md"


def variables_read(source: str) -> set[str]:
    """Names passed as the first argument to the env helpers; raises on a name that isn't literal."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in HELPERS:
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                raise AssertionError(f"line {node.lineno}: {node.func.id}() needs a literal name to be documented")
            names.add(first.value)
    return names


def all_variables_read() -> set[str]:
    return set().union(*(variables_read(path.read_text()) for path in SOURCES))


# Entries look like `NAME=value`, commented out (`# NAME=value`) when the default is fine.
ENTRY = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def documented_in_env_example(text: str) -> set[str]:
    return set(ENTRY.findall(text))


def documented_in_operations(text: str, name: str) -> bool:
    return re.search(rf"`{re.escape(name)}`", text) is not None


def test_it_finds_the_variables_settings_reads():
    found = all_variables_read()
    # A few that must be there; if these vanish the parser, not the docs, is broken.
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AZURE_TEMPLATE_IDENTITY", "GOLDSMITH_WEB_PORT"} <= found


@pytest.mark.parametrize("name", sorted(all_variables_read()))
def test_every_variable_is_in_env_example(name):
    assert name in documented_in_env_example(ENV_EXAMPLE.read_text()), f"{name} is missing from .env.example"


@pytest.mark.parametrize("name", sorted(all_variables_read()))
def test_every_variable_is_in_operations_doc(name):
    assert documented_in_operations(OPERATIONS.read_text(), name), f"{name} is missing from docs/operations.md"


def test_env_example_documents_nothing_that_is_not_read():
    stale = documented_in_env_example(ENV_EXAMPLE.read_text()) - all_variables_read() - READ_ELSEWHERE
    assert not stale, f".env.example documents variables nothing reads: {sorted(stale)}"


def test_each_env_example_entry_has_an_explanation():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if ENTRY.match(line):
            above = lines[index - 1] if index else ""
            assert above.startswith("# ") and not ENTRY.match(above), (
                f".env.example line {index + 1} ({line}) needs a one-sentence comment above it"
            )


def test_a_missing_variable_is_caught():
    # The check itself must bite: a variable absent from both documents is reported.
    source = 'X = env_str("GOLDSMITH_NOT_DOCUMENTED", "")\nY = env_int(\n    "ALSO_NOT_DOCUMENTED", 1)\n'
    names = variables_read(source)
    assert names == {"GOLDSMITH_NOT_DOCUMENTED", "ALSO_NOT_DOCUMENTED"}
    assert not names & documented_in_env_example(ENV_EXAMPLE.read_text())
    assert not any(documented_in_operations(OPERATIONS.read_text(), name) for name in names)


def test_a_computed_name_is_refused():
    with pytest.raises(AssertionError, match="literal name"):
        variables_read('prefix = "AZURE"\nX = env_str(f"{prefix}_THING")\n')
