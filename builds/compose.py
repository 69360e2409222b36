"""Gold image version + department layers -> the Image Builder template body. Pure.

The order is fixed and cannot be changed by a layer: the baseline's "before" steps, then
each layer's steps in the order given, then the baseline's "after" steps; validators merge
the same way. Provenance goes into the template tags and every distributor's artifactTags,
so any image Azure produces can be traced back to the build that made it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from builds.models import GoldImageVersion, LayerVersion

# builds.validation.PolicyRules, read by attribute: validation imports this module, so it is not
# imported here (not even for type checking).
PolicyRules = Any

API_VERSION = "2025-10-01"
TAG_GOLD = "goldsmith.gold"
TAG_LAYERS = "goldsmith.layers"
TAG_BUILD = "goldsmith.build"
TAG_REQUESTER = "goldsmith.requester"
PROVENANCE_TAGS = (TAG_GOLD, TAG_LAYERS, TAG_BUILD, TAG_REQUESTER)
# What a layer version may choose of vmProfile.vnetConfig (LayerVersion.network), when the policy
# lets departments choose the build network (validation.check_layer_network).
LAYER_NETWORK_KEYS = ("subnetId", "proxyVmSize")
# GoldImageVersion.staging_resource_group is "" (Image Builder names its own group), a resource
# group id (the owner's own empty group) or GOLDSMITH_NAMED[":<prefix>"]: a group Goldsmith names
# per build (staging_group), so two builds of one version never share one (it must be empty).
GOLDSMITH_NAMED = "goldsmith-named"
STAGING_PREFIX = "goldsmith-staging-"
RESOURCE_GROUP_NAME_MAX = 90
BUILD_ID_PLACEHOLDER = "<build-id>"
SUBSCRIPTION_PLACEHOLDER = "<subscription-id>"


@dataclass(frozen=True)
class BuildContext:
    """What composition needs to know about the build (or preview) it composes for."""

    location: str  # used when the gold version names none
    build_id: uuid.UUID | None = None
    requester: str = ""
    subscription: str = ""  # used when the gold version names none (a Goldsmith-named staging group's id)
    # The gold version is not (yet) what the gold image's `production` channel points at
    # (release.excluded_until_promoted): its SharedImage targets carry excludeFromLatest true,
    # so VMs asking for `latest` get only promoted versions; promotion flips it (builds/release.py).
    exclude_from_latest: bool = False
    # The build policy that applies: its pins fill what the template leaves empty (apply_pins).
    # None composes the template as the gold version and layers say, nothing filled.
    policy: PolicyRules | None = None


def template_name(build_id: uuid.UUID, gold_slug: str) -> str:
    """The deterministic Image Builder template name of a build (<= 64 chars, Azure's name pattern)."""
    return f"gs-{gold_slug[:27].strip('-_.')}-{build_id.hex}"


def goldsmith_named(prefix: str = "") -> str:
    """The staging_resource_group value of a group Goldsmith names per build, with the policy's prefix."""
    return f"{GOLDSMITH_NAMED}:{prefix}" if prefix else GOLDSMITH_NAMED


def staging_mode(value: str) -> tuple[str, str]:
    """("none", ""), ("goldsmith", prefix) or ("own", group id) for a staging_resource_group value."""
    if not value:
        return "none", ""
    mode, sep, prefix = value.partition(":")
    if mode == GOLDSMITH_NAMED:
        return "goldsmith", prefix if sep else ""
    return "own", value


def staging_group_name(prefix: str, gold_slug: str, build_id: uuid.UUID | None) -> str:
    """A build's staging group name, `<prefix><slug>-<build uuid hex>` within Azure's 90 characters.

    Deterministic, like template_name: the uuid is kept whole (the slug is shortened first, then
    the uuid only when the prefix leaves no room), so two builds never share a group. Without a
    build (previews, the wizard's checks) the uuid is the placeholder <build-id>.
    """
    prefix = prefix or STAGING_PREFIX
    unique = build_id.hex if build_id else BUILD_ID_PLACEHOLDER
    room = RESOURCE_GROUP_NAME_MAX - len(prefix) - len(unique) - 1
    if room <= 0:
        return (prefix + unique)[:RESOURCE_GROUP_NAME_MAX]
    slug = gold_slug[:room].strip("-_.")
    return f"{prefix}{slug}-{unique}" if slug else f"{prefix}{unique}"


def staging_group(value: str, *, gold_slug: str, subscription: str, build_id: uuid.UUID | None) -> str:
    """The template's stagingResourceGroup for a gold version's staging_resource_group value:
    "" or the owner's group id as they are, a Goldsmith-named group's id for this build."""
    mode, prefix = staging_mode(value)
    if mode != "goldsmith":
        return value
    name = staging_group_name(prefix, gold_slug, build_id)
    return f"/subscriptions/{subscription or SUBSCRIPTION_PLACEHOLDER}/resourceGroups/{name}"


def layer_label(layer_version: LayerVersion) -> str:
    return f"{layer_version.layer.department.slug}/{layer_version.layer.slug}@{layer_version.version}"


def gold_label(gold_version: GoldImageVersion) -> str:
    return f"{gold_version.gold_image.slug}@{gold_version.version}"


def provenance(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion],
               context: BuildContext) -> dict[str, str]:
    tags = {TAG_GOLD: gold_label(gold_version), TAG_LAYERS: ",".join(layer_label(lv) for lv in layer_versions)}
    if context.build_id:
        tags[TAG_BUILD] = str(context.build_id)
    if context.requester:
        tags[TAG_REQUESTER] = context.requester
    return tags


@dataclass(frozen=True)
class Tag:
    """One tag as composition sees it: who set it, and for an overridden one, what applies instead."""

    name: str
    value: str
    source: str  # gold_label() or layer_label() of the version that set it
    overridden_by: str = ""  # the source whose value the template carries instead
    effective_value: str = ""


class TagReport(NamedTuple):
    effective: list[Tag]  # the template's tags (provenance aside), in the template's order
    overridden: list[Tag]  # values a layer set that the template does not carry


def effective_tags(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion]) -> TagReport:
    """The tags a composition carries and the layer values it ignores, each with its source.

    The rule compose() applies: layers in order (a later layer's value replaces an earlier
    one's), then the gold version's tags, which always win. A value set again unchanged is not
    an override. Provenance tags (goldsmith.*) are stamped per build on top and are not listed.
    Both lists are sorted by tag name (then source): PostgreSQL's jsonb keeps no key order, so
    the order tags were typed in is not something a page can rely on.
    """
    contributions = [(name, value, layer_label(lv)) for lv in layer_versions for name, value in (lv.tags or {}).items()]
    contributions += [(name, value, gold_label(gold_version)) for name, value in (gold_version.tags or {}).items()]
    final: dict[str, tuple[str, str]] = {}
    for name, value, source in contributions:
        final[name] = (value, source)  # dict.update's rule: the key keeps its first place, the last value wins
    effective = [Tag(name, value, source) for name, (value, source) in sorted(final.items())]
    overridden = sorted((Tag(name, value, source, overridden_by=final[name][1], effective_value=final[name][0])
                         for name, value, source in contributions
                         if value != final[name][0] and source != final[name][1]),
                        key=lambda tag: (tag.name, tag.source))
    return TagReport(effective, overridden)


def layer_network(layer_versions: Sequence[LayerVersion]) -> dict[str, str]:
    """The vnetConfig keys the layers choose: each key's value from the last layer that sets it
    (two layers choosing differently is validation.check_layer_list's `layer.network-conflict`)."""
    chosen: dict[str, str] = {}
    for layer_version in layer_versions:
        network = getattr(layer_version, "network", None)
        if isinstance(network, dict):
            chosen.update({key: value for key in LAYER_NETWORK_KEYS
                           if isinstance(value := network.get(key), str) and value})
    return chosen


def vm_profile(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion]) -> dict:
    """The gold version's vmProfile with the network the layers chose (subnetId, proxyVmSize)."""
    profile = copy.deepcopy(gold_version.vm_profile or {})
    chosen = layer_network(layer_versions)
    if chosen:
        vnet = profile.get("vnetConfig") if isinstance(profile.get("vnetConfig"), dict) else {}
        profile["vnetConfig"] = {**vnet, **chosen}
    return profile


def compose(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion], context: BuildContext) -> dict:
    """The template body (api-version 2025-10-01) for a gold version with layers, in order.

    Returns a new dict; inputs are not modified. Layers contribute steps, validators, tags
    and the build network (vmProfile.vnetConfig's LAYER_NETWORK_KEYS, see vm_profile): source,
    identity, the rest of vmProfile and distribution always come from the gold version.
    With `context.policy`, the policy's pins fill the settings the template leaves empty
    (apply_pins); compose_pinned also says which.
    """
    return compose_pinned(gold_version, layer_versions, context)[0]


def compose_pinned(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion],
                   context: BuildContext) -> tuple[dict, list[str]]:
    """compose()'s body and the JSON paths the policy filled (apply_pins), in template order."""
    body = _compose(gold_version, layer_versions, context)
    if context.policy is None:
        return body, []
    named = staging_group(goldsmith_named(context.policy.staging_resource_group_prefix),
                          gold_slug=gold_version.gold_image.slug,
                          subscription=gold_version.subscription_id or context.subscription,
                          build_id=context.build_id)
    return apply_pins(body, context.policy, staging_group=named)


def _compose(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion], context: BuildContext) -> dict:
    gold = gold_version
    stamp = provenance(gold, layer_versions, context)

    # The baseline's tags win over a layer's; provenance is stamped last.
    tags: dict[str, Any] = {tag.name: tag.value for tag in effective_tags(gold, layer_versions).effective}
    tags.update(stamp)

    customize = list(gold.customize_before)
    validators = list(gold.validators_before)
    for layer_version in layer_versions:
        customize += layer_version.customize
        validators += layer_version.validators
    customize += gold.customize_after
    validators += gold.validators_after

    properties: dict[str, Any] = {"source": gold.source}
    if customize:
        properties["customize"] = customize
    if validators or gold.validate_options:
        validate = dict(gold.validate_options)
        if validators:
            validate["inVMValidations"] = validators
        properties["validate"] = validate
    properties["distribute"] = [_stamp_distributor(target, stamp, exclude_from_latest=context.exclude_from_latest)
                                for target in gold.distribute]
    optional = {
        "optimize": gold.optimize,
        "errorHandling": gold.error_handling,
        "buildTimeoutInMinutes": gold.build_timeout_minutes,
        "vmProfile": vm_profile(gold, layer_versions),
        "stagingResourceGroup": staging_group(gold.staging_resource_group or "", gold_slug=gold.gold_image.slug,
                                              subscription=gold.subscription_id or context.subscription,
                                              build_id=context.build_id),
        "managedResourceTags": gold.managed_resource_tags,
    }
    properties.update({key: value for key, value in optional.items() if value not in (None, "", {}, [])})
    properties.update(gold.extra_properties or {})

    body: dict[str, Any] = {"location": gold.location or context.location, "tags": tags}
    if gold.identity:
        body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {gold.identity: {}}}
    body["properties"] = properties
    return copy.deepcopy(body)


def baseline(gold_version: GoldImageVersion, location: str, *, subscription: str = "",
             provenance: bool = False, policy: PolicyRules | None = None) -> dict:
    """The gold version's own template: no layers and, unless `provenance`, no provenance tags.

    The one entry for what the gold version pages, the API, the wizard's review and the diff
    show (without provenance: the same for every build), and for what publishing checks (with
    provenance: exactly what a gold-only build would carry, so tag limits count them).
    `location` (and `subscription`, for a Goldsmith-named staging group's id) are used when the
    gold version names none; `policy` fills its pins (apply_pins), as a build would.
    """
    body = compose(gold_version, [], BuildContext(location=location, subscription=subscription, policy=policy))
    return body if provenance else without_provenance(body)


# --- Pins: a policy's fixed value fills a setting the template leaves empty -------------------------
#
# The policy requires, forbids or fixes each enterprise setting (validation.check_enterprise_policy).
# Where it fixes one value and the template says nothing, composition fills that value, so what the
# pages show, what approvals hash and what builds submit carry it. A template that sets a different
# value is left as it is, and the policy check refuses it.


def apply_pins(body: dict, rules: PolicyRules, *, staging_group: str = "") -> tuple[dict, list[str]]:
    """A copy of `body` with the policy's pinned values filled where the template leaves them empty,
    and the JSON paths filled (in template order). Pure; `body` is not modified.

    Pins: errorHandling.onCustomizerError / onValidationError (on_customizer_error,
    on_validation_error), optimize.vmBoot.state (vm_boot_optimization), each "name=value" of
    required_managed_resource_tags, stagingResourceGroup = `staging_group` (the id of the group
    Goldsmith would name for this build) when the policy requires a named group, each SharedImage
    target region's storageAccountType when the policy allows exactly one, and each SharedImage
    target's versioning.scheme (gallery_versioning; not for an explicit version id).
    """
    body = copy.deepcopy(body)
    props = body.setdefault("properties", {})
    if not isinstance(props, dict):
        return body, []
    filled: list[str] = []
    p = "properties"

    def fill(where: dict, key: str, value: Any, path: str) -> None:
        if where.get(key) in (None, ""):
            where[key] = value
            filled.append(path)

    def section(key: str) -> dict | None:
        if props.get(key) in (None, {}):
            props[key] = {}
        return props[key] if isinstance(props[key], dict) else None

    if rules.staging_resource_group == "named" and staging_group:
        fill(props, "stagingResourceGroup", staging_group, f"{p}.stagingResourceGroup")
    pinned_tags = [(name.strip(), value.strip()) for name, has_value, value
                   in (entry.partition("=") for entry in rules.required_managed_resource_tags) if has_value]
    if pinned_tags and (tags := section("managedResourceTags")) is not None:
        for name, value in pinned_tags:
            fill(tags, name, value, f"{p}.managedResourceTags.{name}")
    for rule, key in ((rules.on_customizer_error, "onCustomizerError"),
                      (rules.on_validation_error, "onValidationError")):
        if rule and (handling := section("errorHandling")) is not None:
            fill(handling, key, rule, f"{p}.errorHandling.{key}")
    if rules.vm_boot_optimization and (optimize := section("optimize")) is not None:
        if optimize.get("vmBoot") in (None, {}):
            optimize["vmBoot"] = {}
        if isinstance(optimize["vmBoot"], dict):
            fill(optimize["vmBoot"], "state", rules.vm_boot_optimization, f"{p}.optimize.vmBoot.state")
    storage = rules.allowed_storage_account_types[0] if len(rules.allowed_storage_account_types) == 1 else ""
    targets = props.get("distribute") if isinstance(props.get("distribute"), list) else []
    for index, target in enumerate(targets):
        if not isinstance(target, dict) or target.get("type") != "SharedImage":
            continue
        at = f"{p}.distribute[{index}]"
        regions = target.get("targetRegions") if isinstance(target.get("targetRegions"), list) else []
        for number, region in enumerate(regions):
            if storage and isinstance(region, dict):
                fill(region, "storageAccountType", storage, f"{at}.targetRegions[{number}].storageAccountType")
        explicit = "/versions/" in str(target.get("galleryImageId") or "").lower()
        if rules.gallery_versioning and not explicit:
            if target.get("versioning") in (None, {}):
                target["versioning"] = {}
            if isinstance(target["versioning"], dict):
                fill(target["versioning"], "scheme", rules.gallery_versioning, f"{at}.versioning.scheme")
    # Sections opened for a pin that filled nothing stay out of the template.
    for key in ("managedResourceTags", "errorHandling", "optimize"):
        if props.get(key) == {}:
            del props[key]
    return body, filled


def _stamp_distributor(target: dict, stamp: dict[str, str], *, exclude_from_latest: bool = False) -> dict:
    stamped = dict(target)
    stamped["artifactTags"] = {**(target.get("artifactTags") or {}), **stamp}
    if exclude_from_latest and target.get("type") == "SharedImage":
        # Only ever set to true: a template that excludes its versions itself keeps doing so.
        stamped["excludeFromLatest"] = True
    return stamped


def canonical_json(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def template_sha256(body: dict) -> str:
    """The hash auditors compare: SHA-256 of the canonical JSON of the body."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def without_provenance(body: dict) -> dict:
    """A copy of a composed body with Goldsmith's provenance tags removed (for comparisons)."""
    body = copy.deepcopy(body)
    for key in PROVENANCE_TAGS:
        body.get("tags", {}).pop(key, None)
    if not body.get("tags"):
        body.pop("tags", None)
    for target in body.get("properties", {}).get("distribute", []):
        tags = target.get("artifactTags") or {}
        for key in PROVENANCE_TAGS:
            tags.pop(key, None)
        if not tags:
            target.pop("artifactTags", None)
    return body
