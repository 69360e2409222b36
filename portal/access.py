"""The permission funnel: every view and API endpoint obtains objects only through here.

The rules (docs/security.md has the full table):

- security: gold images (every version), policy, all builds; may request gold-only builds.
- editor of department D: published/deprecated/revoked gold versions (drafts are hidden),
  D's layers (create, edit drafts, publish, build), D's builds.
- auditor: reads everything, changes nothing.
- admin: users, departments, memberships, operator pages; no catalog access at all.

Outcomes follow one order, so a refusal never tells an outsider more than it should:

1. The user holds none of the roles that may ever touch this kind of object: PermissionDenied
   (403), before any lookup, so existence does not leak.
2. The object is missing, or it is outside the user's scope (another department's layer or
   build, a draft gold version for an editor): Http404 ("outsiders get 404").
3. The user sees the object but their role does not allow `need`: PermissionDenied (403).

Every refusal of an existing object, and every 403, is recorded as an `access.denied` audit
event with outcome "denied"; a plain "no such object" is not. Repeats of one refusal from one
address within a minute are counted into one event (`audit.record_refusal`). `need` is one of "view",
"change" (edit, publish, deprecate, revoke, cancel) or "build" (request a build from it or
rebuild it).

Superusers hold the admin role (so `createsuperuser` can bootstrap an installation); the
staff flag on its own grants nothing.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from builds.models import Build, GoldImage, GoldImageVersion, Layer, LayerVersion
from portal import audit
from portal.models import AuditEvent, Membership

SECURITY = Membership.Role.SECURITY.value
EDITOR = Membership.Role.EDITOR.value
AUDITOR = Membership.Role.AUDITOR.value
ADMIN = Membership.Role.ADMIN.value
ROLES = (SECURITY, EDITOR, AUDITOR, ADMIN)
NEEDS = ("view", "change", "build")

_CACHE_ATTR = "_goldsmith_roles"
# What editors may see of the security team's work: everything but drafts.
VISIBLE_GOLD_STATUSES = (GoldImageVersion.Status.PUBLISHED, GoldImageVersion.Status.DEPRECATED,
                         GoldImageVersion.Status.REVOKED)


@dataclass(frozen=True)
class Roles:
    """The roles one user holds. `editor_departments` holds Department ids."""

    security: bool = False
    auditor: bool = False
    admin: bool = False
    editor_departments: frozenset[int] = frozenset()

    @property
    def editor(self) -> bool:
        return bool(self.editor_departments)

    @property
    def any(self) -> bool:
        return self.security or self.auditor or self.admin or self.editor

    def has(self, role: str) -> bool:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        return getattr(self, role)

    def edits(self, department_id: int | None) -> bool:
        return department_id is not None and department_id in self.editor_departments

    @property
    def names(self) -> list[str]:
        """The role names held, in table order (for pages and the audit trail)."""
        return [role for role in ROLES if getattr(self, role)]


NO_ROLES = Roles()


def roles_of(user: Any) -> Roles:
    """The user's roles, read once per user object (i.e. once per request) and cached on it.

    Anonymous and inactive users hold no roles. Call `forget_roles(user)` after changing a
    user's memberships within the same request.
    """
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NO_ROLES
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    security = auditor = False
    admin = bool(user.is_superuser)
    departments = set()
    for role, department_id in Membership.objects.filter(user=user).values_list("role", "department_id"):
        if role == SECURITY:
            security = True
        elif role == AUDITOR:
            auditor = True
        elif role == ADMIN:
            admin = True
        elif role == EDITOR and department_id is not None:
            departments.add(department_id)
    roles = Roles(security=security, auditor=auditor, admin=admin, editor_departments=frozenset(departments))
    setattr(user, _CACHE_ATTR, roles)
    return roles


def forget_roles(user: Any) -> None:
    """Drop the cached roles (after a membership change in the same request)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


# --- Refusals -------------------------------------------------------------------------------


def _actor(user: Any):
    return user if getattr(user, "is_authenticated", False) else "anonymous"


def deny(user: Any, reason: str, *, obj: Any = None, object_type: str = "", object_id: str = "",
         department: Any = None, status: int = 403) -> None:
    """Record an `access.denied` event and raise PermissionDenied (status 403) or Http404 (404).

    Views that refuse something on their own (not through a get_* helper) call this so the
    refusal is audited the same way. The event is written in the caller's transaction: call the
    funnel before entering a `transaction.atomic()` block, or the refusal would roll it back.
    """
    changes = {"reason": reason, "status": status, "roles": roles_of(user).names}
    audit.record_refusal("access.denied", actor=_actor(user), obj=obj, object_type=object_type, object_id=object_id,
                         department=department, changes=changes, outcome=AuditEvent.Outcome.DENIED)
    if status == 404:
        raise Http404("Not found.")
    raise PermissionDenied(reason)


def require(user: Any, *allowed_roles: str) -> Roles:
    """Return the user's roles when they hold one of `allowed_roles`; else audit and raise PermissionDenied."""
    if not allowed_roles:
        raise ValueError("require() needs at least one role")
    roles = roles_of(user)
    if any(roles.has(role) for role in allowed_roles):
        return roles
    deny(user, f"needs one of the roles: {', '.join(allowed_roles)}")
    raise AssertionError("unreachable")  # pragma: no cover - deny() always raises


def _check_need(need: str) -> None:
    if need not in NEEDS:
        raise ValueError(f"unknown need {need!r}; expected one of {', '.join(NEEDS)}")


# Roles that may see catalog objects at all: anybody else gets 403 before any lookup.
_SEES = (SECURITY, EDITOR, AUDITOR)
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


def layers(user: Any) -> QuerySet[Layer]:
    """Layers the user may see: all for security and auditors, their departments' for editors."""
    roles = roles_of(user)
    queryset = Layer.objects.select_related("department", "gold_image")
    if roles.security or roles.auditor:
        return queryset
    if roles.editor:
        return queryset.filter(department_id__in=roles.editor_departments)
    return queryset.none()


def layer_versions(user: Any) -> QuerySet[LayerVersion]:
    """Layer versions of the layers the user may see."""
    roles = roles_of(user)
    queryset = LayerVersion.objects.select_related("layer__department", "layer__gold_image")
    if roles.security or roles.auditor:
        return queryset
    if roles.editor:
        return queryset.filter(layer__department_id__in=roles.editor_departments)
    return queryset.none()


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
    """Builds the user may see: all for security and auditors, their departments' for editors.

    A build belongs to the department recorded on it (`Build.department`); gold-only builds
    requested by the security team have none and are not visible to editors.
    """
    roles = roles_of(user)
    queryset = Build.objects.select_related("gold_version__gold_image", "department", "requested_by")
    if roles.security or roles.auditor:
        return queryset
    if roles.editor:
        return queryset.filter(department_id__in=roles.editor_departments)
    return queryset.none()


def get_build(user: Any, build_uuid: Any, need: str = "view") -> Build:
    """The build with `Build.uuid == build_uuid` (a UUID or its string form).

    Raises Http404 when missing, malformed or another department's (for editors), and
    PermissionDenied when the user sees it but may not `need` it: "change" (cancel) and
    "build" (rebuild) are for security (any build) and editors (their department's).
    """
    roles = _first_gate(user, need)
    parsed = _uuid_or_none(build_uuid)
    build = (Build.objects.select_related("gold_version__gold_image", "department", "requested_by")
             .filter(uuid=parsed).first()) if parsed else None
    if build is None:
        raise Http404("No such build.")
    in_department = roles.edits(build.department_id)
    if not (roles.security or roles.auditor or in_department):
        deny(user, "build of another department", obj=build, department=build.department_id, status=404)
    if need != "view" and not (roles.security or in_department):
        deny(user, f"may not {need} this build", obj=build, department=build.department_id)
    return build


# --- Audit ----------------------------------------------------------------------------------


def audit_events(user: Any) -> QuerySet[AuditEvent]:
    """Audit events the user may read: all for security and auditors, none for anybody else."""
    roles = roles_of(user)
    if roles.security or roles.auditor:
        return AuditEvent.objects.all()
    return AuditEvent.objects.none()


# --- Views ----------------------------------------------------------------------------------


def role_required(*roles: str):
    """View decorator: anonymous users go to sign-in (401 under /api/), users without one of
    `roles` get 403 (audited)."""
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if request.path.startswith("/api/"):
                    from portal.api import errors

                    return errors.json_error(401, errors.NOT_AUTHENTICATED,
                                             "Authentication credentials were not provided.",
                                             headers={"WWW-Authenticate": errors.BEARER_CHALLENGE})
                return redirect_to_login(request.get_full_path())
            require(request.user, *roles)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def scope_q(user: Any, department_field: str = "department") -> Q:
    """A Q restricting rows with a department column to what the user sees (for other helpers'
    query sets): everything for security and auditors, the user's departments for editors."""
    roles = roles_of(user)
    if roles.security or roles.auditor:
        return Q()
    if roles.editor:
        return Q(**{f"{department_field}__in": roles.editor_departments})
    return Q(pk__in=[])
