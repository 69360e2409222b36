from django.contrib import admin

from portal.models import AuditCheckpoint, AuditEvent, Department, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "department", "created_at")
    list_filter = ("role", "department")
    search_fields = ("user__username",)


class AppendOnlyAdmin(admin.ModelAdmin):
    """The audit trail is append-only: readable here, never changed."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(AppendOnlyAdmin):
    list_display = ("id", "at", "actor_name", "action", "object_label", "outcome")
    list_filter = ("action", "outcome")
    search_fields = ("object_label", "actor_name", "request_id")
    date_hierarchy = "at"


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(AppendOnlyAdmin):
    list_display = ("id", "at", "last_event_id", "count", "head_hash")
