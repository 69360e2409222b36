"""The Django admin and the RQ dashboard, for the admin role only.

Django lets any active staff user into its admin; Goldsmith does not use the staff flag for
anything. Here:

- `GoldsmithAdminSite` (installed as the default site by portal.apps.GoldsmithAdminConfig, so
  every `admin.register` lands on it) admits only holders of the admin role; other signed-in
  users get an audited 403, anonymous users go to the portal's sign-in page. It also serves the
  public page a set-password link opens (`SetPasswordView`).
- `AdminRolePermissions` (an authentication backend that authenticates nobody) gives the admin
  role Django's model permissions on what that role administers: users, departments,
  memberships, role mappings, linked identities and API tokens. Catalog, builds, Django's
  groups and the audit trail stay out of its reach, as in the role table; superusers keep
  Django's "everything" for break-glass repairs.
- `AuditedAdmin` audits every change, and refuses (audited, 403, nothing saved) what a model's
  admin says the requester may not do: the admin role manages people, never its own privileges
  (portal/admin.py says which rows and fields that rules out).
- `rq_view` guards the django-rq dashboard mounted at /rq/ the same way, and answers 404 for
  queues, jobs and workers that do not exist.
"""

from __future__ import annotations

import functools
import json

from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.views import PasswordResetConfirmView, redirect_to_login
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme

from portal import access, audit
from portal.models import ExternalIdentity

# app_label.model_name the admin role administers through the Django admin.
# Not auth.group: Goldsmith gives Django's groups no meaning, and a group carries model
# permissions, which the admin role must not hand out (to itself or to anybody).
ADMIN_ROLE_MODELS = frozenset({
    "auth.user",
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

    def get_urls(self):
        # Public (not behind admin_view): whoever holds a set-password link has no way to sign in yet.
        return [path("set-password/<uidb64>/<token>/", SetPasswordView.as_view(), name="password_set"),
                *super().get_urls()]


# --- Set-password links -----------------------------------------------------------------------------


def password_link_refusal(user) -> str:
    """Why `user` cannot be given a set-password link ("" when they can).

    A link is for a local account nobody has used yet: no usable password, never signed in. For
    any other account a link would let whoever holds it (the administrator who made it) take the
    account over, so those are deactivated instead, or reset on the command line
    (`manage.py changepassword`). Entra ID users never get a local password; superusers are
    bootstrap accounts, managed on the command line only.
    """
    if user.is_superuser:
        return "superuser accounts are managed on the command line"
    if not user.is_active:
        return "the account is deactivated"
    if ExternalIdentity.objects.filter(user=user).exists():
        return "the account signs in with Entra ID and never has a local password"
    if user.has_usable_password() or user.last_login is not None:
        return ("the account is in use: a link would let its maker take it over "
                "(deactivate it, or reset the password with manage.py changepassword)")
    return ""


class SetPasswordView(PasswordResetConfirmView):
    """The page a set-password link opens: Django's reset-token check (the link expires after
    PASSWORD_RESET_TIMEOUT and dies once the password is set), limited to accounts that may still
    be given a link, and audited (`auth.password_set`)."""

    template_name = "admin/set_password.html"
    success_url = reverse_lazy("portal:login")
    title = "Choose your password"

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and not password_link_refusal(user) else None

    def form_valid(self, form):
        with transaction.atomic():
            response = super().form_valid(form)
            audit.record("auth.password_set", actor=self.user, obj=self.user, changes={"method": "set-password link"})
        messages.success(self.request, "Your password is set: sign in with it.")
        return response


class Refused(Exception):
    """Raised inside an admin view (a form's or formset's clean, an action) to refuse the whole
    request: `AuditedAdmin` lets Django's transaction roll back, then records the refusal."""

    def __init__(self, reason: str, obj=None):
        super().__init__(reason)
        self.reason = reason
        self.obj = obj


class AuditedAdmin(admin.ModelAdmin):
    """Records each admin change as one audit event (`<model>.create|update|delete`) in the
    transaction Django's admin wraps around the change, and refuses what the requester may not do.

    A subclass says what that is with
    - `locked(request, obj, deleting=...)`: why the requester may not change (or delete) `obj`
      ("" when they may). Such objects show read-only, and posting their change form, opening
      their delete page or selecting them for a bulk action is refused;
    - `screen(request, obj)`: why a POST to the add or change form is refused, judged on the
      submitted data before anything is saved ("" to let it through; `obj` is None when adding);
    - or by raising `Refused` from a form, formset or action.

    A refusal is an `access.denied` event and a 403. It is recorded outside Django's own
    transaction, after that rolled back whatever the request had done, so nothing of a refused
    request is saved, and its refusal is.
    """

    def locked(self, request, obj, *, deleting: bool = False) -> str:
        return ""

    def screen(self, request, obj) -> str:
        return ""

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj is not None and self.locked(request, obj))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (
            obj is not None and self.locked(request, obj, deleting=True))

    def add_view(self, request, form_url="", extra_context=None):
        return self._guarded(request, None, functools.partial(super().add_view, request, form_url, extra_context),
                             screen=True)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self._lookup(request, object_id)
        return self._guarded(request, obj,
                             functools.partial(super().change_view, request, object_id, form_url, extra_context),
                             lock=request.method == "POST", screen=True)

    def delete_view(self, request, object_id, extra_context=None):
        obj = self._lookup(request, object_id)
        return self._guarded(request, obj, functools.partial(super().delete_view, request, object_id, extra_context),
                             lock=True, deleting=True)

    def changelist_view(self, request, extra_context=None):
        return self._guarded(request, None, functools.partial(super().changelist_view, request, extra_context))

    def get_deleted_objects(self, objs, request):
        # Both the delete page and the "delete selected" action come through here first.
        for obj in objs:
            reason = self.locked(request, obj, deleting=True)
            if reason:
                raise Refused(reason, obj)
        return super().get_deleted_objects(objs, request)

    def refuse(self, request, reason: str, obj=None) -> None:
        """Record an `access.denied` event for this model and raise PermissionDenied."""
        if obj is not None and obj.pk is None:
            obj = None
        access.deny(request.user, reason, obj=obj, object_type=self.model._meta.model_name,
                    department=getattr(obj, "department_id", None))

    def _lookup(self, request, object_id):
        return self.get_object(request, unquote(object_id)) if object_id else None

    def _guarded(self, request, obj, view, *, lock: bool = False, deleting: bool = False, screen: bool = False):
        reason = self.locked(request, obj, deleting=deleting) if lock and obj is not None else ""
        if not reason and screen and request.method == "POST":
            reason = self.screen(request, obj)
        if reason:
            self.refuse(request, reason, obj)
        try:
            return view()
        except Refused as refusal:  # Django's transaction has rolled the request back by now
            self.refuse(request, refusal.reason, refusal.obj)
            raise AssertionError("unreachable") from refusal  # pragma: no cover - refuse() always raises

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
    """Wrap a django-rq view: sign-in required, admin role required (an audited 403 otherwise),
    and 404 for a queue, scheduler, job or worker the URL names that does not exist (django-rq
    itself fails on most of those with a 500)."""
    from rq.exceptions import NoSuchJobError

    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        access.require(request.user, access.ADMIN)
        if _rq_missing(kwargs):
            raise Http404("No such queue, job or worker.")
        # django-rq's views check Django's staff flag themselves; Goldsmith's check is the admin
        # role (just made), which stands in for the flag on this request's user object only.
        request.user.is_staff = True
        try:
            return view(request, *args, **kwargs)
        except NoSuchJobError as exc:  # a job named in a bulk action, or gone since the check
            raise Http404("No such job.") from exc

    return guarded


def _rq_missing(kwargs: dict) -> bool:
    """Whether the URL's queue index, scheduler index, job id or worker key names nothing."""
    from django_rq.queues import get_queue_by_index
    from django_rq.settings import get_queues_list
    from rq.job import Job
    from rq.worker import Worker

    count = len(get_queues_list())
    if "scheduler_index" in kwargs:
        # rq-scheduler's page. Goldsmith schedules with RQ's own scheduler: without rq-scheduler
        # there is no such scheduler to show.
        return not _rq_scheduler_installed() or not 0 <= int(kwargs["scheduler_index"]) < count
    if "queue_index" not in kwargs:
        return False  # the dashboard, stats, and the cron pages (which answer 404 themselves)
    if not 0 <= int(kwargs["queue_index"]) < count:
        return True
    connection = get_queue_by_index(kwargs["queue_index"]).connection
    if "job_id" in kwargs and not Job.exists(kwargs["job_id"], connection=connection):
        return True
    if "key" in kwargs:
        key = kwargs["key"]
        return not key.startswith(Worker.redis_worker_namespace_prefix) or not connection.exists(key)
    return False


def _rq_scheduler_installed() -> bool:
    try:
        import rq_scheduler  # noqa: F401
    except ImportError:
        return False
    return True


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
