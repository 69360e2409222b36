"""Pre-flight checks: look up what the rules need in the catalog, then run builds/validation.py.

This is the impure half of validation: it reads the current policy from the database and asks
builds/azure.py about the source image and the gallery definitions a template names, turns the
answers into validation.Facts, and hands everything to the pure rules. Every entry point
returns a list of Problems (errors and warnings); `schema.errors(problems)` keeps the ones that
refuse. Nothing here writes anything or submits anything to Azure.

Entry points:
- check_build(gold_version, layer_versions, *, policy, body=None): what a build request runs.
- check_body(body, *, policy, ...): any template body (checktemplate, the check page).
- check_gold_version(gold_version, ...): the wizard's Review step and publishing.
- check_layer_version(layer_version, gold_version, ...): the layer forms and their preview.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from builds import azure, compose, schema, validation
from builds.models import GoldImageVersion, LayerVersion, Policy
from builds.schema import Problem
from builds.validation import Declared, DefinitionFacts, Facts, PolicyRules, SourceFacts

DEFAULT_POLICY = "default"
_GALLERY_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+/"
                         r"images/[^/]+(/versions/[^/]+)?$", re.IGNORECASE)
_SHARED_VERSION = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/"
                             r"[^/]+/images/[^/]+/versions/[^/]+$", re.IGNORECASE)


class UnknownPolicy(LookupError):
    """No policy has the name asked for."""


# --- Policy -------------------------------------------------------------------------------------


def policy_current(name: str = DEFAULT_POLICY) -> Policy | None:
    """The newest version of the named policy, or None when it was never saved."""
    return Policy.objects.filter(name=name).order_by("-version").first()


def policy_rules(policy: Policy | PolicyRules | str | None = None) -> PolicyRules:
    """Typed rules from a Policy row, a policy name or None (the current default policy; the
    built-in defaults when the security team has not saved one). Raises UnknownPolicy for a
    name that was never saved, except "default"."""
    if isinstance(policy, PolicyRules):
        return policy
    if isinstance(policy, Policy):
        return PolicyRules.from_json(policy.rules)
    name = policy or DEFAULT_POLICY
    found = policy_current(name)
    if found is None:
        if name != DEFAULT_POLICY:
            raise UnknownPolicy(f"There is no policy called '{name}'.")
        return PolicyRules()
    return PolicyRules.from_json(found.rules)


# --- Look-ups -------------------------------------------------------------------------------------


def gather_facts(body: Any, *, subscription: str | None = None) -> Facts:
    """Ask the catalog about the body's source image and gallery targets.

    Placeholders and ids that cannot be looked up are skipped with a `source.not-checked`
    warning; a failed look-up becomes a `source.lookup-failed` error (try again later), so a
    template is never passed on the strength of a question Azure did not answer.
    """
    subscription = subscription or settings.AZURE_SUBSCRIPTION_ID
    props = body.get("properties") if isinstance(body, dict) and isinstance(body.get("properties"), dict) else {}
    location = body.get("location") if isinstance(body, dict) else None
    source = props.get("source") if isinstance(props.get("source"), dict) else {}
    notes: list[Problem] = []
    source_facts = None
    if not isinstance(location, str) or not location or _placeholder(location):
        notes.append(Problem("source.not-checked", "location",
                             "The build region is missing or a placeholder, so the source image and security types "
                             "were not checked against the catalog.", "warning"))
    else:
        try:
            source_facts = _source_facts(source, location, subscription, notes)
        except azure.AzureError as exc:
            notes.append(_lookup_failed("properties.source", "the source image", exc))
    definitions: dict[str, DefinitionFacts | None] = {}
    existing: set[str] = set()
    for index, target in enumerate(_list(props.get("distribute"))):
        if not isinstance(target, dict):
            continue
        gallery_id = target.get("galleryImageId")
        if target.get("type") != "SharedImage" or not isinstance(gallery_id, str) or _placeholder(gallery_id) \
                or not _GALLERY_ID.match(gallery_id):
            continue
        definition_id, _, version = gallery_id.partition("/versions/")
        path = f"properties.distribute[{index}].galleryImageId"
        try:
            if definition_id.lower() not in definitions:
                found = azure.gallery_image(definition_id)
                definitions[definition_id.lower()] = _definition_facts(found) if found else None
            if version and definitions[definition_id.lower()] is not None \
                    and azure.gallery_image_version(gallery_id) is not None:
                existing.add(gallery_id.lower())
        except azure.AzureError as exc:
            notes.append(_lookup_failed(path, "the gallery image definition", exc))
    return Facts(source=source_facts, definitions=definitions, existing_versions=frozenset(existing),
                 problems=tuple(notes), subscription=subscription)


def _source_facts(source: dict, location: str, subscription: str, notes: list[Problem]) -> SourceFacts | None:
    kind = source.get("type")
    if kind == "PlatformImage":
        names = [source.get(key) for key in ("publisher", "offer", "sku", "version")]
        if not all(isinstance(name, str) and name and not _placeholder(name) for name in names):
            notes.append(_not_checked("properties.source", "the Marketplace image"))
            return None
        publisher, offer, sku, version = names
        label = f"{publisher}:{offer}:{sku}"
        image = azure.marketplace_image(location, publisher, offer, sku, version, subscription=subscription)
        if image is None:
            known = tuple(azure.list_versions(location, publisher, offer, sku, subscription=subscription)[:5])
            return SourceFacts(kind, False, label, known_versions=known)
        return SourceFacts(kind, True, f"{label}:{image.version}", version=image.version,
                           security_type=image.security_type, hyper_v_generation=image.hyper_v_generation,
                           architecture=image.architecture, os_type=image.os_type,
                           os_disk_size_gb=image.os_disk_size_gb,
                           plan=(image.plan.name, image.plan.product, image.plan.publisher) if image.plan else None,
                           deprecation_state=image.deprecation_state)
    if kind == "ManagedImage":
        image_id = source.get("imageId")
        if not isinstance(image_id, str) or _placeholder(image_id) or not schema.MANAGED_IMAGE_ID.match(image_id):
            notes.append(_not_checked("properties.source.imageId", "the managed image"))
            return None
        image = azure.managed_image(image_id)
        if image is None:
            return SourceFacts(kind, False, image_id)
        return SourceFacts(kind, True, image.name, security_type=validation.STANDARD,
                           hyper_v_generation=image.hyper_v_generation, os_type=image.os_type,
                           os_state=image.os_state, os_disk_size_gb=image.os_disk_size_gb, location=image.location,
                           subscription=image_id.split("/")[2], architecture="x64")
    if kind == "SharedImageVersion":
        version_id = source.get("imageVersionId")
        if not isinstance(version_id, str) or _placeholder(version_id) or not _SHARED_VERSION.match(version_id):
            notes.append(_not_checked("properties.source.imageVersionId", "the gallery image version"))
            return None
        version = azure.gallery_image_version(version_id)
        if version is None:
            return SourceFacts(kind, False, version_id)
        definition = azure.gallery_image(version.definition_id)
        if definition is None:
            return SourceFacts(kind, False, version_id)
        return SourceFacts(kind, True, f"{definition.name} {version.name}", version=version.name,
                           security_type=definition.security_type, hyper_v_generation=definition.hyper_v_generation,
                           architecture=definition.architecture, os_type=definition.os_type,
                           os_state=definition.os_state, os_disk_size_gb=version.os_disk_size_gb,
                           regions=version.regions)
    return None  # the schema rules already refuse an unknown source type


def _definition_facts(found: azure.GalleryImage) -> DefinitionFacts:
    return DefinitionFacts(id=found.id, security_type=found.security_type,
                           hyper_v_generation=found.hyper_v_generation, architecture=found.architecture,
                           os_type=found.os_type, os_state=found.os_state)


def source_facts(source: dict, location: str, *, subscription: str | None = None) -> tuple[SourceFacts | None,
                                                                                          list[Problem]]:
    """What the catalog says about one source object (the wizard's Source and Security steps)."""
    notes: list[Problem] = []
    try:
        found = _source_facts(source, location, subscription or settings.AZURE_SUBSCRIPTION_ID, notes)
    except azure.AzureError as exc:
        return None, [_lookup_failed("properties.source", "the source image", exc)]
    return found, notes


def _not_checked(path: str, what: str) -> Problem:
    return Problem("source.not-checked", path,
                   f"{what[0].upper()}{what[1:]} is a placeholder or of a kind Goldsmith cannot look up, so it was "
                   "not checked against the catalog.", "warning")


def _lookup_failed(path: str, what: str, exc: azure.AzureError) -> Problem:
    return Problem("source.lookup-failed", path,
                   f"Could not look up {what} in Azure ({exc.code}: {exc.message}). Nothing was submitted; try again "
                   "in a minute.")


# --- Checks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceCheck:
    source: dict  # the source object, with planInfo filled in from the catalog when it names a plan
    facts: SourceFacts | None  # None when the look-up failed (a problem says so)
    problems: list[Problem]


def check_source_step(source: dict, location: str, *, os_type: str, subscription: str | None = None) -> SourceCheck:
    """Every check of the wizard's Source step: the catalog look-up, the source's schema and
    source rules, and the location against the current policy. Refuse the step when
    schema.errors(problems) is not empty. Never raises AzureError."""
    source = dict(source)
    facts, notes = source_facts(source, location, subscription=subscription)
    if facts is not None and facts.found and facts.plan and source["type"] == "PlatformImage":
        # The catalog knows the plan: fill planInfo in rather than asking for it.
        source["planInfo"] = dict(zip(("planName", "planProduct", "planPublisher"), facts.plan, strict=True))
    problems = schema.check_source(source, "properties.source") + notes
    if facts is not None:
        problems += validation.check_source(source, facts, location=location, os_type=os_type,
                                            subscription=subscription)
    problems += validation.check_policy({"location": location, "properties": {}}, policy_rules())
    return SourceCheck(source, facts, problems)


@dataclass(frozen=True)
class Report:
    """Problems plus which check groups ran (for "checks passed" lists)."""

    problems: list[Problem]
    ran: frozenset[str]

    @property
    def errors(self) -> list[Problem]:
        return schema.errors(self.problems)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def checks(self) -> list[validation.CheckResult]:
        return validation.summarize(self.problems, self.ran)


def _ran(lookups: bool, *, layers: bool = False) -> frozenset[str]:
    groups = {"schema", "policy", "secret"}
    if lookups:
        groups |= {"source", "security", "distribute", "vm"}
    else:
        groups |= {"security"}  # the declared type and generation are still checked
    if layers:
        groups.add("layer")
    return frozenset(groups)


def check_body(body: Any, *, policy: Policy | PolicyRules | str | None = None, os_type: str | None = None,
               lookups: bool = True, subscription: str | None = None, building: bool = False) -> list[Problem]:
    """Every rule for a template body on its own (no gold version): schema, policy, secrets and,
    with lookups, source, security types, distribution targets and build VM. building=True: the
    body is about to be submitted, so placeholders a sample left are errors too."""
    problems = body_report(body, policy=policy, os_type=os_type, lookups=lookups, subscription=subscription).problems
    return schema.dedupe(problems + schema.placeholders(body)) if building else problems


def body_report(body: Any, *, policy: Policy | PolicyRules | str | None = None, os_type: str | None = None,
                lookups: bool = True, subscription: str | None = None) -> Report:
    rules = policy_rules(policy)
    facts = gather_facts(body, subscription=subscription) if lookups and isinstance(body, dict) else None
    problems = validation.check_template(body, policy=rules, facts=facts, os_type=os_type)
    return Report(problems, _ran(lookups and facts is not None))


def check_build(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion] = (), *,
                policy: Policy | PolicyRules | str | None = None, body: dict | None = None,
                lookups: bool = True) -> list[Problem]:
    """Every rule for a build of `gold_version` with `layer_versions` (in order).

    `body` is the exact composed template the build will submit (compose.compose(...) with the
    build's context); without it the template is composed here. `policy` is a Policy row, a
    policy name or None for the current default policy. Returns errors and warnings: refuse
    the build when schema.errors(problems) is not empty. Paths are template JSON paths
    (properties.customize[3].inline[0]), `security_type`/`hyper_v_generation` for the gold
    version's declarations and `layers[i].accepts`/`layers[i].tags.x` for a layer's own fields.
    Raises UnknownPolicy for an unknown policy name; never raises AzureError (a failed
    look-up is a `source.lookup-failed` error problem).
    """
    if body is None:
        body = compose.compose(gold_version, list(layer_versions), compose.BuildContext(location=settings.AZURE_LOCATION))
    problems = build_report(gold_version, layer_versions, policy=policy, body=body, lookups=lookups).problems
    return schema.dedupe(problems + schema.placeholders(body))


def build_report(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion] = (), *,
                 policy: Policy | PolicyRules | str | None = None, body: dict | None = None,
                 lookups: bool = True) -> Report:
    rules = policy_rules(policy)
    layer_versions = list(layer_versions)
    expected = compose.compose(gold_version, layer_versions, compose.BuildContext(location=settings.AZURE_LOCATION))
    body = expected if body is None else body
    os_type = gold_version.gold_image.os_type
    subscription = gold_version.subscription_id or settings.AZURE_SUBSCRIPTION_ID
    facts = gather_facts(body, subscription=subscription) if lookups else None
    declared = Declared(gold_version.security_type, gold_version.hyper_v_generation, os_type)
    problems = validation.check_template(body, policy=rules, facts=facts, os_type=os_type, declared=declared)
    problems += validation.check_layer_list(layer_versions)
    offsets = {"customize": len(gold_version.customize_before), "validators": len(gold_version.validators_before)}
    for index, layer_version in enumerate(layer_versions):
        problems += validation.check_layer(layer_version, gold_version, policy=rules, prefix=f"layers[{index}]",
                                           offsets=dict(offsets))
        offsets["customize"] += len(layer_version.customize)
        offsets["validators"] += len(layer_version.validators)
    problems += validation.check_composition(body, gold_version, layer_versions, expected=expected)
    return Report(schema.dedupe(problems), _ran(lookups, layers=bool(layer_versions)))


def check_gold_version(gold_version: GoldImageVersion, *, policy: Policy | PolicyRules | str | None = None,
                       lookups: bool = True) -> Report:
    """The baseline on its own: the wizard's Validate/Review steps."""
    return build_report(gold_version, [], policy=policy, lookups=lookups)


def publish_problems(gold_version: GoldImageVersion, *, policy: Policy | PolicyRules | str | None = None,
                     lookups: bool = True) -> list[Problem]:
    """For services.gold_version_publish(extra_problems=...): every non-schema problem of the
    baseline (the service runs the schema rules itself)."""
    return [problem for problem in check_gold_version(gold_version, policy=policy, lookups=lookups).problems
            if validation.group_of(problem) != "schema"]


def check_layer_version(layer_version: LayerVersion, gold_version: GoldImageVersion, *,
                        policy: Policy | PolicyRules | str | None = None, lookups: bool = True) -> Report:
    """A layer version composed on a gold version: the layer preview."""
    return build_report(gold_version, [layer_version], policy=policy, lookups=lookups)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _placeholder(value: str) -> bool:
    return "<" in value or "{" in value or value.startswith("[")


# --- Look-ups for the wizard's pickers -------------------------------------------------------


def catalog_choices(data: dict) -> tuple[dict[str, list[str]], list[str]]:
    """Datalist options for the wizard's Marketplace browse, from what is chosen so far, and notes
    for people when the catalog cannot be read (never raises)."""
    lists: dict[str, list[str]] = {"publishers": [], "offers": [], "skus": [], "versions": []}
    notes: list[str] = []
    location = (data.get("location") or "").strip()
    if not location:
        return lists, notes
    try:
        lists["publishers"] = azure.list_publishers(location)
        if data.get("publisher"):
            lists["offers"] = azure.list_offers(location, data["publisher"])
            if data.get("offer"):
                lists["skus"] = azure.list_skus(location, data["publisher"], data["offer"])
                if data.get("sku"):
                    lists["versions"] = ["latest", *azure.list_versions(location, data["publisher"], data["offer"],
                                                                        data["sku"])]
    except azure.AzureError as exc:
        notes.append(f"The catalog could not be read ({exc.code}); type the names instead, or try again.")
    return lists, notes


def gallery_definitions() -> tuple[list[azure.GalleryImage], str]:
    """The gallery image definitions to offer as targets, and a note when they cannot be listed."""
    try:
        return azure.gallery_images(), ""
    except azure.AzureError as exc:
        return [], f"The gallery definitions could not be listed ({exc.code}); paste a definition id instead."
