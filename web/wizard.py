"""The gold image version wizard and the step editors: steps, paths and list edits. Pure.

The wizard keeps its state on the draft GoldImageVersion (never the session): each step writes
its fields through services.gold_version_update and records itself in `wizard_step` (the
furthest step completed), so a draft can be left and picked up, and any completed step can be
revisited. Problems from builds/validation.py are routed to the step and form field their JSON
path names.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from builds import compose, schema
from builds.schema import Problem

STEPS: tuple[tuple[str, str], ...] = (
    ("source", "Source"),
    ("security", "Security"),
    ("customize", "Customize"),
    ("validate", "Validate"),
    ("distribute", "Distribute"),
    ("buildvm", "Build VM and identity"),
    ("review", "Review"),
)
STEP_NAMES = tuple(name for name, _ in STEPS)
# Which problems each step owns, by the start of their path.
STEP_PATHS: dict[str, tuple[str, ...]] = {
    "source": ("properties.source", "location"),
    "security": ("security_type", "hyper_v_generation"),
    "customize": ("properties.customize",),
    "validate": ("properties.validate",),
    "distribute": ("properties.distribute", "properties.additionalDataDisks"),
    "buildvm": ("properties.vmProfile", "identity", "properties.buildTimeoutInMinutes", "tags",
                "properties.stagingResourceGroup", "properties.managedResourceTags", "properties.errorHandling",
                "properties.optimize.vmBoot"),
}
# The draft lists the step editors change, per wizard step.
STEP_LISTS = {"customize": ("customize_before", "customize_after"), "validate": ("validators_before", "validators_after")}
LIST_KIND = {"customize_before": "customizer", "customize_after": "customizer", "validators_before": "validator",
             "validators_after": "validator", "customize": "customizer", "validators": "validator"}
# The declared type that fits a source's SecurityType feature (the wizard's suggestion).
DECLARED_FOR = {"TrustedLaunchSupported": "TrustedLaunch", "TrustedLaunchAndConfidentialVmSupported": "TrustedLaunch",
                "ConfidentialVMSupported": "ConfidentialVM"}


def step_index(step: str) -> int:
    return STEP_NAMES.index(step) if step in STEP_NAMES else -1


def reachable(wizard_step: str) -> list[str]:
    """Steps a draft may open: every completed step and the next one."""
    return list(STEP_NAMES[:step_index(wizard_step) + 2])


def next_step(step: str) -> str:
    index = step_index(step)
    return STEP_NAMES[min(index + 1, len(STEP_NAMES) - 1)]


def completed(wizard_step: str, step: str) -> str:
    """The new `wizard_step` after `step` is done (never moves backwards)."""
    return step if step_index(step) > step_index(wizard_step) else wizard_step


def step_of(path: str) -> str:
    for step, prefixes in STEP_PATHS.items():
        if any(path == prefix or path.startswith((prefix + ".", prefix + "[")) for prefix in prefixes):
            return step
    return "review"


def for_step(problems: Iterable[Problem], step: str) -> list[Problem]:
    return [problem for problem in problems if step_of(problem.path) == step]


def field_for(path: str, names: Iterable[str]) -> str | None:
    """The form field a JSON path belongs to: its last key that is a field name, walking up."""
    names = set(names)
    parts = [re.sub(r"\[\d+\]$", "", part) for part in path.split(".") if part]
    for part in reversed(parts):
        if part in names:
            return part
    return None


def target_field(path: str, names: Iterable[str]) -> str | None:
    """field_for, with a target region's keys going to their row (`targetRegions-<i>-<key>`,
    forms.region_field): `…targetRegions[1].replicaCount` is row 1's replica count."""
    names = set(names)
    found = re.search(r"\.targetRegions\[(\d+)\](?:\.(\w+))?$", path)
    if found:
        name = f"targetRegions-{found.group(1)}-{found.group(2) or 'name'}"
        if name in names:
            return name
    return field_for(path, names)


def data_disks_allowed(api_version: str = compose.API_VERSION) -> bool:
    """Whether the templates Goldsmith writes accept additionalDataDisks (schema.FIELD_SINCE)."""
    return api_version >= schema.FIELD_SINCE[("additionalDataDisks",)]


def split_problems(problems: Iterable[Problem], names: Iterable[str]) -> tuple[dict[str, list[Problem]],
                                                                                 list[Problem]]:
    """Problems by form field, and those that name no field of the form (shown above it)."""
    names = list(names)
    by_field: dict[str, list[Problem]] = {}
    rest: list[Problem] = []
    for problem in problems:
        found = field_for(problem.path, names)
        if found:
            by_field.setdefault(found, []).append(problem)
        else:
            rest.append(problem)
    return by_field, rest


# --- Step lists ----------------------------------------------------------------------------------


class ListEditError(ValueError):
    """A list edit that does not apply (stale index)."""


def edit_list(steps: list[Any], op: str, index: int | None, item: Any = None) -> list[Any]:
    """A new list with one edit applied: save (index None appends), up, down or remove."""
    steps = copy.deepcopy(list(steps))
    if op == "save":
        if index is None:
            return [*steps, item]
        _check_index(steps, index)
        steps[index] = item
        return steps
    if index is None:
        raise ListEditError("Which step? The page is out of date; reload it.")
    _check_index(steps, index)
    if op == "remove":
        del steps[index]
    elif op in ("up", "down"):
        other = index - 1 if op == "up" else index + 1
        if 0 <= other < len(steps):
            steps[index], steps[other] = steps[other], steps[index]
    else:
        raise ListEditError(f"Unknown edit '{op}'.")
    return steps


def _check_index(steps: list, index: int) -> None:
    if not 0 <= index < len(steps):
        raise ListEditError("That step no longer exists; the page is out of date. Reload it.")


def parse_index(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ListEditError("Which step? The page is out of date; reload it.") from exc


def locate(path: str, before: int, *, key: str = "customize") -> tuple[str, int] | None:
    """Which draft list and index a composed step path points at (baseline only: no layers)."""
    pattern = r"^properties\.customize\[(\d+)\]" if key == "customize" else \
        r"^properties\.validate\.inVMValidations\[(\d+)\]"
    found = re.match(pattern, path)
    if not found:
        return None
    index = int(found.group(1))
    names = STEP_LISTS["customize" if key == "customize" else "validate"]
    return (names[0], index) if index < before else (names[1], index - before)


def unique_name(steps: Iterable[dict], wanted: str) -> bool:
    return wanted not in {step.get("name") for step in steps if isinstance(step, dict)}


def draft_with(gold_version: Any, **changes: Any) -> Any:
    """An unsaved copy of the draft with `changes` applied (to check before saving)."""
    candidate = copy.copy(gold_version)
    for key, value in changes.items():
        setattr(candidate, key, copy.deepcopy(value))
    return candidate
