from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from portal.admin_site import AuditedAdmin, ReadOnlyAdmin
from portal.models import ApiToken, AuditCheckpoint, AuditEvent, Department, ExternalIdentity, Membership, RoleMapping


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


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


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(AuditedAdmin):
    list_display = ("user", "tenant_id", "object_id", "last_sign_in_at")
    search_fields = ("user__username", "object_id")
    readonly_fields = ("user", "tenant_id", "object_id", "created_at", "last_sign_in_at")

    def has_add_permission(self, request, obj=None):
        return False  # links are made by signing in with Entra ID


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


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class GoldsmithUserAdmin(AuditedAdmin, UserAdmin):
    inlines = [MembershipInline]
    list_display = ("username", "email", "first_name", "last_name", "is_active", "last_login")
    list_filter = ("is_active", "memberships__role")
