"""Serializers of the rollout endpoints (api/views_rollouts.py). The detail is
`builds.rollouts.describe` (the same read as showrollout --json and the page)."""

from __future__ import annotations

from rest_framework import serializers

from builds.models import Rollout, RolloutWave


class RolloutBuildSerializer(serializers.Serializer):
    id = serializers.UUIDField(allow_null=True, help_text="The build's id; null until it is requested.")
    layer = serializers.CharField(help_text="`DEPT/LAYER@VERSION`.")
    state = serializers.CharField(help_text="The build's state, `waiting` (not requested yet) or `refused`.")
    attempt = serializers.IntegerField()
    sub_state = serializers.CharField(allow_blank=True)
    failure = serializers.JSONField(allow_null=True, help_text="`code`, `message` and `failed_step` (the step the "
                                    "build's log names, as on the build page, when known) of a failed build or "
                                    "refused request; null otherwise.")


class RolloutWaveSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="0 is the canary wave.")
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=RolloutWave.State.choices)
    failure_rate = serializers.FloatField(allow_null=True)
    started_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    builds = RolloutBuildSerializer(many=True)


class NeedsActionSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    layer = serializers.CharField(help_text="`DEPT/LAYER@VERSION` whose range excludes the gold version.")
    accepts = serializers.CharField()
    draft = serializers.CharField(allow_null=True, help_text="The draft prepared for it, `DEPT/LAYER@VERSION`.")
    draft_status = serializers.CharField(allow_null=True)
    draft_link = serializers.CharField(allow_null=True, help_text="The draft's page in the portal.")


class RolloutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=Rollout.State.choices)
    gold_image = serializers.CharField()
    version = serializers.CharField()
    created_by = serializers.CharField()
    created_at = serializers.CharField()
    started_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    canary_size = serializers.IntegerField()
    wave_size = serializers.IntegerField()
    max_failure_rate = serializers.FloatField()
    channel = serializers.CharField(allow_blank=True)
    promotion_request = serializers.UUIDField(allow_null=True)
    stop_reason = serializers.CharField(allow_blank=True)
    estimate = serializers.JSONField()
    time_left_minutes = serializers.FloatField(allow_null=True)
    waves = RolloutWaveSerializer(many=True)
    needs_action = NeedsActionSerializer(many=True)


class RolloutListItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid")
    state = serializers.ChoiceField(choices=Rollout.State.choices)
    gold_image = serializers.CharField(source="gold_version.gold_image.slug")
    version = serializers.CharField(source="gold_version.version")
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class RolloutCreateSerializer(serializers.Serializer):
    gold_image = serializers.SlugField()
    version = serializers.CharField(max_length=32)
    wave_size = serializers.IntegerField(min_value=1, max_value=1000, default=10)
    canary = serializers.IntegerField(min_value=0, max_value=1000, default=1)
    max_failure_rate = serializers.FloatField(min_value=0, max_value=1, default=0.2)
    channel = serializers.CharField(required=False, allow_blank=True, default="", max_length=50,
                                    help_text="A channel name (a slug); empty for none.")
    start = serializers.BooleanField(default=True, help_text="false: create it planned (the plan to review).")


class RolloutResumeSerializer(serializers.Serializer):
    retry_failed = serializers.BooleanField(
        default=True, help_text="For a stopped rollout: build the failed layers of the stopped wave again.")
