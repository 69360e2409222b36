"""Docs consistency: emulator/README.md names every route's operation, so the route index (and
the fault rules that use those names) cannot drift from the router."""

from __future__ import annotations

from emulator.app import build_app
from tests.support.emulator import REPO_ROOT


def test_every_route_is_in_the_readme():
    readme = (REPO_ROOT / "emulator" / "README.md").read_text()
    operations = {route.operation for route in build_app().router.routes}

    missing = sorted(operation for operation in operations if operation not in readme)

    assert missing == []


def test_every_control_path_is_in_the_readme():
    readme = (REPO_ROOT / "emulator" / "README.md").read_text()
    paths = {route.pattern.pattern.strip("^$").split("/(?P")[0] for route in build_app().router.routes
             if route.pattern.pattern.startswith("^/_emulator")}

    assert sorted(path for path in paths if path not in readme) == []
