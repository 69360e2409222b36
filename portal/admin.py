"""What the admin role sees and may do in the Django admin (the site itself: portal/admin_site.py).

The admin role manages people, never its own privileges. For anybody but a superuser:

- user forms offer name, e-mail and the active flag only: no superuser, staff, group or
  permission fields, and no password. A new user gets no usable password; a user nobody has
  used yet can be handed a set-password link; an account in use is deactivated, never given a
  password by somebody else. Posting any of those fields, or opening the password form, is refused;
- superuser accounts are read-only (bootstrap accounts, managed on the command line);
- one's own memberships cannot be added, changed or deleted (on one's own user page, in the
  membership list, or in a department's membership rows), nor can the role mappings that decide
  one's own roles at Entra ID sign-in.

Each refusal is an audited 403 and saves nothing (portal.admin_site.AuditedAdmin).
"""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UsernameField
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.encoding import force_bytes
from django.utils.html import format_html
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.debug import sensitive_post_parameters

from portal import audit
from portal.admin_site import AuditedAdmin, ReadOnlyAdmin, Refused, password_link_refusal
from portal.models import (
    ApiToken,
    AuditCheckpoint,
    AuditEvent,
    Department,
    ExternalIdentity,
    Membership,
    RoleMapping,
)

User = get_user_model()

OWN_MEMBERSHIPS = "the admin role cannot change its own memberships"
OWN_MAPPINGS = "the admin role cannot change the role mappings that decide its own roles"
OWN_IDENTITY = "the admin role cannot unlink its own Entra ID identity"
OWN_ACCOUNT = "the admin role cannot delete its own account"
SUPERUSER = "superuser accounts are managed on the command line"
NO_PASSWORDS = ("the admin role never sets passwords: give a new account a set-password link, "
                "or deactivate the account")
# Fields of Django's own user forms that grant privileges or set a password: never offered to
# the admin role, and a POST carrying any of them is refused.
PRIVILEGED_USER_FIELDS = frozenset({"is_superuser", "is_staff", "groups", "user_permissions",
                                    "password", "password1", "password2", "usable_password"})
# A membership row's editable inputs in the memberships inline of a user's page.
_INLINE_MEMBERSHIP_INPUT = re.compile(r"^memberships-\d+-(role|department|DELETE)$")


def _own(request, user_id) -> bool:
    return not request.user.is_superuser and user_id is not None and str(user_id) == str(request.user.pk)


def _own_claim_values(request) -> frozenset[str]:
    """Entra ID app role values (casefolded) that decide the requester's roles at sign-in.

    Only Entra ID users get roles from role mappings (linked now, or ever signed in with Entra).
    Theirs are the app roles of their last Entra sign-in (its `auth.login` event lists them),
    plus, in case that event is gone, every value mapped to a role they hold now. Superusers and
    local accounts have none.
    """
    cached = getattr(request, "_goldsmith_own_claims", None)
    if cached is not None:
        return cached
    user = request.user
    values: set[str] = set()
    if not user.is_superuser:
        logins = (AuditEvent.objects.filter(action="auth.login", actor_id=user.pk)
                  .order_by("-id").values_list("changes", flat=True)[:50])
        last_entra = next((changes for changes in logins
                           if isinstance(changes, dict) and changes.get("method") == "entra"), None)
        if last_entra is not None or ExternalIdentity.objects.filter(user=user).exists():
            app_roles = (last_entra or {}).get("app_roles") or []
            values.update(str(value) for value in (app_roles if isinstance(app_roles, list) else [app_roles]))
            held = set(Membership.objects.filter(user=user).values_list("role", "department_id"))
            values.update(claim for claim, role, department_id
                          in RoleMapping.objects.values_list("claim_value", "role", "department_id")
                          if (role, department_id) in held)
    own = frozenset(value.strip().casefold() for value in values)
    request._goldsmith_own_claims = own
    return own


# --- Memberships ---------------------------------------------------------------------------------


class MembershipFormSet(BaseInlineFormSet):
    """Refuses the whole save when a row of the requester's own is added, changed or deleted."""

    request = None  # set per request by MembershipInline.get_formset

    def clean(self):
        super().clean()
        if self.request is None:
            return
        parent_user = self.instance.pk if isinstance(self.instance, User) else None
        for form in self.forms:
            # Django's inline forms ignore edits the requester may not make; judge what was sent.
            deleting = forms.CheckboxInput().value_from_datadict(form.data, form.files, form.add_prefix("DELETE"))
            if not (deleting or forms.BaseForm.has_changed(form)):
                continue
            users = {parent_user, form.initial.get("user"), form.data.get(form.add_prefix("user"))}
            if any(_own(self.request, user_id) for user_id in users):
                raise Refused(OWN_MEMBERSHIPS, form.instance if form.instance.pk else None)


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0

    def _locked(self, request, obj) -> bool:
        # On a user's page: one's own memberships and a superuser's show read-only.
        return isinstance(obj, User) and (_own(request, obj.pk) or bool(_user_locked(request, obj)))

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)  # a new class on every call
        # Read-only rows post no values to judge: GoldsmithUserAdmin.screen refuses any sent.
        formset.request = None if self._locked(request, obj) else request
        return formset

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not self._locked(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self._locked(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._locked(request, obj)


@admin.register(Department)
class DepartmentAdmin(AuditedAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    list_display = ("user", "role", "department", "created_at")
    list_filter = ("role", "department")
    search_fields = ("user__username",)

    def locked(self, request, obj, *, deleting=False) -> str:
        return OWN_MEMBERSHIPS if _own(request, obj.user_id) else ""

    def screen(self, request, obj) -> str:
        return OWN_MEMBERSHIPS if _own(request, request.POST.get("user") or None) else ""


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "actor_name", "action", "object_label", "outcome")
    list_filter = ("action", "outcome")
    search_fields = ("object_label", "actor_name", "request_id")
    date_hierarchy = "at"


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "last_event_id", "count", "head_hash")


@admin.register(RoleMapping)
class RoleMappingAdmin(AuditedAdmin):
    """Which Entra ID app role grants which Goldsmith membership (applied at each Entra sign-in)."""

    list_display = ("claim_value", "role", "department", "created_at")
    list_filter = ("role", "department")
    search_fields = ("claim_value",)

    def locked(self, request, obj, *, deleting=False) -> str:
        return OWN_MAPPINGS if obj.claim_value.strip().casefold() in _own_claim_values(request) else ""

    def screen(self, request, obj) -> str:
        claim_value = request.POST.get("claim_value", "").strip().casefold()
        return OWN_MAPPINGS if claim_value and claim_value in _own_claim_values(request) else ""


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(AuditedAdmin):
    list_display = ("user", "tenant_id", "object_id", "last_sign_in_at")
    search_fields = ("user__username", "object_id")
    readonly_fields = ("user", "tenant_id", "object_id", "created_at", "last_sign_in_at")

    def has_add_permission(self, request, obj=None):
        return False  # links are made by signing in with Entra ID

    def locked(self, request, obj, *, deleting=False) -> str:
        # Unlinked, an Entra admin's account would stop counting as Entra's (see _own_claim_values).
        return OWN_IDENTITY if _own(request, obj.user_id) else ""


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    """Tokens can be seen and revoked here; only their owners create them (the secret is shown once)."""

    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("uuid", "user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    exclude = ("digest",)
    actions = ["revoke"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from portal import tokens

        for token in queryset.filter(revoked_at__isnull=True):
            tokens.token_revoke(actor=request.user, token=token)


# --- Users ---------------------------------------------------------------------------------------


def _user_locked(request, user) -> str:
    return SUPERUSER if user.is_superuser and not request.user.is_superuser else ""


class PersonCreationForm(forms.ModelForm):
    """A new person for the admin role: no password (they get a set-password link, or sign in
    with Entra ID, which makes its own users)."""

    class Meta:
        model = User
        fields = ("username", "first_name", "last_name", "email")
        field_classes = {"username": UsernameField}

    def save(self, commit=True):
        user = super().save(commit=False)
        user.set_unusable_password()
        if commit:
            user.save()
        return user


class PersonChangeForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("username", "first_name", "last_name", "email", "is_active")
        field_classes = {"username": UsernameField}


if admin.site.is_registered(User):
    admin.site.unregister(User)
# Django's groups mean nothing in Goldsmith and carry model permissions: superusers only.
# (auth.group is not in portal.admin_site.ADMIN_ROLE_MODELS.)


@admin.register(User)
class GoldsmithUserAdmin(AuditedAdmin, UserAdmin):
    inlines = [MembershipInline]
    list_display = ("username", "email", "first_name", "last_name", "is_active", "last_login")
    list_filter = ("is_active", "memberships__role")
    actions = ["deactivate"]
    # What the admin role sees (superusers keep Django's own forms, for break-glass repairs).
    people_fieldsets = (
        (None, {"fields": ("username", "sign_in")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Status", {"fields": ("is_active",),
                    "description": "Deactivating ends the person's sessions and API tokens at their next request."}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    people_add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "first_name", "last_name", "email")}),)

    def locked(self, request, obj, *, deleting=False) -> str:
        if deleting and _own(request, obj.pk):
            return OWN_ACCOUNT  # and with it, one's own memberships
        return _user_locked(request, obj)

    def screen(self, request, obj) -> str:
        if request.user.is_superuser:
            return ""
        privileged = sorted(PRIVILEGED_USER_FIELDS.intersection(request.POST))
        if privileged:
            return f"the admin role cannot set {', '.join(privileged)}"
        if obj is not None and _own(request, obj.pk) and any(
                _INLINE_MEMBERSHIP_INPUT.match(key) and value for key, value in request.POST.items()):
            return OWN_MEMBERSHIPS
        return ""

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return self.people_fieldsets if obj is not None else self.people_add_fieldsets

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        return ("sign_in", "last_login", "date_joined")

    def get_form(self, request, obj=None, **kwargs):
        if not request.user.is_superuser:
            kwargs["form"] = PersonChangeForm if obj is not None else PersonCreationForm
        return super().get_form(request, obj, **kwargs)

    @admin.display(description="Sign-in")
    def sign_in(self, obj):
        if ExternalIdentity.objects.filter(user=obj).exists():
            return "Entra ID"
        if obj.has_usable_password():
            return "Local password"
        if not password_link_refusal(obj):
            url = reverse("admin:auth_user_set_password_link", args=[obj.pk])
            return format_html('No password yet: <a href="{}">make a set-password link</a>', url)
        return "No local password"

    def get_urls(self):
        return [path("<id>/set-password-link/", self.admin_site.admin_view(self.set_password_link),
                     name="auth_user_set_password_link"),
                *super().get_urls()]

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        """Django's "set this user's password" form: superusers only (break glass)."""
        if not request.user.is_superuser:
            self.refuse(request, NO_PASSWORDS, self.get_object(request, unquote(id)))
        return super().user_change_password(request, id, form_url)

    def set_password_link(self, request, id):
        """GET: whether the account can get a set-password link; POST: make one, shown once
        (never stored), so the administrator can hand it to the person."""
        user = self.get_object(request, unquote(id))
        if user is None:
            raise Http404("No such user.")
        if not self.has_change_permission(request, user):
            self.refuse(request, self.locked(request, user) or "needs the permission to change users", user)
        refusal = password_link_refusal(user)
        link = ""
        if request.method == "POST":
            if refusal:
                self.refuse(request, f"no set-password link: {refusal}", user)
            token = default_token_generator.make_token(user)
            link = request.build_absolute_uri(
                reverse("admin:password_set", args=[urlsafe_base64_encode(force_bytes(user.pk)), token]))
            audit.record("user.password_link", actor=request.user, obj=user,
                         changes={"expires_after_seconds": settings.PASSWORD_RESET_TIMEOUT})
        context = {**self.admin_site.each_context(request), "opts": self.opts, "original": user,
                   "title": f"Set-password link for {user.get_username()}", "refusal": refusal, "link": link,
                   "expires_hours": settings.PASSWORD_RESET_TIMEOUT // 3600}
        return TemplateResponse(request, "admin/auth/user/set_password_link.html", context)

    @admin.action(description="Deactivate the selected users", permissions=["change"])
    def deactivate(self, request, queryset):
        with transaction.atomic():
            for user in queryset:
                reason = self.locked(request, user)
                if reason:
                    raise Refused(reason, user)
            users = list(queryset.filter(is_active=True))
            for user in users:
                user.is_active = False
                user.save(update_fields=["is_active"])
                self.log_change(request, user, [{"changed": {"fields": ["Active"]}}])
        messages.success(request, f"Deactivated {len(users)} user{'s' if len(users) != 1 else ''}.")
