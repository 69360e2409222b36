"""The funnel for catalog objects: gold images, layers and builds, through portal.access.

The rules and the 404/403 order are portal/access.py's (its docstring has them); the getters
here name the builds models, so they live with them. Views and the API import this module
only: it re-exports the primitives (roles_of, require, deny, role_required, scope_q,
audit_events and the role names), so `access.<name>` reads the same everywhere.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from builds import stuck
from builds.models import Build, GoldImage, GoldImageVersion, Layer, LayerVersion, PublishRequest
from portal.access import (  # noqa: F401 - re-exported: the one access module views use
    ADMIN,
    AUDITOR,
    EDITOR,
    NEEDS,
    NO_ROLES,
    ROLES,
    SECURITY,
    Roles,
    _check_need,
    audit_events,
    deny,
    forget_roles,
    require,
    role_required,
    roles_of,
    scope_q,
)

# What editors may see of the security team's work: everything but drafts.
VISIBLE_GOLD_STATUSES = (GoldImageVersion.Status.PUBLISHED, GoldImageVersion.Status.DEPRECATED,
                         GoldImageVersion.Status.REVOKED)

# Roles that may see catalog objects at all: anybody else gets 403 before any lookup.
_SEES = (SECURITY, EDITOR, AUDITOR)
# Builds are also open to the admin role, read-only (the operator page links to them): it
# sees every build, and may cancel one only when it is stuck (builds/stuck.py).
_SEES_BUILDS = (*_SEES, ADMIN)
# Who may do what with gold images they can see.
_GOLD_NEEDS = {"view": (SECURITY, EDITOR, AUDITOR), "change": (SECURITY,), "build": (SECURITY, EDITOR)}


def _first_gate(user: Any, need: str) -> Roles:
    _check_need(need)
    return require(user, *_SEES)


def _may_gold(roles: Roles, need: str) -> bool:
    return any(roles.has(role) for role in _GOLD_NEEDS[need])


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    """A malformed UUID in a URL is "not found", never a server error."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- Gold images ----------------------------------------------------------------------------


def gold_images(user: Any) -> QuerySet[GoldImage]:
    """Gold images the user may see: all for security and auditors; for editors those with a
    version that is not a draft; none for anybody else."""
    roles = roles_of(user)
    if roles.security or roles.auditor:
        return GoldImage.objects.all()
    if roles.editor:
        visible = GoldImageVersion.objects.filter(gold_image=OuterRef("pk"), status__in=VISIBLE_GOLD_STATUSES)
        return GoldImage.objects.filter(Exists(visible))
    return GoldImage.objects.none()


def gold_versions(user: Any) -> QuerySet[GoldImageVersion]:
    """Gold image versions the user may see (editors: no drafts)."""
    roles = roles_of(user)
    queryset = GoldImageVersion.objects.select_related("gold_image")
    if roles.security or roles.auditor:
        return queryset
    if roles.editor:
        return queryset.filter(status__in=VISIBLE_GOLD_STATUSES)
    return queryset.none()


def get_gold_image(user: Any, slug: str, need: str = "view") -> GoldImage:
    """The gold image `slug`. Raises PermissionDenied (wrong role) or Http404 (missing, or an
    editor asking for an image that has only drafts)."""
    roles = _first_gate(user, need)
    gold_image = GoldImage.objects.filter(slug=slug).first()
    if gold_image is None:
        raise Http404("No such gold image.")
    if not gold_images(user).filter(pk=gold_image.pk).exists():
        deny(user, "gold image not visible to this user", obj=gold_image, status=404)
    if not _may_gold(roles, need):
        deny(user, f"may not {need} gold images", obj=gold_image)
    return gold_image


def get_gold_version(user: Any, slug: str, version: str, need: str = "view") -> GoldImageVersion:
    """Gold image version `slug`@`version` (a version string, e.g. "1.2.0").

    Raises PermissionDenied (wrong role) or Http404 (missing; a draft asked for by an editor).
    `need="build"` admits security and editors; whether the version is buildable (published
    or deprecated) is the build service's rule, not this one.
    """
    roles = _first_gate(user, need)
    gold_version = (GoldImageVersion.objects.select_related("gold_image")
                    .filter(gold_image__slug=slug, version=version).first())
    return _gold_version_checked(user, roles, gold_version, need)


def get_gold_version_by_uuid(user: Any, version_uuid: Any, need: str = "view") -> GoldImageVersion:
    """Like get_gold_version, by `GoldImageVersion.uuid` (URLs that carry the UUID)."""
    roles = _first_gate(user, need)
    parsed = _uuid_or_none(version_uuid)
    gold_version = GoldImageVersion.objects.select_related("gold_image").filter(uuid=parsed).first() if parsed else None
    return _gold_version_checked(user, roles, gold_version, need)


def _gold_version_checked(user: Any, roles: Roles, gold_version: GoldImageVersion | None,
                          need: str) -> GoldImageVersion:
    if gold_version is None:
        raise Http404("No such gold image version.")
    if not (roles.security or roles.auditor) and gold_version.status not in VISIBLE_GOLD_STATUSES:
        deny(user, "draft gold image versions are visible to the security team only", obj=gold_version, status=404)
    if not _may_gold(roles, need):
        deny(user, f"may not {need} gold image versions", obj=gold_version)
    return gold_version


# --- Layers ---------------------------------------------------------------------------------


def _departments_seen(user: Any, queryset: QuerySet, department_field: str, **editor_filter: Any) -> QuerySet:
    """All of `queryset` for security and auditors; for editors the rows whose `department_field`
    is one of their departments (and matching `editor_filter`); nothing for anyone else."""
    roles = roles_of(user)
    if roles.security or roles.auditor:
        return queryset
    if roles.editor:
        return queryset.filter(**{f"{department_field}__in": roles.editor_departments}, **editor_filter)
    return queryset.none()


def layers(user: Any) -> QuerySet[Layer]:
    """Layers the user may see: all for security and auditors, their departments' for editors."""
    return _departments_seen(user, Layer.objects.select_related("department", "gold_image"), "department_id")


def layer_versions(user: Any) -> QuerySet[LayerVersion]:
    """Layer versions of the layers the user may see."""
    return _departments_seen(user, LayerVersion.objects.select_related("layer__department", "layer__gold_image"),
                             "layer__department_id")


def get_layer(user: Any, department_slug: str, slug: str, need: str = "view") -> Layer:
    """Layer `slug` of department `department_slug`.

    Raises Http404 when missing or when an editor asks for another department's layer, and
    PermissionDenied when the user sees the layer but may not `need` it (only the
    department's editors change and build with layers).
    """
    roles = _first_gate(user, need)
    layer = (Layer.objects.select_related("department", "gold_image")
             .filter(department__slug=department_slug, slug=slug).first())
    return _layer_checked(user, roles, layer, need)


def _layer_checked(user: Any, roles: Roles, layer: Layer | None, need: str, obj: Any = None) -> Any:
    if layer is None:
        raise Http404("No such layer.")
    target = obj if obj is not None else layer
    edits = roles.edits(layer.department_id)
    if not (roles.security or roles.auditor or edits):
        deny(user, "layer of another department", obj=target, department=layer.department_id, status=404)
    # Only the department's own editors change layers or build with them.
    if need != "view" and not edits:
        deny(user, f"may not {need} this department's layers", obj=target, department=layer.department_id)
    return target


def get_layer_version(user: Any, department_slug: str, slug: str, version: str, need: str = "view") -> LayerVersion:
    """Version `version` of layer `department_slug`/`slug`; same outcomes as get_layer."""
    roles = _first_gate(user, need)
    layer_version = (LayerVersion.objects.select_related("layer__department", "layer__gold_image")
                     .filter(layer__department__slug=department_slug, layer__slug=slug, version=version).first())
    return _layer_checked(user, roles, layer_version.layer if layer_version else None, need, layer_version)


def get_layer_version_by_uuid(user: Any, version_uuid: Any, need: str = "view") -> LayerVersion:
    """Like get_layer_version, by `LayerVersion.uuid`."""
    roles = _first_gate(user, need)
    parsed = _uuid_or_none(version_uuid)
    layer_version = (LayerVersion.objects.select_related("layer__department", "layer__gold_image")
                     .filter(uuid=parsed).first()) if parsed else None
    return _layer_checked(user, roles, layer_version.layer if layer_version else None, need, layer_version)


# --- Builds ---------------------------------------------------------------------------------


def builds(user: Any) -> QuerySet[Build]:
    """Builds the user may see: all for security, auditors and the admin role (read-only),
    their departments' for editors.

    A build belongs to the department recorded on it (`Build.department`); gold-only builds
    requested by the security team have none and are not visible to editors.
    """
    roles = roles_of(user)
    queryset = Build.objects.select_related("gold_version__gold_image", "department", "requested_by")
    if roles.security or roles.auditor or roles.admin:
        return queryset
    if roles.editor:
        return queryset.filter(department_id__in=roles.editor_departments)
    return queryset.none()


def may_act_on_build(roles: Roles, build: Build, need: str) -> bool:
    """Whether `roles` may `need` ("change": cancel, "build": rebuild) a build they see:
    security any, editors their department's; the admin role may cancel a stuck build only."""
    if roles.security or roles.edits(build.department_id):
        return True
    return need == "change" and roles.admin and stuck.is_stuck(build)


def get_build(user: Any, build_uuid: Any, need: str = "view") -> Build:
    """The build with `Build.uuid == build_uuid` (a UUID or its string form).

    Raises Http404 when missing, malformed or another department's (for editors), and
    PermissionDenied when the user sees it but may not `need` it: "change" (cancel) and
    "build" (rebuild) are for security (any build) and editors (their department's); the
    admin role sees every build and may only cancel a stuck one (builds/stuck.py).
    """
    _check_need(need)
    roles = require(user, *_SEES_BUILDS)
    parsed = _uuid_or_none(build_uuid)
    build = (Build.objects.select_related("gold_version__gold_image", "department", "requested_by")
             .filter(uuid=parsed).first()) if parsed else None
    if build is None:
        raise Http404("No such build.")
    in_department = roles.edits(build.department_id)
    if not (roles.security or roles.auditor or roles.admin or in_department):
        deny(user, "build of another department", obj=build, department=build.department_id, status=404)
    if need != "view" and not may_act_on_build(roles, build, need):
        reason = "may cancel only a stuck build" if roles.admin and need == "change" else f"may not {need} this build"
        deny(user, reason, obj=build, department=build.department_id)
    return build


# --- Publish requests (four eyes) -------------------------------------------------------------


def publish_requests(user: Any) -> QuerySet[PublishRequest]:
    """Requests the user may see: all for security and auditors; the layer requests of their
    departments for editors (gold requests name drafts, which editors never see)."""
    queryset = PublishRequest.objects.select_related(
        "gold_version__gold_image", "layer_version__layer__department", "layer_version__layer__gold_image",
        "author", "channel", "department")
    return _departments_seen(user, queryset, "department_id", kind=PublishRequest.Kind.LAYER)


def get_publish_request(user: Any, request_uuid: Any, need: str = "view") -> PublishRequest:
    """The request with that uuid. Http404 when missing, malformed or out of the user's sight
    (another department's layer, a gold request for an editor); PermissionDenied when the user
    sees it but may not `need` it ("change": decide or withdraw, for security and the
    department's editors; the approval rules themselves are builds/policies.py's)."""
    roles = _first_gate(user, need)
    parsed = _uuid_or_none(request_uuid)
    found = publish_requests(user).filter(uuid=parsed).first() if parsed else None
    if found is None:
        exists = PublishRequest.objects.filter(uuid=parsed).first() if parsed else None
        if exists is not None:
            deny(user, "publish request out of sight", obj=exists, department=exists.department_id, status=404)
        raise Http404("No such publish request.")
    if need != "view" and not (roles.security or roles.edits(found.department_id)):
        deny(user, f"may not {need} this publish request", obj=found, department=found.department_id)
    return found
