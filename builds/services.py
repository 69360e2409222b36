"""Every write to the catalog: each service checks its preconditions, changes the rows and
records exactly one audit event in the same transaction.

Published gold image and layer versions are immutable; the services refuse to change them
(ImmutableVersion) and a new version is the way to change anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from builds import (
    compose,
    importer,
    lifecycle,
    preflight,
    queue,
    release,
    schema,
    signals,
    stuck,
    validation,
    validators,
)
from builds.models import Build, BuildEvent, BuildLayer, GoldImage, GoldImageVersion, Layer, LayerVersion, OsType
from builds.schema import Problem
from builds.versions import Version, VersionError, VersionRange, major_range, newest, newest_above
from notify import events
from portal import audit
from portal.audit import Actor
from portal.models import Department


class ServiceError(Exception):
    """A request the catalog refuses; `problems` name fields when there are several."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()):
        super().__init__(message)
        self.message = message
        self.problems = list(problems)


class ImmutableVersion(ServiceError):
    """Published (or later) versions never change: make a new version instead."""


# Content fields of a gold image version: what a draft may change and what makes up a version.
GOLD_CONTENT_FIELDS = (
    "source", "security_type", "hyper_v_generation", "customize_before", "customize_after",
    "validators_before", "validators_after", "validate_options", "distribute", "vm_profile", "identity",
    "build_timeout_minutes", "error_handling", "optimize", "staging_resource_group", "managed_resource_tags",
    "tags", "extra_properties", "subscription_id", "resource_group", "location", "changelog", "wizard_step",
)
LAYER_CONTENT_FIELDS = ("accepts", "customize", "validators", "tags", "network", "changelog")


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    return {key: [before.get(key), after[key]] for key in after if before.get(key) != after[key]}


def _snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in fields}


def _parse_version(text: str) -> Version:
    if message := validators.version_problem(text):
        raise ServiceError(message, [Problem("version.format", "version", message)])
    return Version.parse(text)


def _check_slug_and_name(slug: str, name: str) -> None:
    """The field rules of builds/validators.py, as a ServiceError naming each field."""
    problems = []
    if message := validators.slug_problem(slug):
        problems.append(Problem("catalog.slug", "slug", message))
    if message := validators.name_problem(name):
        problems.append(Problem("name.invisible-character", "name", f"This name {message}"))
    if problems:
        raise ServiceError(" ".join(problem.message for problem in problems), problems)


# --- Gold images ---------------------------------------------------------------------------------


@transaction.atomic
def gold_image_create(*, actor: Actor, slug: str, name: str, os_type: str, description: str = "") -> GoldImage:
    """Create a gold image (no versions yet). Raises ServiceError for a slug or name the field
    rules refuse (builds/validators.py) or a slug that is taken."""
    _check_slug_and_name(slug, name)
    if os_type not in OsType.values:
        raise ServiceError(f"OS type must be one of {', '.join(OsType.values)}.")
    if GoldImage.objects.filter(slug=slug).exists():
        raise ServiceError(f"A gold image called '{slug}' already exists.",
                           [Problem("catalog.slug-taken", "slug", f"'{slug}' is already used by another gold image.")])
    image = GoldImage.objects.create(slug=slug, name=name, os_type=os_type, description=description,
                                     created_by=_user(actor))
    audit.record("gold_image.create", actor=actor, obj=image,
                 changes={"slug": [None, slug], "name": [None, name], "os_type": [None, os_type]})
    return image


def _version_taken(owner: str, version: str) -> ServiceError:
    return ServiceError(f"{owner} already has a version {version}.",
                        [Problem("catalog.version-taken", "version", f"Version {version} already exists.")])


def _insert_version(row: GoldImageVersion | LayerVersion, owner: str) -> None:
    """Insert a new version row. A concurrent request that took the number between the caller's
    check and this insert (the unique constraint) is refused with the same error as the check."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError as exc:
        raise _version_taken(owner, row.version) from exc


def _order_warnings(owner: str, version: str, existing: Iterable[str]) -> list[Problem]:
    """A version numbered below the newest one is allowed (a fix to an older line) but easy to
    get wrong: every list and every layer range treats the highest number as the newest."""
    above = newest_above(version, existing)
    if above is None:
        return []
    return [Problem("version.below-newest", "version",
                    f"{version} is below {above}, the newest version of {owner}, so it will not be listed or "
                    f"picked as the newest. That is right for a fix to an older line; otherwise number it above "
                    f"{above}.", "warning")]


@transaction.atomic
def gold_version_create(*, actor: Actor, gold_image: GoldImage, version: str, based_on: GoldImageVersion | None = None,
                        import_notes: list | None = None, **content: Any) -> GoldImageVersion:
    """A new draft version, optionally copying another version's content first, then `content`.

    The returned row's `warnings` lists what is allowed but deserves a look (version.below-newest:
    numbered below the image's newest version). Raises ServiceError for a malformed or existing
    version number or unknown fields.
    """
    _parse_version(version)
    unknown = set(content) - set(GOLD_CONTENT_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown gold version fields: {', '.join(sorted(unknown))}.")
    existing = list(gold_image.versions.values_list("version", flat=True))
    if version in existing:
        raise _version_taken(gold_image.slug, version)
    values = _snapshot(based_on, GOLD_CONTENT_FIELDS) if based_on else {}
    values.pop("wizard_step", None)
    values.update(content)
    gold_version = GoldImageVersion(gold_image=gold_image, version=version, created_by=_user(actor),
                                    import_notes=import_notes or [], **values)
    _insert_version(gold_version, gold_image.slug)
    changes: dict[str, list] = {"version": [None, version]}
    if based_on:
        changes["based_on"] = [None, str(based_on)]
    if import_notes is not None:
        changes["imported_with_problems"] = [None, len(import_notes)]
    action = "gold_version.import" if import_notes is not None else "gold_version.create"
    audit.record(action, actor=actor, obj=gold_version, changes=changes)
    gold_version.warnings = _order_warnings(gold_image.slug, version, existing)
    return gold_version


@transaction.atomic
def gold_version_update(*, actor: Actor, gold_version: GoldImageVersion, **changes: Any) -> GoldImageVersion:
    """Change a draft's content. Raises ImmutableVersion unless the version is a draft."""
    gold_version = GoldImageVersion.objects.select_for_update().get(pk=gold_version.pk)
    if not gold_version.is_draft:
        raise ImmutableVersion(f"{gold_version} is {gold_version.status}: published versions never change; "
                               "create a new version instead.")
    unknown = set(changes) - set(GOLD_CONTENT_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown gold version fields: {', '.join(sorted(unknown))}.")
    before = _snapshot(gold_version, changes)
    for name, value in changes.items():
        setattr(gold_version, name, value)
    gold_version.save()
    diff = _diff(before, changes)
    if diff:
        audit.record("gold_version.update", actor=actor, obj=gold_version, changes=diff)
    return gold_version


def gold_version_problems(gold_version: GoldImageVersion) -> list[Problem]:
    """Schema problems of the version's baseline template (what publishing refuses)."""
    return schema.check_template(compose.baseline(gold_version, settings.AZURE_LOCATION,
                                                  subscription=settings.AZURE_SUBSCRIPTION_ID, provenance=True,
                                                  policy=preflight.policy_rules()))


def gold_version_publish(*, actor: Actor, gold_version: GoldImageVersion, reason: str = "",
                         lookups: bool = True, detail: dict | None = None) -> GoldImageVersion:
    """Draft -> published, after the baseline passes every rule: the schema, and
    preflight.publish_problems (catalog look-ups of the source and targets, security types,
    build VM, policy, secrets). Every way to publish (the gold version page, the wizard,
    importtemplate) reaches it through a publish request and its approvals (builds/approvals.py),
    which call this in the transaction of the last approval with `detail` (the request, the
    approvers, break-glass) for the one audit event; so none can skip a rule.

    `lookups=False` skips the catalog look-ups only (what runs without Azure or the emulator:
    tests' factories, the demo seed); every other rule still runs. The look-ups run before
    the row is locked, so no Azure call holds a database lock.
    Raises ServiceError listing the problems, or ImmutableVersion if it is not a draft.
    """
    checks = preflight.publish_problems(gold_version, lookups=lookups) if gold_version.is_draft else []
    return _gold_version_publish(actor=actor, gold_version=gold_version, reason=reason, checks=checks, detail=detail)


@transaction.atomic
def _gold_version_publish(*, actor: Actor, gold_version: GoldImageVersion, reason: str,
                          checks: list[Problem], detail: dict | None = None) -> GoldImageVersion:
    gold_version = GoldImageVersion.objects.select_for_update().get(pk=gold_version.pk)
    if not gold_version.is_draft:
        raise ImmutableVersion(f"{gold_version} is already {gold_version.status}.")
    problems = schema.errors(gold_version_problems(gold_version) + checks)
    if problems:
        raise ServiceError(f"{gold_version} cannot be published until these problems are fixed.", problems)
    gold_version.status = GoldImageVersion.Status.PUBLISHED
    gold_version.published_by = _user(actor)
    gold_version.published_at = timezone.now()
    gold_version.status_reason = reason
    gold_version.save()
    audit.record("gold_version.publish", actor=actor, obj=gold_version,
                 changes={"status": ["draft", "published"], **({"reason": [None, reason]} if reason else {}),
                          **(detail or {})})
    events.version_event(gold_version, "version.published", actor=actor, reason=reason)
    signals.version_released.send(sender=GoldImageVersion, gold_version=gold_version, channel="", actor=actor)
    return gold_version


@transaction.atomic
def gold_version_deprecate(*, actor: Actor, gold_version: GoldImageVersion, reason: str) -> GoldImageVersion:
    """Published -> deprecated: still buildable, flagged as out of date. A reason is required."""
    return _gold_status_change(actor, gold_version, GoldImageVersion.Status.DEPRECATED, reason,
                               action="gold_version.deprecate")


@transaction.atomic
def gold_version_revoke(*, actor: Actor, gold_version: GoldImageVersion, reason: str) -> GoldImageVersion:
    """Published or deprecated -> revoked: nothing may be built from it any more. A reason is required."""
    return _gold_status_change(actor, gold_version, GoldImageVersion.Status.REVOKED, reason,
                               action="gold_version.revoke")


def _gold_status_change(actor: Actor, gold_version: GoldImageVersion, status: str, reason: str, *,
                        action: str) -> GoldImageVersion:
    gold_version = GoldImageVersion.objects.select_for_update().get(pk=gold_version.pk)
    if not reason.strip():
        raise ServiceError("Give a reason: it is shown to everyone whose images derive from this version.",
                           [Problem("catalog.reason-required", "reason", "A reason is required.")])
    if not gold_version.can_become(status):
        raise ServiceError(f"{gold_version} is {gold_version.status}; it cannot become {status}.")
    before = gold_version.status
    gold_version.status = status
    gold_version.status_reason = reason.strip()
    now = timezone.now()
    if status == GoldImageVersion.Status.DEPRECATED:
        gold_version.deprecated_by, gold_version.deprecated_at = _user(actor), now
    else:
        gold_version.revoked_by, gold_version.revoked_at = _user(actor), now
    gold_version.save()
    # Azure hears of it too: every gallery image version built from it (builds/release.py).
    fan_out = release.plan(gold_version=gold_version, action=action.rpartition(".")[2])
    audit.record(action, actor=actor, obj=gold_version,
                 changes={"status": [before, status], "reason": [None, reason.strip()],
                          **({"gallery_versions": [None, fan_out]} if fan_out else {})})
    events.version_event(gold_version, f"version.{status}", actor=actor, reason=reason.strip())
    return gold_version


@transaction.atomic
def gold_version_import(*, actor: Actor, gold_slug: str, version: str, data: Any, publish: bool = False,
                        resource_group: str = "", name: str = "",
                        publisher: Callable[[GoldImageVersion, list[Problem]], Any] | None = None,
                        ) -> tuple[GoldImageVersion, list[Problem]]:
    """Create a gold image version from an existing Image Builder template (any accepted form).

    Creates the gold image when it does not exist (OS guessed from the template). Returns the
    version (a draft) and the problems found: the import notes plus every policy and secret
    rule, so a draft with problems says what to fix before it can be published.

    publish=True runs exactly what the wizard's Publish runs (preflight.publish_problems:
    schema, catalog look-ups of the source and targets, security types, build VM, policy,
    secrets), after declaring the security type and generation the catalog reports for the
    source, as the wizard's Security step does, then hands the draft and those problems to
    `publisher` (required then): a publish request, or break-glass (builds/approvals.py). Any
    error raises ServiceError listing every problem and rolls the whole import back: no gold
    image, no version, no audit event.
    Raises importer.ImportError_ for input that does not match the schema, ServiceError for a
    bad slug, name or version.
    """
    if publish and publisher is None:
        raise ValueError("publish=True needs a publisher: publishing goes through a request.")
    parsed = importer.parse(data)
    image = GoldImage.objects.filter(slug=gold_slug).first()
    if image is None:
        image = gold_image_create(actor=actor, slug=gold_slug, name=name or gold_slug.replace("-", " ").title(),
                                  os_type=importer.guess_os_type(parsed.body))
    fields = importer.version_fields(parsed.body)
    if resource_group:
        fields["resource_group"] = resource_group
    if publish:
        fields.update(_declaration_from_catalog(fields, image.os_type))
    gold_version = gold_version_create(actor=actor, gold_image=image, version=version,
                                       import_notes=[problem.as_dict() for problem in parsed.problems], **fields)
    warnings = gold_version.warnings
    if publish:
        publisher(gold_version, preflight.publish_problems(gold_version))
        gold_version.refresh_from_db()
        return gold_version, parsed.problems + warnings
    rules = [problem for problem in preflight.publish_problems(gold_version, lookups=False)
             if validation.group_of(problem) in ("policy", "secret")]
    return gold_version, schema.dedupe(parsed.problems + rules + warnings)


def _declaration_from_catalog(fields: dict[str, Any], os_type: str) -> dict[str, str]:
    """The security type and generation the catalog reports for the source (what the wizard's
    Security step accepts); nothing when the source cannot be looked up (the publish checks
    then say why)."""
    location = fields["location"] or settings.AZURE_LOCATION
    facts, _notes = preflight.source_facts(fields["source"], location)
    if facts is None or not facts.found:
        return {}
    return validation.declaration_for(facts)


# --- Layers ------------------------------------------------------------------------------------------


@transaction.atomic
def layer_create(*, actor: Actor, department: Department, gold_image: GoldImage, slug: str, name: str,
                 description: str = "") -> Layer:
    """Create a department layer (no versions yet). Raises ServiceError for a slug or name the
    field rules refuse (builds/validators.py) or a slug the department already uses."""
    _check_slug_and_name(slug, name)
    if Layer.objects.filter(department=department, slug=slug).exists():
        raise ServiceError(f"{department.slug} already has a layer called '{slug}'.",
                           [Problem("catalog.slug-taken", "slug", f"'{slug}' is already used in this department.")])
    layer = Layer.objects.create(department=department, gold_image=gold_image, slug=slug, name=name,
                                 description=description, created_by=_user(actor))
    audit.record("layer.create", actor=actor, obj=layer, department=department,
                 changes={"slug": [None, slug], "gold_image": [None, gold_image.slug]})
    return layer


@transaction.atomic
def layer_version_create(*, actor: Actor, layer: Layer, version: str, based_on: LayerVersion | None = None,
                         **content: Any) -> LayerVersion:
    """A new draft layer version, optionally copying another version's steps first.

    Without `based_on` or `accepts`, the version accepts the gold image's current major version
    (layer_default_accepts), not every gold version. The returned row's `warnings` lists what
    is allowed but deserves a look (version.below-newest). Raises ServiceError for a malformed
    or existing version number, a bad range or unknown fields.
    """
    _parse_version(version)
    unknown = set(content) - set(LAYER_CONTENT_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown layer version fields: {', '.join(sorted(unknown))}.")
    existing = list(layer.versions.values_list("version", flat=True))
    if version in existing:
        raise _version_taken(str(layer), version)
    values = _snapshot(based_on, LAYER_CONTENT_FIELDS) if based_on else {"accepts": layer_default_accepts(layer)}
    values.update(content)
    _check_range(values["accepts"])
    layer_version = LayerVersion(layer=layer, version=version, created_by=_user(actor), **values)
    _insert_version(layer_version, str(layer))
    audit.record("layer_version.create", actor=actor, obj=layer_version, department=layer.department_id,
                 changes={"version": [None, version], **({"based_on": [None, str(based_on)]} if based_on else {})})
    layer_version.warnings = _order_warnings(str(layer), version, existing)
    return layer_version


def layer_default_accepts(layer: Layer) -> str:
    """The range a new layer starts with: the major version of its gold image's newest published
    version (^1 = >=1.0.0 <2.0.0), so the next major, which may break the layer, is a choice.
    Before anything is published, the newest version of any status; * when there is none."""
    gold_versions = layer.gold_image.versions
    found = newest(gold_versions.filter(status=GoldImageVersion.Status.PUBLISHED).values_list("version", flat=True))
    if found is None:
        found = newest(gold_versions.values_list("version", flat=True))
    return major_range(found) if found is not None else "*"


@transaction.atomic
def layer_version_update(*, actor: Actor, layer_version: LayerVersion, **changes: Any) -> LayerVersion:
    """Change a draft layer version. Raises ImmutableVersion unless it is a draft."""
    layer_version = LayerVersion.objects.select_for_update().select_related("layer").get(pk=layer_version.pk)
    if not layer_version.is_draft:
        raise ImmutableVersion(f"{layer_version} is {layer_version.status}: published versions never change; "
                               "create a new version instead.")
    unknown = set(changes) - set(LAYER_CONTENT_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown layer version fields: {', '.join(sorted(unknown))}.")
    if "accepts" in changes:
        _check_range(changes["accepts"])
    before = _snapshot(layer_version, changes)
    for field_name, value in changes.items():
        setattr(layer_version, field_name, value)
    layer_version.save()
    diff = _diff(before, changes)
    if diff:
        audit.record("layer_version.update", actor=actor, obj=layer_version,
                     department=layer_version.layer.department_id, changes=diff)
    return layer_version


def layer_version_problems(layer_version: LayerVersion) -> list[Problem]:
    """Schema problems of the layer's own steps (composition checks come with a gold version)."""
    os_type = layer_version.layer.gold_image.os_type
    problems: list[Problem] = []
    for index, step in enumerate(layer_version.customize):
        problems += schema.check_customizer(step, f"customize[{index}]", os_type=os_type)
    for index, step in enumerate(layer_version.validators):
        problems += schema.check_validator(step, f"validators[{index}]", os_type=os_type)
    return problems


@transaction.atomic
def layer_version_publish(*, actor: Actor, layer_version: LayerVersion,
                          extra_problems: Iterable[Problem] = (), detail: dict | None = None) -> LayerVersion:
    """Draft -> published after the layer's own schema checks (and any extra checks given).

    Like gold_version_publish, reached through a publish request's last approval
    (builds/approvals.py), which passes `detail` for the one audit event."""
    layer_version = LayerVersion.objects.select_for_update().select_related("layer").get(pk=layer_version.pk)
    if not layer_version.is_draft:
        raise ImmutableVersion(f"{layer_version} is already {layer_version.status}.")
    problems = schema.errors(layer_version_problems(layer_version) + list(extra_problems))
    if problems:
        raise ServiceError(f"{layer_version} cannot be published until these problems are fixed.", problems)
    layer_version.status = LayerVersion.Status.PUBLISHED
    layer_version.published_by = _user(actor)
    layer_version.published_at = timezone.now()
    layer_version.save()
    audit.record("layer_version.publish", actor=actor, obj=layer_version, department=layer_version.layer.department_id,
                 changes={"status": ["draft", "published"], **(detail or {})})
    return layer_version


def _check_range(text: str) -> None:
    try:
        VersionRange.parse(text)
    except VersionError as exc:
        raise ServiceError(str(exc), [Problem("layer.accepts", "accepts", str(exc))]) from exc


def _user(actor: Actor):
    """The user to store in created_by/published_by columns; system actors need a real user there."""
    if actor is None or isinstance(actor, str):
        from django.contrib.auth import get_user_model

        user, _ = get_user_model().objects.get_or_create(username="goldsmith-system",
                                                         defaults={"is_active": False})
        return user
    return actor


# --- Builds ------------------------------------------------------------------------------------------


def build_problems(gold_version: GoldImageVersion, layer_versions: list[LayerVersion], body: dict) -> list[Problem]:
    """Every check that must pass before a build is submitted, on the exact composed body:
    schema, source and security types (looked up in Azure), build VM, policy and layering."""
    return preflight.check_build(gold_version, layer_versions, body=body)


@transaction.atomic
def build_request(*, actor: Actor, gold_version: GoldImageVersion, layer_versions: Iterable[LayerVersion] = (),
                  department: Department | None = None, rebuild_of: Build | None = None,
                  channel: str = "") -> Build:
    """Request a build of a gold version with department layers (in the order given).

    Composes the template, runs every check on the exact body, stores the build and enqueues
    its submit job when the transaction commits. `channel` names the release channel the gold
    version was resolved from (approvals.build_request_on_channel), kept as provenance.
    Raises ServiceError (with the problems) when anything would be refused; nothing is
    submitted then.
    """
    layer_versions = list(layer_versions)
    problems = build_preconditions(gold_version, layer_versions)
    if problems:
        raise ServiceError("This build cannot be requested.", problems)
    departments = {lv.layer.department_id for lv in layer_versions}
    if department is None and departments:
        department = layer_versions[0].layer.department
    if departments - ({department.pk} if department else set()):
        raise ServiceError("All layers of a build must belong to the department it is built for.",
                           [Problem("build.department", "layers", "Pick layers of one department.")])
    build_id = uuid.uuid4()
    context = compose.BuildContext(location=gold_version.location or settings.AZURE_LOCATION, build_id=build_id,
                                   requester=_user(actor).get_username(), subscription=settings.AZURE_SUBSCRIPTION_ID,
                                   exclude_from_latest=release.excluded_until_promoted(gold_version),
                                   policy=preflight.policy_rules())
    body = compose.compose(gold_version, layer_versions, context)
    problems = schema.errors(build_problems(gold_version, layer_versions, body))
    if problems:
        raise ServiceError("The composed template does not pass the checks; nothing was submitted.", problems)
    build = Build.objects.create(
        uuid=build_id, gold_version=gold_version, requested_by=_user(actor), department=department,
        rebuild_of=rebuild_of, channel=channel, template=body, template_sha256=compose.template_sha256(body),
        template_name=compose.template_name(build_id, gold_version.gold_image.slug),
        subscription_id=gold_version.subscription_id or settings.AZURE_SUBSCRIPTION_ID,
        resource_group=gold_version.resource_group or settings.AZURE_RESOURCE_GROUP,
        location=body["location"],
    )
    BuildLayer.objects.bulk_create(BuildLayer(build=build, layer_version=lv, position=index)
                                   for index, lv in enumerate(layer_versions))
    BuildEvent.objects.create(build=build, at=build.created_at, to_state=Build.State.PENDING, detail="requested")
    changes = {"gold_version": [None, str(gold_version)], "layers": [None, [str(lv) for lv in layer_versions]],
               "template_sha256": [None, build.template_sha256]}
    if rebuild_of:
        changes["rebuild_of"] = [None, str(rebuild_of.uuid)]
    if channel:
        changes["channel"] = [None, channel]
    audit.record("build.request", actor=actor, obj=build, department=department, changes=changes)
    queue.enqueue_submit(build)
    return build


def build_preconditions(gold_version: GoldImageVersion, layer_versions: list[LayerVersion]) -> list[Problem]:
    """What makes a build of these versions impossible before any template rule runs: a gold
    version that is not published or deprecated, layers that are not published, extend another
    gold image, do not accept the gold version by their range or are named twice. One place for
    build_request (the pages, the API, startbuild) and exporttemplate, so they refuse alike."""
    problems = []
    if not gold_version.is_buildable:
        problems.append(Problem("build.gold-status", "version",
                                f"{gold_version} is {gold_version.status}: only published or deprecated versions "
                                "can be built."))
    seen = set()
    for index, layer_version in enumerate(layer_versions):
        where = f"layers[{index}]"
        if layer_version.status != LayerVersion.Status.PUBLISHED:
            problems.append(Problem("build.layer-status", where,
                                    f"{layer_version} is {layer_version.status}: publish it before building."))
        if layer_version.layer.gold_image_id != gold_version.gold_image_id:
            problems.append(Problem("build.layer-gold-image", where,
                                    f"{layer_version} extends {layer_version.layer.gold_image.slug}, not "
                                    f"{gold_version.gold_image.slug}."))
        elif not VersionRange.parse(layer_version.accepts).allows(gold_version.version):
            problems.append(Problem("build.layer-range", where,
                                    f"{layer_version} accepts gold versions {layer_version.accepts}, not "
                                    f"{gold_version.version}: make a layer version that accepts it."))
        if layer_version.layer_id in seen:
            problems.append(Problem("build.layer-twice", where, f"{layer_version.layer} is listed twice."))
        seen.add(layer_version.layer_id)
    return problems


@transaction.atomic
def build_cancel(*, actor: Actor, build: Build) -> Build:
    """Cancel an active build. Before its run starts it is canceled here; once running,
    Image Builder is asked to cancel (the sweep follows Canceling to Canceled).

    A build canceling for too long (builds/stuck.py) has its cancel sent to Image Builder
    again (asking twice is harmless); any other canceling build is left as it is.

    Raises ServiceError when the build has already finished.
    """
    build = Build.objects.select_for_update().get(pk=build.pk)
    if build.is_terminal:
        raise ServiceError(f"The build has already {build.get_state_display().lower()}.")
    if build.state == Build.State.CANCELING:
        if stuck.is_stuck(build):
            audit.record("build.cancel", actor=actor, obj=build, department=build.department_id,
                         changes={"state": [build.state, build.state], "stuck": True})
            queue.enqueue_cancel(build)
        return build
    now = timezone.now()
    Build.objects.filter(pk=build.pk).update(cancel_requested=True, cancel_requested_at=now)
    audit.record("build.cancel", actor=actor, obj=build, department=build.department_id,
                 changes={"state": [build.state, "canceling" if build.run_started else "canceled"]})
    if build.state == Build.State.PENDING and (build.lease_until is None or build.lease_until < now):
        return lifecycle.transition(build, state=Build.State.CANCELED, detail="canceled before submission",
                                    actor=actor, audited=False)
    if build.run_started:
        build = lifecycle.transition(build, state=Build.State.CANCELING, detail="cancel requested", actor=actor,
                                     audited=False)
        queue.enqueue_cancel(build)
        return build
    # A submit job holds it: it sees cancel_requested and stops before starting the run.
    return Build.objects.get(pk=build.pk)


def build_rebuild(*, actor: Actor, build: Build) -> Build:
    """A new build of the same gold version and layers (checked again: a revoked version refuses)."""
    layer_versions = [bl.layer_version for bl in build.build_layers.select_related("layer_version__layer")]
    return build_request(actor=actor, gold_version=build.gold_version, layer_versions=layer_versions,
                         department=build.department, rebuild_of=build)
