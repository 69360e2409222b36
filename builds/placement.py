"""Where a build runs and on what: regions and build VM sizes against what the subscription
offers. Pure: the look-ups (ARM's locations, Image Builder's regions, Compute's resource SKUs)
are done by builds/preflight.py and passed in.

Rules: `region.unknown` (a region the subscription does not have, with the nearest valid
names), `region.no-image-builder` (the build region is real but Image Builder is not offered
there), `vm-size.unavailable` (not offered in the region, or restricted for the subscription),
`vm-size.generation`, `vm-size.architecture`, `vm-size.security-type` (Trusted Launch or
confidential VM capability), `vm-size.os-disk` (the OS disk is larger than the size allows),
`vm-size.data-disks` (more additional data disks than the size takes). Every vm-size error
names sizes that fit.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from builds.schema import Problem, is_placeholder, listed

TRUSTED_LAUNCH = "TrustedLaunch"
CONFIDENTIAL = "ConfidentialVM"


class SizeFacts(Protocol):
    """What builds.azure.VmSku offers (duck-typed so this module stays free of I/O imports)."""

    name: str
    vcpus: int
    memory_gb: float
    hyper_v_generations: tuple[str, ...]
    architecture: str
    trusted_launch: bool
    confidential: str
    max_data_disks: int | None
    os_vhd_size_mb: int | None
    restricted: bool


@dataclass(frozen=True)
class Needs:
    """What the image asks of its build VM."""

    generation: str = ""  # V1, V2; "" unknown
    architecture: str = ""  # x64, Arm64; "" unknown
    security: str = ""  # TRUSTED_LAUNCH, CONFIDENTIAL or ""
    os_disk_gb: int = 0
    data_disks: int = 0


def normalize(name: str) -> str:
    return "".join((name or "").split()).lower()


def regions_used(body: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(path, region, is_build_region) of the build location and every distribution region."""
    found: list[tuple[str, str, bool]] = []
    if isinstance(body.get("location"), str) and body["location"]:
        found.append(("location", body["location"], True))
    props = body.get("properties") if isinstance(body.get("properties"), Mapping) else {}
    for index, target in enumerate(listed(props.get("distribute"))):
        if not isinstance(target, Mapping):
            continue
        where = f"properties.distribute[{index}]"
        if isinstance(target.get("location"), str) and target["location"]:
            found.append((f"{where}.location", target["location"], False))
        for number, region in enumerate(listed(target.get("targetRegions"))):
            if isinstance(region, Mapping) and isinstance(region.get("name"), str):
                found.append((f"{where}.targetRegions[{number}].name", region["name"], False))
        for number, region in enumerate(listed(target.get("replicationRegions"))):
            if isinstance(region, str):
                found.append((f"{where}.replicationRegions[{number}]", region, False))
    return [(path, name, build) for path, name, build in found if not is_placeholder(name)]


def check_regions(body: Mapping[str, Any], known: Mapping[str, str], image_builder: Iterable[str]) -> list[Problem]:
    """`known`: normalized name -> display name of the subscription's regions; `image_builder`:
    the normalized regions where Image Builder is offered (empty: not known, not checked)."""
    offered = {normalize(name) for name in image_builder}
    problems: list[Problem] = []
    for path, name, build in regions_used(body):
        region = normalize(name)
        if region not in known:
            problems.append(Problem("region.unknown", path,
                                    f"'{name}' is not a region of this subscription.{nearest(name, known)}"))
        elif build and offered and region not in offered:
            problems.append(Problem("region.no-image-builder", path,
                                    f"Image Builder is not offered in {known[region]} ({region}); build in one of "
                                    f"{', '.join(sorted(offered)[:8])}."))
    return problems


def nearest(name: str, known: Mapping[str, str]) -> str:
    """" Did you mean …?" with up to three valid names close to `name`, by name or display name."""
    wanted = normalize(name)
    by_display = {normalize(display): region for region, display in known.items()}
    close = difflib.get_close_matches(wanted, [*known, *by_display], n=6, cutoff=0.5)
    picks: list[str] = []
    for item in close:
        region = by_display.get(item, item)
        if region not in picks:
            picks.append(region)
    if not picks:
        return f" Use a region name such as {', '.join(sorted(known)[:3])}."
    return f" Did you mean {', '.join(picks[:3])}?"


# --- Build VM sizes -----------------------------------------------------------------------------


def fits(sku: SizeFacts, needs: Needs) -> list[tuple[str, str]]:
    """(rule, reason) for each way the size does not fit; [] when it fits."""
    reasons: list[tuple[str, str]] = []
    if sku.restricted:
        reasons.append(("vm-size.unavailable", "is not available to this subscription in the region"))
    if needs.generation and needs.generation not in sku.hyper_v_generations:
        gen = "Generation 2" if needs.generation == "V2" else "Generation 1"
        reasons.append(("vm-size.generation", f"cannot run {gen} images (it supports "
                                              f"{', '.join(sku.hyper_v_generations) or 'none'})"))
    if needs.architecture and sku.architecture and needs.architecture.lower() != sku.architecture.lower():
        reasons.append(("vm-size.architecture", f"is {sku.architecture}, the image is {needs.architecture}"))
    if needs.security == TRUSTED_LAUNCH and not sku.trusted_launch:
        reasons.append(("vm-size.security-type", "does not support Trusted Launch"))
    if needs.security == CONFIDENTIAL and not sku.confidential:
        reasons.append(("vm-size.security-type", "is not a confidential VM size"))
    if needs.os_disk_gb and sku.os_vhd_size_mb and needs.os_disk_gb * 1024 > sku.os_vhd_size_mb:
        reasons.append(("vm-size.os-disk", f"takes OS disks up to {sku.os_vhd_size_mb // 1024} GB, the image needs "
                                           f"{needs.os_disk_gb} GB"))
    if needs.data_disks and sku.max_data_disks is not None and needs.data_disks > sku.max_data_disks:
        reasons.append(("vm-size.data-disks", f"takes {sku.max_data_disks} data disks, the template adds "
                                              f"{needs.data_disks}"))
    return reasons


def sizes_that_fit(skus: Sequence[SizeFacts], needs: Needs, *, allowed: Sequence[str] = (), limit: int = 5) -> list[str]:
    """The smallest sizes that fit (fewest vCPUs, then least memory), within the policy's list."""
    allow = {item.lower() for item in allowed}
    good = [sku for sku in skus if not fits(sku, needs) and (not allow or sku.name.lower() in allow)]
    good.sort(key=lambda sku: (sku.vcpus, sku.memory_gb, sku.name.lower()))
    return [sku.name for sku in good[:limit]]


def check_vm_size(size: str, path: str, skus: Sequence[SizeFacts], needs: Needs, *, location: str,
                  allowed: Sequence[str] = (), default: bool = False) -> list[Problem]:
    """The size against the region's SKUs; `default` says the size is Image Builder's choice
    because the template names none."""
    if not size or is_placeholder(size):
        return []
    fitting = sizes_that_fit(skus, needs, allowed=allowed)
    fix = f" Sizes that fit: {', '.join(fitting)}." if fitting else " No size offered in the region fits."
    shown = f"Image Builder's default size {size}" if default else size
    sku = next((item for item in skus if item.name.lower() == size.lower()), None)
    if sku is None:
        return [Problem("vm-size.unavailable", path, f"{shown} is not offered in {location}.{fix}")]
    problems = [Problem(rule, path, f"{shown} {reason}.{fix}") for rule, reason in fits(sku, needs)]
    return problems


@dataclass(frozen=True)
class SizeChoice:
    """A size for the build VM picker: what it is, and a rough cost per build-hour."""

    name: str
    vcpus: int
    memory_gb: float
    generations: tuple[str, ...]
    price_per_hour: float | None = None
    currency: str = ""

    @property
    def label(self) -> str:
        memory = f"{self.memory_gb:g}"
        text = f"{self.name}: {self.vcpus} vCPU, {memory} GB"
        if self.price_per_hour is not None:
            text += f", about {self.price_per_hour:.2f} {self.currency} per build-hour"
        return text


def size_choices(skus: Sequence[SizeFacts], prices: Mapping[str, float], *, currency: str = "",
                 needs: Needs | None = None, allowed: Sequence[str] = ()) -> list[SizeChoice]:
    """Sizes to offer (those that fit `needs`, within the policy), smallest first, with prices."""
    allow = {item.lower() for item in allowed}
    lowered = {name.lower(): value for name, value in prices.items()}
    out = []
    for sku in skus:
        if (needs is not None and fits(sku, needs)) or sku.restricted or (allow and sku.name.lower() not in allow):
            continue
        out.append(SizeChoice(sku.name, sku.vcpus, sku.memory_gb, tuple(sku.hyper_v_generations),
                              lowered.get(sku.name.lower()), currency))
    out.sort(key=lambda item: (item.vcpus, item.memory_gb, item.name.lower()))
    return out


def parse_prices(data: Any) -> dict[str, float]:
    """{size: price per hour} from the prices file's JSON; keys starting with "_" and values
    that are not non-negative numbers are ignored."""
    if not isinstance(data, Mapping):
        return {}
    return {str(name): float(value) for name, value in data.items()
            if not str(name).startswith("_") and isinstance(value, int | float) and not isinstance(value, bool)
            and value >= 0}
