"""Django admin for the catalog and builds: for administrators browsing and repairing data.

Everyday changes go through the portal pages, which use the services (and so audit); the
admin is read-mostly here: versions and builds are shown read-only.
"""

from django.contrib import admin

from builds.models import (
    Build,
    BuildEvent,
    BuildLayer,
    BuildOutput,
    GoldImage,
    GoldImageVersion,
    Layer,
    LayerVersion,
    Policy,
)
from portal.admin_site import AuditedAdmin, ReadOnlyAdmin


class CreatedByAdmin(AuditedAdmin):
    """Records who added a row from the admin (the column is required; adding failed without it)."""

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class GoldImageVersionInline(admin.TabularInline):
    model = GoldImageVersion
    fields = ("version", "status", "security_type", "hyper_v_generation", "published_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(GoldImage)
class GoldImageAdmin(CreatedByAdmin):
    list_display = ("slug", "name", "os_type", "created_by", "created_at")
    list_filter = ("os_type",)
    search_fields = ("slug", "name", "description")
    readonly_fields = ("created_by", "created_at")
    inlines = [GoldImageVersionInline]


@admin.register(GoldImageVersion)
class GoldImageVersionAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "security_type", "hyper_v_generation", "created_by", "published_at")
    list_filter = ("status", "security_type", "hyper_v_generation", "gold_image")
    search_fields = ("gold_image__slug", "version", "changelog")
    date_hierarchy = "created_at"


@admin.register(Layer)
class LayerAdmin(CreatedByAdmin):
    list_display = ("__str__", "name", "department", "gold_image", "created_at")
    list_filter = ("department", "gold_image")
    search_fields = ("slug", "name")
    readonly_fields = ("created_by", "created_at")


@admin.register(LayerVersion)
class LayerVersionAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "accepts", "created_by", "published_at")
    list_filter = ("status", "layer__department")
    search_fields = ("layer__slug", "version")


class BuildLayerInline(admin.TabularInline):
    model = BuildLayer
    extra = 0
    readonly_fields = ("layer_version", "position")
    can_delete = False


class BuildEventInline(admin.TabularInline):
    model = BuildEvent
    extra = 0
    readonly_fields = ("at", "from_state", "to_state", "from_sub_state", "to_sub_state", "detail")
    can_delete = False


class BuildOutputInline(admin.TabularInline):
    model = BuildOutput
    extra = 0
    readonly_fields = ("run_output_name", "distributor_type", "artifact_id", "artifact_uri", "provisioning_state")
    can_delete = False


@admin.register(Build)
class BuildAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "gold_version", "department", "requested_by", "state", "sub_state", "created_at")
    list_filter = ("state", "department", "gold_version__gold_image")
    search_fields = ("uuid", "template_name", "requested_by__username")
    date_hierarchy = "created_at"
    inlines = [BuildLayerInline, BuildEventInline, BuildOutputInline]


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "created_by", "created_at", "comment")
    list_filter = ("name",)
