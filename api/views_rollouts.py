"""Rollout endpoints: list, detail, create, pause, resume, cancel. The same services and read
as the pages and the commands (builds/rollouts.py), which write the audit events."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from api import errors
from api import serializers_rollouts as sr
from api.errors import ProblemsError
from api.serializers import ErrorSerializer
from builds import access, approvals, rollouts, services
from builds.schema import Problem

TAGS = ["rollouts"]
ROLLOUT_UUID = OpenApiParameter("rollout_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                description="The rollout's id.")
_DESCRIBED = {
    400: "validation_failed: the problems list says what to fix.",
    401: "not_authenticated: no token, or a revoked, expired or unknown one.",
    403: "permission_denied: only the security team starts, pauses, resumes or cancels rollouts.",
    404: "not_found: no such rollout, or not one you may see.",
    409: "conflict: the rollout is not in a state that allows this.",
    429: "throttled: over API_RATE_PER_MINUTE; wait Retry-After seconds.",
}


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer, description=_DESCRIBED[code])
            for code in sorted({401, 429, *statuses})}


def _out(request, rollout, code: int = status.HTTP_200_OK) -> Response:
    rollout = rollouts.get_rollout(request.user, rollout.uuid)
    return Response(sr.RolloutSerializer(rollouts.describe(rollout, request.user)).data, status=code)


class RolloutList(APIView):
    @extend_schema(operation_id="rollouts_list", tags=TAGS, responses={200: sr.RolloutListItemSerializer(many=True),
                                                                      **_errors(403)},
                   summary="Rollouts you may see, newest first (at most 200)")
    def get(self, request):
        access.require(request.user, access.SECURITY, access.EDITOR, access.AUDITOR)
        rows = rollouts.visible(request.user)[:200]
        return Response(sr.RolloutListItemSerializer(rows, many=True).data)

    @extend_schema(operation_id="rollouts_create", tags=TAGS, request=sr.RolloutCreateSerializer,
                   responses={201: sr.RolloutSerializer, **_errors(400, 403, 404)},
                   summary="Plan a rollout of a gold version (and start it unless start is false)")
    def post(self, request):
        access.require(request.user, access.SECURITY)
        serializer = sr.RolloutCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        gold_version = access.get_gold_version(request.user, data["gold_image"], data["version"], need="build")
        try:
            rollout = rollouts.rollout_create(
                actor=request.user, gold_version=gold_version, canary_size=data["canary"],
                wave_size=data["wave_size"], max_failure_rate=data["max_failure_rate"], channel=data["channel"])
            if data["start"]:
                rollouts.rollout_start(actor=request.user, rollout=rollout)
        except approvals.NotAllowed as exc:
            access.deny(request.user, exc.message)
        except services.ServiceError as exc:
            raise ProblemsError(exc.message, exc.problems or [Problem("rollout.refused", "", exc.message)]) from exc
        response = _out(request, rollout, status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(f"{request.path}{rollout.uuid}/")
        return response


class RolloutDetail(APIView):
    @extend_schema(operation_id="rollouts_retrieve", tags=TAGS, parameters=[ROLLOUT_UUID],
                   responses={200: sr.RolloutSerializer, **_errors(403, 404)},
                   summary="A rollout: waves with their builds, layers that need a new version (editors: "
                           "their departments' entries)")
    def get(self, request, rollout_uuid):
        return _out(request, rollouts.get_rollout(request.user, rollout_uuid))


class _Action(APIView):
    action = ""

    def post(self, request, rollout_uuid):
        rollout = rollouts.get_rollout(request.user, rollout_uuid, need="change")
        try:
            if self.action == "pause":
                rollouts.rollout_pause(actor=request.user, rollout=rollout)
            elif self.action == "resume":
                serializer = sr.RolloutResumeSerializer(data=request.data)
                serializer.is_valid(raise_exception=True)
                rollouts.rollout_resume(actor=request.user, rollout=rollout,
                                        retry_failed=serializer.validated_data["retry_failed"])
            else:
                rollouts.rollout_cancel(actor=request.user, rollout=rollout)
        except approvals.NotAllowed as exc:
            access.deny(request.user, exc.message, obj=rollout)
        except services.ServiceError as exc:
            raise errors.Conflict(exc.message) from exc
        return _out(request, rollout)


class RolloutPause(_Action):
    action = "pause"

    @extend_schema(operation_id="rollouts_pause", tags=TAGS, parameters=[ROLLOUT_UUID], request=None,
                   responses={200: sr.RolloutSerializer, **_errors(403, 404, 409)},
                   summary="Pause: no new build is requested; builds already requested carry on")
    def post(self, request, rollout_uuid):
        return super().post(request, rollout_uuid)


class RolloutResume(_Action):
    action = "resume"

    @extend_schema(operation_id="rollouts_resume", tags=TAGS, parameters=[ROLLOUT_UUID],
                   request=sr.RolloutResumeSerializer,
                   responses={200: sr.RolloutSerializer, **_errors(400, 403, 404, 409)},
                   summary="Resume a paused or stopped rollout (or start a planned one)")
    def post(self, request, rollout_uuid):
        return super().post(request, rollout_uuid)


class RolloutCancel(_Action):
    action = "cancel"

    @extend_schema(operation_id="rollouts_cancel", tags=TAGS, parameters=[ROLLOUT_UUID], request=None,
                   responses={200: sr.RolloutSerializer, **_errors(403, 404, 409)},
                   summary="Cancel: waiting waves are dropped and active builds canceled")
    def post(self, request, rollout_uuid):
        return super().post(request, rollout_uuid)
