"""Serializers of the four-eyes endpoints (api/views_approvals.py)."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers import IsoDateTimeField, absolute
from builds.models import PublishDecision, PublishRequest


class PublishDecisionSerializer(serializers.Serializer):
    approver = serializers.CharField(source="approver.username")
    verdict = serializers.ChoiceField(choices=PublishDecision.Verdict.choices)
    comment = serializers.CharField(allow_blank=True)
    content_sha256 = serializers.CharField()
    at = IsoDateTimeField()


class PublishRequestSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid")
    url = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=PublishRequest.Kind.choices)
    target = serializers.SerializerMethodField(help_text="`slug@version` or `department/layer@version`.")
    channel = serializers.CharField(source="channel.name", allow_null=True, default=None)
    state = serializers.ChoiceField(choices=PublishRequest.State.choices)
    author = serializers.CharField(source="author.username")
    comment = serializers.CharField(allow_blank=True)
    content_sha256 = serializers.CharField()
    approvals_required = serializers.IntegerField()
    break_glass = serializers.BooleanField(help_text="Published by an administrator without approvals.")
    created_at = IsoDateTimeField()
    decided_at = IsoDateTimeField(allow_null=True)
    decisions = PublishDecisionSerializer(many=True, source="decisions.all")

    def get_url(self, obj) -> str:
        return absolute(self.context.get("request"), "api:publish-request", request_uuid=obj.uuid)

    def get_target(self, obj) -> str:
        return str(obj.target)


class PublishRequestPage(serializers.Serializer):
    results = PublishRequestSerializer(many=True)


class PublishRequestFilterParams(serializers.Serializer):
    state = serializers.ChoiceField(choices=PublishRequest.State.choices, required=False)
    waiting_for_me = serializers.BooleanField(required=False, default=False,
                                              help_text="Only the requests waiting for your decision.")


class PublishRequestCreateSerializer(serializers.Serializer):
    gold_image = serializers.SlugField(required=False, help_text="A gold image's slug (for a gold version).")
    layer = serializers.RegexField(r"^[-a-zA-Z0-9_]+/[-a-zA-Z0-9_]+$", required=False,
                                   help_text="`department/layer` (for a layer version).")
    version = serializers.RegexField(r"^[0-9A-Za-z.+-]{1,32}$", help_text="The draft's version, e.g. `1.2.0`.")
    channel = serializers.SlugField(required=False, help_text="Promote the published gold version to this channel "
                                                              "instead of publishing a draft.")
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate(self, attrs):
        if bool(attrs.get("gold_image")) == bool(attrs.get("layer")):
            raise serializers.ValidationError({"gold_image": "Give either gold_image or layer."})
        if attrs.get("channel") and not attrs.get("gold_image"):
            raise serializers.ValidationError({"channel": "Only gold versions are promoted to channels."})
        return attrs


class DecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
