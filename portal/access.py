"""The permission funnel's primitives: roles, refusals, role gates and scoping.

Every view and API endpoint obtains objects only through the funnel; the getters that name
catalog models (gold images, layers, builds) are in builds/access.py, built on these, so this
module, like the rest of portal/, knows nothing of builds.

The rules (docs/security.md has the full table):

- security: gold images (every version), policy, all builds; may request gold-only builds.
- editor of department D: published/deprecated/revoked gold versions (drafts are hidden),
  D's layers (create, edit drafts, publish, build), D's builds.
- auditor: reads everything, changes nothing.
- admin: users, departments, memberships, operator pages; of the catalog, reads builds only
  and may cancel a stuck one (builds/access.py, builds/stuck.py).

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
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from portal import audit, json_errors
from portal.models import AuditEvent, Membership

SECURITY = Membership.Role.SECURITY.value
EDITOR = Membership.Role.EDITOR.value
AUDITOR = Membership.Role.AUDITOR.value
ADMIN = Membership.Role.ADMIN.value
ROLES = (SECURITY, EDITOR, AUDITOR, ADMIN)
NEEDS = ("view", "change", "build")

_CACHE_ATTR = "_goldsmith_roles"


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
                    return json_errors.json_error(401, json_errors.NOT_AUTHENTICATED,
                                                  "Authentication credentials were not provided.",
                                                  headers={"WWW-Authenticate": json_errors.BEARER_CHALLENGE})
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
