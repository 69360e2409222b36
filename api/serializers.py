"""Conversions between the API's JSON and the domain: read-only representations of catalog
objects, builds and audit events, and the request bodies and query parameters the API takes.

Representations are what drf-spectacular documents, so every key a response carries is a
declared field here (tests/api/test_openapi.py validates real responses against the document
with undeclared keys forbidden). Times are ISO 8601 with the UTC offset (`+00:00`), as
`showbuild --json` prints them.
"""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.errors import CODES
from builds import compose, selectors, validation
from builds.models import Build, GoldImageVersion, LayerVersion, OsType
from builds.selectors import build_summary
from portal.models import AuditEvent
from portal.redact import redact


class IsoDateTimeField(serializers.DateTimeField):
    """A time as Python's isoformat() in UTC, the format build_summary() uses."""

    def to_representation(self, value):
        if value is None:
            return None
        return value.astimezone(dt.UTC).isoformat()


def absolute(request, name: str, **kwargs) -> str:
    path = reverse(name, kwargs=kwargs)
    return request.build_absolute_uri(path) if request is not None else path


class LinkField(serializers.Field):
    """An absolute URL made from the object by `link(request, obj)`."""

    def __init__(self, link, **kwargs):
        self.link = link
        kwargs["source"] = "*"
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return self.link(self.context.get("request"), value)


LinkField = extend_schema_field(OpenApiTypes.URI)(LinkField)


def gold_version_link(request, version: GoldImageVersion) -> str:
    return absolute(request, "api:gold-version", slug=version.gold_image.slug, version=version.version)


def layer_version_link(request, version: LayerVersion) -> str:
    layer = version.layer
    return absolute(request, "api:layer-version", department=layer.department.slug, slug=layer.slug,
                    version=version.version)


# --- Errors (documentation only: errors.py writes them) -------------------------------------------


class ProblemSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text="Stable rule id, e.g. `schema.unknown-field` (docs/validation.md).")
    path = serializers.CharField(allow_blank=True, help_text="JSON path of the offending field; empty for the whole.")
    message = serializers.CharField(help_text="What is wrong and how to fix it.")
    severity = serializers.ChoiceField(choices=["error", "warning"])


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=sorted(CODES), help_text="Stable: program against it.")
    message = serializers.CharField(help_text="For people; may change.")
    problems = ProblemSerializer(many=True, required=False, help_text="With `validation_failed` only.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# --- Gold images -----------------------------------------------------------------------------------


class GoldVersionBriefSerializer(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.ChoiceField(choices=GoldImageVersion.Status.choices)
    url = LinkField(gold_version_link)


class GoldImageSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    os_type = serializers.ChoiceField(choices=OsType.choices)
    created_at = IsoDateTimeField()
    url = LinkField(lambda request, image: absolute(request, "api:gold-detail", slug=image.slug))
    web_url = LinkField(lambda request, image: absolute(request, "builds:gold-detail", slug=image.slug))
    versions = GoldVersionBriefSerializer(many=True, source="visible_versions",
                                          help_text="The versions you may see, newest first.")


class GoldVersionSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid")
    gold_image = serializers.SlugField(source="gold_image.slug")
    version = serializers.CharField()
    status = serializers.ChoiceField(choices=GoldImageVersion.Status.choices)
    status_reason = serializers.CharField(allow_blank=True)
    buildable = serializers.BooleanField(source="is_buildable", help_text="Published or deprecated.")
    changelog = serializers.CharField(allow_blank=True)
    security_type = serializers.CharField()
    hyper_v_generation = serializers.CharField()
    created_at = IsoDateTimeField()
    created_by = serializers.CharField(source="created_by.username")
    published_at = IsoDateTimeField(allow_null=True)
    deprecated_at = IsoDateTimeField(allow_null=True)
    revoked_at = IsoDateTimeField(allow_null=True)
    url = LinkField(gold_version_link)
    web_url = LinkField(lambda request, v: absolute(request, "builds:gold-version", slug=v.gold_image.slug,
                                                    version=v.version))
    template = serializers.SerializerMethodField(
        help_text="The composed baseline template (api-version 2025-10-01) without layers or provenance tags.")

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_template(self, version: GoldImageVersion) -> dict:
        return selectors.baseline(version)


# --- Layers ----------------------------------------------------------------------------------------


class LayerVersionBriefSerializer(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.ChoiceField(choices=LayerVersion.Status.choices)
    accepts = serializers.CharField(help_text="The gold versions it builds on, e.g. `>=1.2.0 <2.0.0` or `*`.")
    url = LinkField(layer_version_link)


class LayerSerializer(serializers.Serializer):
    department = serializers.SlugField(source="department.slug")
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    gold_image = serializers.SlugField(source="gold_image.slug")
    created_at = IsoDateTimeField()
    url = LinkField(lambda request, layer: absolute(request, "api:layer-detail", department=layer.department.slug,
                                                    slug=layer.slug))
    web_url = LinkField(lambda request, layer: absolute(request, "builds:layer-detail",
                                                        department=layer.department.slug, slug=layer.slug))
    versions = LayerVersionBriefSerializer(many=True, source="visible_versions", help_text="Newest first.")


class LayerVersionSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid")
    ref = serializers.SerializerMethodField(help_text="What POST /api/v1/builds/ takes in `layers`.")
    department = serializers.SlugField(source="layer.department.slug")
    layer = serializers.SlugField(source="layer.slug")
    gold_image = serializers.SlugField(source="layer.gold_image.slug")
    version = serializers.CharField()
    status = serializers.ChoiceField(choices=LayerVersion.Status.choices)
    accepts = serializers.CharField()
    changelog = serializers.CharField(allow_blank=True)
    customize = serializers.ListField(child=serializers.JSONField(), help_text="Image Builder customizer objects.")
    validators = serializers.ListField(child=serializers.JSONField(), help_text="Image Builder validator objects.")
    tags = serializers.DictField(child=serializers.CharField())
    network = serializers.DictField(
        child=serializers.CharField(), help_text="The build network the layer chooses: `subnetId` and `proxyVmSize` "
                                                 "of vmProfile.vnetConfig (empty: the gold version's).")
    created_at = IsoDateTimeField()
    created_by = serializers.CharField(source="created_by.username")
    published_at = IsoDateTimeField(allow_null=True)
    url = LinkField(layer_version_link)
    web_url = LinkField(lambda request, v: absolute(request, "builds:layer-version", department=v.layer.department.slug,
                                                    slug=v.layer.slug, version=v.version))

    def get_ref(self, version: LayerVersion) -> str:
        return compose.layer_label(version)


# --- Builds ----------------------------------------------------------------------------------------


class BuildOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(allow_blank=True)
    artifact_id = serializers.CharField(allow_blank=True)
    artifact_uri = serializers.CharField(allow_blank=True)
    provisioning_state = serializers.CharField(allow_blank=True)


class BuildEventSerializer(serializers.Serializer):
    at = serializers.CharField(help_text="ISO 8601 time.")
    from_state = serializers.CharField(allow_blank=True)
    to_state = serializers.CharField()
    from_sub_state = serializers.CharField(allow_blank=True)
    to_sub_state = serializers.CharField(allow_blank=True)
    detail = serializers.CharField(allow_blank=True)


def _build_link(request, build) -> str:
    return absolute(request, "api:build-detail", build_uuid=build.uuid)


def _build_web_link(request, build) -> str:
    return absolute(request, "builds:build-detail", build_uuid=build.uuid)


class BuildListItemSerializer(serializers.Serializer):
    """A build in a list: build_summary()'s keys without events and outputs, from prefetched rows."""

    id = serializers.UUIDField(source="uuid")
    url = LinkField(_build_link)
    web_url = LinkField(_build_web_link)
    state = serializers.ChoiceField(choices=Build.State.choices)
    sub_state = serializers.CharField(allow_blank=True, help_text="Image Builder's runSubState while running.")
    gold_version = serializers.SerializerMethodField(help_text="`slug@version`.")
    channel = serializers.SerializerMethodField(help_text="The release channel the gold version was resolved from "
                                                          "when the build was requested (null for a build of a named "
                                                          "version).")
    layers = serializers.SerializerMethodField(help_text="`department/layer@version`, in the order they were composed.")
    department = serializers.SerializerMethodField()
    requested_by = serializers.CharField(source="requested_by.username")
    created_at = IsoDateTimeField()
    started_at = IsoDateTimeField(allow_null=True)
    finished_at = IsoDateTimeField(allow_null=True)
    subscription_id = serializers.CharField()
    resource_group = serializers.CharField()
    location = serializers.CharField()
    template_name = serializers.CharField()
    template_sha256 = serializers.CharField(help_text="SHA-256 of the canonical JSON of the submitted template.")
    error_code = serializers.CharField(allow_blank=True)
    error_message = serializers.CharField(allow_blank=True)
    log_uri = serializers.CharField(allow_blank=True)
    staging_resource_group = serializers.CharField(allow_blank=True)
    source_exact_version = serializers.CharField(allow_blank=True)

    def get_gold_version(self, build: Build) -> str:
        return compose.gold_label(build.gold_version)

    @extend_schema_field(serializers.SlugField(allow_null=True))
    def get_channel(self, build: Build) -> str | None:
        return build.channel or None

    def get_layers(self, build: Build) -> list[str]:
        # build_layers is prefetched with its layer versions (one query for the whole page).
        return [compose.layer_label(bl.layer_version) for bl in build.build_layers.all()]

    @extend_schema_field(serializers.SlugField(allow_null=True))
    def get_department(self, build: Build) -> str | None:
        return build.department.slug if build.department_id else None


class BuildSerializer(BuildListItemSerializer):
    """One build: build_summary() (the shape `showbuild --json` prints) plus its links."""

    outputs = BuildOutputSerializer(many=True)
    events = BuildEventSerializer(many=True)

    def to_representation(self, build: Build) -> dict:
        request = self.context.get("request")
        return {"url": _build_link(request, build), "web_url": _build_web_link(request, build), **build_summary(build)}


class BuildRequestSerializer(serializers.Serializer):
    gold_image = serializers.SlugField(max_length=50, help_text="The gold image's slug, e.g. `ubuntu-2204`.")
    version = serializers.CharField(max_length=32, required=False,
                                    help_text="A published or deprecated version, e.g. `1.2.0`. Name either a version "
                                              "or a `channel`.")
    channel = serializers.SlugField(
        max_length=50, required=False,
        help_text="Instead of `version`: a release channel of the gold image (e.g. `production`). The channel is "
                  "resolved when the build is requested; the build records the channel and the resolved version.")
    layers = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list, max_length=20,
        help_text="Layer versions as `department/layer@version`, composed in this order; all of one department, "
                  "yours. Leave out for a gold-only build.")
    department = serializers.SlugField(
        required=False, allow_null=True, max_length=50,
        help_text="The department the build is for. Only needed for a gold-only build by an editor of several "
                  "departments; with layers it is the layers' department.")

    def validate(self, attrs):
        if bool(attrs.get("version")) == bool(attrs.get("channel")):
            raise serializers.ValidationError({"version": "Name either a gold version or a channel (one of them)."})
        return attrs


# --- Template check --------------------------------------------------------------------------------


class TemplateCheckParams(serializers.Serializer):
    policy = serializers.SlugField(required=False, max_length=50,
                                   help_text="The build policy to apply (default: the current default policy).")
    offline = serializers.BooleanField(required=False, default=False,
                                       help_text="Skip every look-up: the catalog (source image, security types, gallery "
                                                 "targets) and where the build runs (regions, VM sizes, identities, "
                                                 "permissions, Azure Policy, staging group).")
    os_type = serializers.ChoiceField(choices=OsType.choices, required=False,
                                      help_text="Check steps against this OS family (default: guessed).")


class CheckResultSerializer(serializers.Serializer):
    group = serializers.ChoiceField(choices=list(validation.GROUPS),
                                    help_text="Rule group: the first part of a rule id (policy.deny and "
                                              "policy.not-checked are azure-policy).")
    title = serializers.CharField()
    ran = serializers.BooleanField(help_text="False when the group was skipped (offline, or a shape error).")
    passed = serializers.BooleanField()


class TemplateCheckResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="True when no problem is an error (warnings never fail).")
    form = serializers.ChoiceField(choices=["body", "resource", "deployment", ""],
                                   help_text="How the template was given; empty when it could not be read.")
    problems = ProblemSerializer(many=True, help_text="Errors and warnings: the same rules as checktemplate.")
    checks = CheckResultSerializer(many=True)


# --- Lists: filters and pages ----------------------------------------------------------------------


class BuildFilterParams(serializers.Serializer):
    state = serializers.ChoiceField(choices=["active", *Build.State.values], required=False,
                                    help_text="A state, or `active` for every build still in progress.")
    department = serializers.SlugField(required=False, max_length=50)
    gold_image = serializers.SlugField(required=False, max_length=50)
    requested_by = serializers.CharField(required=False, max_length=150, help_text="User name (exact).")
    since = serializers.DateTimeField(required=False, help_text="Requested at or after (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Requested before (ISO 8601).")

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["until"] < attrs["since"]:
            raise serializers.ValidationError({"until": ["The end is before the start."]})
        return attrs


class LayerFilterParams(serializers.Serializer):
    department = serializers.SlugField(required=False, max_length=50)
    gold_image = serializers.SlugField(required=False, max_length=50)


class AuditFilterParams(serializers.Serializer):
    """The auditor pages' filters (portal.audit_history.HistoryFilterForm validates and applies them)."""

    actor = serializers.CharField(required=False, max_length=150, help_text="User name, or worker:HOST, system.")
    department = serializers.SlugField(required=False, max_length=50)
    action = serializers.CharField(required=False, max_length=64,
                                   help_text="e.g. `gold_version.publish`; end with `.` or `*` for a family.")
    object_type = serializers.CharField(required=False, max_length=64, help_text="e.g. `build`, `goldimageversion`.")
    object_id = serializers.CharField(required=False, max_length=64)
    outcome = serializers.ChoiceField(choices=AuditEvent.Outcome.choices, required=False)
    since = serializers.DateField(required=False, help_text="From this day (in the portal's TIME_ZONE).")
    until = serializers.DateField(required=False, help_text="To this day, inclusive.")
    q = serializers.CharField(required=False, max_length=200, help_text="Words the object's label contains.")


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Position in the hash chain.")
    hash = serializers.CharField()
    prev_hash = serializers.CharField()
    at = IsoDateTimeField()
    actor = serializers.CharField(source="actor_name")
    actor_ip = serializers.CharField(allow_null=True)
    user_agent = serializers.SerializerMethodField()
    action = serializers.CharField()
    object_type = serializers.CharField(allow_blank=True)
    object_id = serializers.CharField(allow_blank=True)
    object_label = serializers.SerializerMethodField()
    department = serializers.SerializerMethodField()
    outcome = serializers.ChoiceField(choices=AuditEvent.Outcome.choices)
    request_id = serializers.CharField(allow_blank=True)
    changes = serializers.SerializerMethodField(help_text="What changed, secrets redacted.")

    def get_user_agent(self, event) -> str:
        return redact(event.user_agent)

    def get_object_label(self, event) -> str:
        return redact(event.object_label)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_changes(self, event) -> dict:
        return redact(event.changes)

    @extend_schema_field(serializers.SlugField(allow_null=True))
    def get_department(self, event) -> str | None:
        return event.department.slug if event.department_id else None


def page_serializer(item, name: str) -> type[serializers.Serializer]:
    """{"results": [item...], "next": URL or null}, as a named component."""
    return type(name, (serializers.Serializer,), {
        "results": item(many=True),
        "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last one."),
        "__doc__": f"A page of {item.__name__.removesuffix('Serializer')} rows.",
    })


GoldImagePage = page_serializer(GoldImageSerializer, "GoldImagePage")
LayerPage = page_serializer(LayerSerializer, "LayerPage")
BuildPage = page_serializer(BuildListItemSerializer, "BuildPage")
AuditEventPage = page_serializer(AuditEventSerializer, "AuditEventPage")
