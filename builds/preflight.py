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

import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from builds import azpolicy, azure, compose, permissions, placement, release, schema, validation
from builds.models import GoldImageVersion, LayerVersion, Policy
from builds.schema import Problem, listed
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
    for index, target in enumerate(listed(props.get("distribute"))):
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


def _ran(lookups: bool, *, layers: bool = False, environment: bool = True) -> frozenset[str]:
    groups = {"schema", "policy", "secret"}
    if lookups:
        groups |= {"source", "security", "distribute", "vm"}
        if environment:
            groups |= set(ENVIRONMENT_GROUPS)
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
                lookups: bool = True, subscription: str | None = None, resource_group: str | None = None) -> Report:
    rules = policy_rules(policy)
    facts = gather_facts(body, subscription=subscription) if lookups and isinstance(body, dict) else None
    problems = validation.check_template(body, policy=rules, facts=facts, os_type=os_type)
    if facts is not None:
        problems = check_environment(body, subscription=facts.subscription, resource_group=resource_group
                                     or settings.AZURE_RESOURCE_GROUP, source=facts.source, policy=rules,
                                     problems=problems)
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
        # As a build would compose it: a build id names its own staging group (compose.staging_group).
        body = compose.compose(gold_version, list(layer_versions), compose.BuildContext(
            location=settings.AZURE_LOCATION, build_id=uuid.uuid4(), subscription=settings.AZURE_SUBSCRIPTION_ID,
            exclude_from_latest=release.excluded_until_promoted(gold_version), policy=policy_rules(policy)))
    problems = build_report(gold_version, layer_versions, policy=policy, body=body, lookups=lookups).problems
    return schema.dedupe(problems + schema.placeholders(body))


def build_report(gold_version: GoldImageVersion, layer_versions: Sequence[LayerVersion] = (), *,
                 policy: Policy | PolicyRules | str | None = None, body: dict | None = None,
                 lookups: bool = True, environment: bool = True) -> Report:
    """check_build's problems as a Report. environment=False leaves out the checks of where
    the build runs (regions, VM size, identity, permissions, Azure Policy, staging group),
    which publishing a version does not need."""
    rules = policy_rules(policy)
    layer_versions = list(layer_versions)
    expected = compose.compose(gold_version, layer_versions, compose.BuildContext(
        location=settings.AZURE_LOCATION, subscription=settings.AZURE_SUBSCRIPTION_ID,
        exclude_from_latest=release.excluded_until_promoted(gold_version), policy=rules))
    body = expected if body is None else body
    os_type = gold_version.gold_image.os_type
    subscription = gold_version.subscription_id or settings.AZURE_SUBSCRIPTION_ID
    facts = gather_facts(body, subscription=subscription) if lookups else None
    declared = Declared(gold_version.security_type, gold_version.hyper_v_generation, os_type)
    problems = validation.check_template(body, policy=rules, facts=facts, os_type=os_type, declared=declared)
    if facts is not None and environment:
        problems = check_environment(body, subscription=subscription, resource_group=gold_version.resource_group
                                     or settings.AZURE_RESOURCE_GROUP, source=facts.source, declared=declared,
                                     policy=rules, problems=problems)
    problems += validation.check_layer_list(layer_versions)
    offsets = {"customize": len(gold_version.customize_before), "validators": len(gold_version.validators_before)}
    for index, layer_version in enumerate(layer_versions):
        problems += validation.check_layer(layer_version, gold_version, policy=rules, prefix=f"layers[{index}]",
                                           offsets=dict(offsets))
        offsets["customize"] += len(layer_version.customize)
        offsets["validators"] += len(layer_version.validators)
    problems += validation.check_composition(body, gold_version, layer_versions, expected=expected)
    return Report(schema.dedupe(problems), _ran(lookups, layers=bool(layer_versions), environment=environment))


def check_gold_version(gold_version: GoldImageVersion, *, policy: Policy | PolicyRules | str | None = None,
                       lookups: bool = True, environment: bool = False) -> Report:
    """The baseline on its own: the wizard's Validate step and publishing (environment=True:
    the Review step, see review_report)."""
    return build_report(gold_version, [], policy=policy, lookups=lookups, environment=environment)


def review_report(gold_version: GoldImageVersion, *, policy: Policy | PolicyRules | str | None = None) -> Report:
    """What the wizard's Review step shows: every rule with every look-up (regions, build VM
    size, identity, permissions, Azure Policy, staging group included), on the template the
    baseline composes to. The view renders `report.checks` and `report.problems`."""
    return check_gold_version(gold_version, policy=policy, lookups=True, environment=True)


def publish_problems(gold_version: GoldImageVersion, *, policy: Policy | PolicyRules | str | None = None,
                     lookups: bool = True) -> list[Problem]:
    """For services.gold_version_publish, which runs these itself: every non-schema problem of the
    baseline (the service runs the schema rules itself), and the step rules that need the gold
    image's OS family, which the service's schema rules cannot know."""
    return [problem for problem in check_gold_version(gold_version, policy=policy, lookups=lookups).problems
            if validation.group_of(problem) != "schema" or problem.rule in validation.OS_FAMILY_RULES]


def check_layer_version(layer_version: LayerVersion, gold_version: GoldImageVersion, *,
                        policy: Policy | PolicyRules | str | None = None, lookups: bool = True,
                        environment: bool = True) -> Report:
    """A layer version composed on a gold version: the layer preview (environment=False for
    publishing, as for a gold version: roles and the staging group are the build's to check,
    and can change after publishing)."""
    return build_report(gold_version, [layer_version], policy=policy, lookups=lookups, environment=environment)


def _placeholder(value: str) -> bool:
    return "<" in value or "{" in value or value.startswith("[")


# --- Where the build runs: regions, VM size, identity, permissions, Azure Policy, staging ----------

ENVIRONMENT_GROUPS = ("region", "vm-size", "identity", "permission", "staging", "azure-policy")
# The static size table's rules, superseded when Compute's resource SKUs answered for the size.
_STATIC_SIZE_RULES = frozenset({"vm.size-generation", "vm.size-architecture", "vm.size-confidential",
                                "vm.size-unknown", "vm.size-required"})


def check_environment(body: Any, *, subscription: str | None = None, resource_group: str | None = None,
                      source: SourceFacts | None = None, declared: Declared | None = None,
                      policy: PolicyRules | None = None, problems: Sequence[Problem] = ()) -> list[Problem]:
    """Every environment check on a body, appended to `problems` (the rule problems so far).

    Regions (`check_regions`), the build VM (`check_vm_sizes`), the identity
    (`check_identities`), the staging group (`check_staging_group`), permissions
    (`check_permissions`) and Azure Policy (`check_azure_policy`). Never raises AzureError: a
    look-up that fails is an `<group>.lookup-failed` error, one Goldsmith may not make (403) a
    `<group>.not-checked` warning.
    """
    location = body.get("location") if isinstance(body, dict) else None
    if not isinstance(location, str) or not location or _placeholder(location):
        return list(problems)  # a sample's template: gather_facts already said nothing was looked up
    subscription = subscription or settings.AZURE_SUBSCRIPTION_ID
    resource_group = resource_group or settings.AZURE_RESOURCE_GROUP
    found = check_regions(body, subscription=subscription)
    sizes = check_vm_sizes(body, subscription=subscription, source=source, declared=declared, policy=policy)
    if sizes.checked:
        problems = [problem for problem in problems if problem.rule not in _STATIC_SIZE_RULES]
    found += sizes.problems
    identity_problems, template_identity = check_identities(body, subscription=subscription)
    found += identity_problems
    staging_problems, staging_exists = check_staging_group(body, subscription=subscription)
    found += staging_problems
    found += check_permissions(body, subscription=subscription, resource_group=resource_group,
                               identity=template_identity, staging_exists=staging_exists)
    found += check_azure_policy(body, subscription=subscription)
    return schema.dedupe([*problems, *found])


def _environment_failure(group: str, path: str, what: str, exc: azure.AzureError) -> Problem:
    if exc.status == 403:
        return Problem(f"{group}.not-checked", path,
                       f"Goldsmith may not read {what} in Azure ({exc.code}), so this was not checked.", "warning")
    return Problem(f"{group}.lookup-failed", path,
                   f"Could not read {what} in Azure ({exc.code}: {exc.message}). Nothing was submitted; try again in "
                   "a minute.")


def check_regions(body: dict, *, subscription: str | None = None) -> list[Problem]:
    """The build region and every distribution region exist for the subscription (ARM's
    locations), and Image Builder is offered in the build region (its provider's regions)."""
    subscription = subscription or settings.AZURE_SUBSCRIPTION_ID
    if not placement.regions_used(body):
        return []
    try:
        known = {item.name: item.display_name for item in azure.locations(subscription)}
        offered = azure.provider_locations("Microsoft.VirtualMachineImages", "imageTemplates",
                                           subscription=subscription)
    except azure.AzureError as exc:
        return [_environment_failure("region", "location", "the subscription's regions", exc)]
    return placement.check_regions(body, known, offered)


@dataclass(frozen=True)
class SizeReport:
    problems: list[Problem]
    checked: bool  # the build VM size was compared with the region's resource SKUs


def _needs(body: dict, source: SourceFacts | None, declared: Declared | None) -> placement.Needs:
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    profile = props.get("vmProfile") if isinstance(props.get("vmProfile"), dict) else {}
    generation = (source.hyper_v_generation if source and source.found else "") or \
        (declared.hyper_v_generation if declared else "")
    security = ""
    declared_type = declared.security_type if declared else ""
    if declared_type == "ConfidentialVM" or (source and source.security_type == validation.CONFIDENTIAL_SUPPORTED):
        security = placement.CONFIDENTIAL
    elif declared_type == "TrustedLaunch":
        security = placement.TRUSTED_LAUNCH
    disk = profile.get("osDiskSizeGB") if isinstance(profile.get("osDiskSizeGB"), int) else 0
    if not disk and source and source.os_disk_size_gb:
        disk = source.os_disk_size_gb
    disks = props.get("additionalDataDisks") if isinstance(props.get("additionalDataDisks"), list) else []
    return placement.Needs(generation=generation, architecture=(source.architecture if source else "") or "",
                           security=security, os_disk_gb=disk or 0, data_disks=len(disks))


def check_vm_sizes(body: dict, *, subscription: str | None = None, source: SourceFacts | None = None,
                   declared: Declared | None = None, policy: PolicyRules | None = None) -> SizeReport:
    """The build VM size (or Image Builder's default for the generation) and the proxy VM size
    are offered in the build region and fit the image; each error names sizes that fit."""
    subscription = subscription or settings.AZURE_SUBSCRIPTION_ID
    location = body.get("location")
    if not isinstance(location, str) or not location or _placeholder(location):
        return SizeReport([], False)
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    profile = props.get("vmProfile") if isinstance(props.get("vmProfile"), dict) else {}
    needs = _needs(body, source, declared)
    size = profile.get("vmSize") if isinstance(profile.get("vmSize"), str) else ""
    default = not size
    if default:
        size = validation.DEFAULT_VM_SIZE.get(needs.generation or "", "")
    try:
        skus = azure.vm_skus(location, subscription=subscription)
    except azure.AzureError as exc:
        return SizeReport([_environment_failure("vm-size", "properties.vmProfile.vmSize",
                                                "the VM sizes offered in the region", exc)], False)
    allowed = policy.allowed_vm_sizes if policy else ()
    problems = placement.check_vm_size(size, "properties.vmProfile.vmSize", skus, needs, location=location,
                                       allowed=allowed, default=default)
    vnet = profile.get("vnetConfig") if isinstance(profile.get("vnetConfig"), dict) else {}
    proxy = vnet.get("proxyVmSize")
    if isinstance(proxy, str) and proxy:
        problems += placement.check_vm_size(proxy, "properties.vmProfile.vnetConfig.proxyVmSize", skus,
                                            placement.Needs(), location=location)
    return SizeReport(problems, bool(size))


def check_identities(body: dict, *, subscription: str | None = None) -> tuple[list[Problem], azure.Identity | None]:
    """The template identity (and every build VM identity) exists, and the template identity
    is in the template's subscription. Returns the problems and the template identity found."""
    subscription = subscription or settings.AZURE_SUBSCRIPTION_ID
    problems: list[Problem] = []
    found_template: azure.Identity | None = None
    template_id = permissions.template_identity(body)
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    profile = props.get("vmProfile") if isinstance(props.get("vmProfile"), dict) else {}
    wanted = [("identity.userAssignedIdentities", template_id)] if template_id else []
    wanted += [(f"properties.vmProfile.userAssignedIdentities[{index}]", item)
               for index, item in enumerate(listed(profile.get("userAssignedIdentities"))) if isinstance(item, str)]
    for path, resource_id in wanted:
        if _placeholder(resource_id) or not schema.IDENTITY_ID.match(resource_id):
            continue
        try:
            found = azure.identity(resource_id)
        except azure.AzureError as exc:
            problems.append(_environment_failure("identity", path, "the user-assigned identity", exc))
            continue
        name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        group = resource_id.split("/")[4]
        if found is None:
            problems.append(Problem("identity.missing", path,
                                    f"The user-assigned identity '{name}' does not exist ({resource_id}). Create it "
                                    f"(az identity create --name {name} --resource-group {group}) or pick another."))
            continue
        if resource_id == template_id:
            found_template = found
            if found.subscription.lower() != subscription.lower():
                problems.append(Problem("identity.subscription", path,
                                        f"The template identity '{name}' is in subscription {found.subscription}, "
                                        f"not in {subscription} where the template is created: use an identity of "
                                        "that subscription."))
    return problems, found_template


def check_staging_group(body: dict, *, subscription: str | None = None) -> tuple[list[Problem], bool | None]:
    """A staging group the template names: in the template's subscription and, when it exists
    already (brought by its owner), empty and in the build region. A name that does not exist
    (a Goldsmith-named group) is created by Image Builder. Returns the problems and whether the
    group exists (None when not named or unknown)."""
    subscription = subscription or settings.AZURE_SUBSCRIPTION_ID
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    staging = props.get("stagingResourceGroup")
    path = "properties.stagingResourceGroup"
    if not isinstance(staging, str) or not staging or _placeholder(staging) \
            or not schema.RESOURCE_GROUP_ID.match(staging):
        return [], None
    sub, name = staging.split("/")[2], staging.rstrip("/").rsplit("/", 1)[-1]
    if sub.lower() != subscription.lower():
        return [Problem("staging.subscription", path,
                        f"The staging resource group must be in the template's subscription ({subscription}), not "
                        f"in {sub}.")], None
    try:
        group = azure.resource_group(subscription, name)
    except azure.AzureError as exc:
        return [_environment_failure("staging", path, "the staging resource group", exc)], None
    if group is None:
        return [], False
    problems = []
    location = azure.normalize_location(body.get("location") or "")
    if location and group.location != location:
        problems.append(Problem("staging.location", path,
                                f"The staging resource group '{name}' is in {group.location}; Image Builder needs it "
                                f"in the build region {location}. Use a group in {location}, or a new name for "
                                "Image Builder to create."))
    if group.resource_count:
        problems.append(Problem("staging.not-empty", path,
                                f"The staging resource group '{name}' is not empty; Image Builder needs an empty group "
                                "(one per template). Empty it, or give a new name for Image Builder to create."))
    return problems, True


def check_permissions(body: dict, *, subscription: str | None = None, resource_group: str | None = None,
                      identity: azure.Identity | None = None, staging_exists: bool | None = None) -> list[Problem]:
    """What the template identity and the portal's principal (AZURE_PRINCIPAL_ID) must be
    allowed to do (builds/permissions.py), against their role assignments: one
    `permission.missing` error per row that is not granted, with the role, the scope and the
    `az role assignment create` command that fixes it. A principal that looks short of a
    permission is read again, uncached, before it is reported."""
    subscription = subscription or settings.AZURE_SUBSCRIPTION_ID
    resource_group = resource_group or settings.AZURE_RESOURCE_GROUP
    rows = permissions.requirements(body, subscription=subscription, resource_group=resource_group,
                                    staging_exists=staging_exists)
    principals = {permissions.TEMPLATE_IDENTITY: identity.principal_id if identity else "",
                  permissions.PORTAL: settings.AZURE_PRINCIPAL_ID}
    problems: list[Problem] = []
    if not settings.AZURE_PRINCIPAL_ID:
        problems.append(Problem("permission.not-checked", "",
                                "The portal's own permissions were not checked: set AZURE_PRINCIPAL_ID to its object "
                                "id to check them.", "warning"))
    try:
        definitions = dict(azure.role_definitions(subscription=subscription))
        for who, principal in principals.items():
            mine = [row for row in rows if row.who == who and not _placeholder(row.scope)]
            if not principal or not mine:
                continue
            assignments = azure.role_assignments(principal, subscription=subscription)
            lacking = _lacking(mine, assignments, definitions, subscription)
            if lacking:
                assignments = azure.role_assignments(principal, subscription=subscription, fresh=True)
                lacking = _lacking(mine, assignments, definitions, subscription)
            problems += [permissions.problem(row, principal, actions) for row, actions in lacking]
    except azure.AzureError as exc:
        if exc.status == 403:
            problems.append(Problem("permission.not-checked", "",
                                    f"Goldsmith may not read role assignments in subscription {subscription} "
                                    f"({exc.code}), so permissions were not checked. Give the portal's principal the "
                                    "Reader role to have them checked.", "warning"))
        else:
            problems.append(_environment_failure("permission", "", "role assignments", exc))
    return problems


def _lacking(rows: list[permissions.Requirement], assignments: Sequence[permissions.Assignment],
             definitions: dict[str, permissions.RolePermissions],
             subscription: str) -> list[tuple[permissions.Requirement, tuple[str, ...]]]:
    for assignment in assignments:  # custom roles assignable elsewhere are read one by one
        key = permissions.role_key(assignment.role_definition_id)
        if key not in definitions:
            found = azure.role_definition(assignment.role_definition_id, subscription=subscription)
            if found is not None:
                definitions[key] = found
    out = []
    for row in rows:
        missing = permissions.missing(row, assignments, definitions)
        if missing:
            out.append((row, missing))
    return out


def check_azure_policy(body: dict, *, subscription: str | None = None) -> list[Problem]:
    """Azure Policy deny assignments that would refuse what Image Builder creates for the build
    (the staging group, its storage account, the build VM and its network): `policy.deny`
    errors; `policy.not-checked` when assignments cannot be read or a rule cannot be evaluated."""
    subscription = subscription or settings.AZURE_SUBSCRIPTION_ID
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    staging = props.get("stagingResourceGroup")
    scope = staging if isinstance(staging, str) and schema.RESOURCE_GROUP_ID.match(staging) \
        else f"/subscriptions/{subscription}"
    try:
        assignments = azure.policy_denies(scope)
    except azure.AzureError as exc:
        return [Problem("policy.not-checked", "",
                        f"Azure Policy was not checked: Goldsmith could not read the policy assignments for {scope} "
                        f"({exc.code}).", "warning")]
    problems: list[Problem] = []
    resources = azpolicy.staging_resources(body)
    for assignment in assignments:
        unknown = False
        for resource in resources:
            verdict = azpolicy.denies(assignment.rule, assignment.parameters, resource, mode=assignment.mode)
            if verdict is None:
                unknown = True
                break
            if verdict:
                problems.append(Problem(
                    "policy.deny", _policy_path(assignment.rule),
                    f"Azure Policy '{assignment.display_name}' (assigned at {assignment.scope}) would refuse "
                    f"{resource.what} ({resource.type} in {resource.location or 'the build region'}). Change the "
                    "template (region, managedResourceTags, network) to comply, or ask for an exemption."))
        if unknown:
            problems.append(Problem("policy.not-checked", "",
                                    f"Azure Policy '{assignment.display_name}' denies resources by rules Goldsmith "
                                    "cannot evaluate, so it was not checked.", "warning"))
    return problems


def _policy_path(rule: dict) -> str:
    text = json.dumps(rule.get("if") or {}).lower()
    if "tags" in text:
        return "properties.managedResourceTags"
    if "location" in text:
        return "location"
    return "properties.vmProfile.vnetConfig"


# --- Build VM size choices (the wizard's and the layer forms' size picker) ----------------------------

_prices_cache: dict[str, tuple[float, dict[str, float]]] = {}


def vm_prices() -> dict[str, float]:
    """Prices per hour from settings.BUILD_VM_PRICES_FILE ({} when unset or unreadable), re-read
    when the file changes."""
    path = settings.BUILD_VM_PRICES_FILE
    if not path:
        return {}
    try:
        mtime = os.stat(path).st_mtime
        cached = _prices_cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        with open(path, encoding="utf-8") as handle:
            prices = placement.parse_prices(json.load(handle))
    except (OSError, ValueError):
        return {}
    _prices_cache[path] = (mtime, prices)
    return prices


def vm_size_choices(location: str, *, subscription: str | None = None, generation: str = "",
                    security_type: str = "", architecture: str = "",
                    policy: Policy | PolicyRules | str | None = None) -> tuple[list[placement.SizeChoice], str]:
    """Sizes offered in the region that fit the image (generation V1/V2, security type
    TrustedLaunch/ConfidentialVM, architecture), within the policy's list, smallest first, each
    with vCPUs, memory and (with BUILD_VM_PRICES_FILE) a rough price per build-hour; and a note
    when the sizes cannot be listed (never raises)."""
    if not location or _placeholder(location):
        return [], ""
    security = {"TrustedLaunch": placement.TRUSTED_LAUNCH, "ConfidentialVM": placement.CONFIDENTIAL}.get(
        security_type, "")
    needs = placement.Needs(generation=generation, architecture=architecture, security=security)
    try:
        skus = azure.vm_skus(location, subscription=subscription or settings.AZURE_SUBSCRIPTION_ID)
    except azure.AzureError as exc:
        return [], f"The VM sizes of {location} could not be listed ({exc.code}); type a size instead."
    return placement.size_choices(skus, vm_prices(), currency=settings.BUILD_VM_PRICES_CURRENCY, needs=needs,
                                  allowed=policy_rules(policy).allowed_vm_sizes), ""


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
