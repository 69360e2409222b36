"""The Django admin and the RQ dashboard, for the admin role only.

Django lets any active staff user into its admin; Goldsmith does not use the staff flag for
anything. Here:

- `GoldsmithAdminSite` (installed as the default site by portal.apps.GoldsmithAdminConfig, so
  every `admin.register` lands on it) admits only holders of the admin role; other signed-in
  users get an audited 403, anonymous users go to the portal's sign-in page.
- `AdminRolePermissions` (an authentication backend that authenticates nobody) gives the admin
  role Django's model permissions on what that role administers: users, groups, departments,
  memberships, role mappings, linked identities and API tokens. Catalog, builds and the audit
  trail stay out of its reach, as in the role table; superusers keep Django's "everything"
  for break-glass repairs.
- `rq_view` guards the django-rq dashboard mounted at /rq/ the same way.
"""

from __future__ import annotations

import functools
import json

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from portal import access, audit

# app_label.model_name the admin role administers through the Django admin.
ADMIN_ROLE_MODELS = frozenset({
    "auth.user", "auth.group",
    "portal.department", "portal.membership", "portal.rolemapping", "portal.externalidentity", "portal.apitoken",
})
ADMIN_ROLE_APPS = frozenset(label.split(".")[0] for label in ADMIN_ROLE_MODELS)


class AdminRolePermissions(BaseBackend):
    """Model permissions for the admin role (see module docstring); never authenticates."""

    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        if not access.roles_of(user_obj).admin or "." not in perm:
            return False
        app_label, codename = perm.split(".", 1)
        action, _, model = codename.partition("_")
        return action in {"view", "add", "change", "delete"} and f"{app_label}.{model}" in ADMIN_ROLE_MODELS

    def has_module_perms(self, user_obj, app_label: str) -> bool:
        return access.roles_of(user_obj).admin and app_label in ADMIN_ROLE_APPS


class GoldsmithAdminSite(admin.AdminSite):
    site_header = "Goldsmith administration"
    site_title = "Goldsmith administration"
    index_title = "Users, departments and sign-in"

    def has_permission(self, request) -> bool:
        return access.roles_of(request.user).admin

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        # Checked before Django's own wrapper, which would send a signed-in user without the
        # role round the login page instead of saying no.
        @functools.wraps(inner)
        def guarded(request, *args, **kwargs):
            if request.user.is_authenticated and not self.has_permission(request):
                access.deny(request.user, "the Django admin is for the admin role")
            return inner(request, *args, **kwargs)

        return guarded

    def login(self, request, extra_context=None):
        """The portal's sign-in page is the only one; signed-in users without the role get 403."""
        index = reverse("admin:index", current_app=self.name)
        wanted = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            wanted = index
        if request.user.is_authenticated:
            if not self.has_permission(request):
                access.deny(request.user, "the Django admin is for the admin role")
            return redirect(wanted)
        return redirect_to_login(wanted)

    def logout(self, request, extra_context=None):
        from portal.signin import logout_view

        return logout_view(request)


class AuditedAdmin(admin.ModelAdmin):
    """Records each admin change as one audit event (`<model>.create|update|delete`) in the
    transaction Django's admin wraps around the change."""

    def _audit(self, request, obj, verb: str, message="") -> None:
        department = getattr(obj, "department_id", None)
        audit.record(f"{obj._meta.model_name}.{verb}", actor=request.user, obj=obj, department=department,
                     changes={"admin": message} if message else None)

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "create", _text(message))
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "update", _text(message))
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "delete")
        return super().log_deletions(request, queryset)


def _text(message) -> str:
    """The admin's change message (a list of {"changed": {"fields": [...]}} dicts) as text."""
    if isinstance(message, list):
        return LogEntry(change_message=json.dumps(message)).get_change_message()
    return str(message or "")


def rq_view(view):
    """Wrap a django-rq view: sign-in required, admin role required (an audited 403 otherwise)."""

    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        access.require(request.user, access.ADMIN)
        # django-rq's views check Django's staff flag themselves; Goldsmith's check is the admin
        # role (just made), which stands in for the flag on this request's user object only.
        request.user.is_staff = True
        return view(request, *args, **kwargs)

    return guarded


def rq_patterns() -> list:
    """django-rq's URL patterns (dashboard and its JSON/metrics views), every one guarded."""
    from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

    patterns = get_api_urlpatterns() + get_admin_urlpatterns()
    for pattern in patterns:
        pattern.callback = rq_view(pattern.callback)
    return patterns


class ReadOnlyAdmin(admin.ModelAdmin):
    """Immutable history: viewable, never edited or deleted from the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
