"""Four-eyes endpoints: publish requests (gold versions, layer versions, channel promotions),
approvals, rejections and withdrawals. The same services as the pages (builds/approvals.py),
which write the audit events; the same access funnel (builds/access.py)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from api import errors
from api import serializers_approvals as sa
from api.errors import ProblemsError
from api.serializers import ErrorSerializer
from builds import access, approvals, policies, services
from builds.models import PublishRequest
from builds.schema import Problem

TAGS = ["approvals"]
REQUEST_UUID = OpenApiParameter("request_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                description="The publish request's id.")
_DESCRIBED = {
    400: "validation_failed: the problems list says what to fix.",
    401: "not_authenticated: no token, or a revoked, expired or unknown one.",
    403: "permission_denied: your role may not do this, or four eyes: you made the request or the version.",
    404: "not_found: no such object, or not one you may see.",
    409: "conflict: the request is no longer pending, or the content changed since it was made (superseded).",
    429: "throttled: over API_RATE_PER_MINUTE; wait Retry-After seconds.",
}


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer, description=_DESCRIBED[code])
            for code in sorted({401, 429, *statuses})}


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _out(request, publish_request: PublishRequest, code: int = status.HTTP_200_OK) -> Response:
    publish_request = access.get_publish_request(request.user, publish_request.uuid)
    return Response(sa.PublishRequestSerializer(publish_request, context={"request": request}).data, status=code)


def _refused(request, exc: services.ServiceError, publish_request=None):
    """NotAllowed is a 403 (recorded), a stale or decided request a 409, the rest 400."""
    if isinstance(exc, approvals.NotAllowed):
        access.deny(request.user, exc.message, obj=publish_request,
                    department=getattr(publish_request, "department_id", None))
    if isinstance(exc, approvals.StaleRequest) or (publish_request is not None and not exc.problems):
        return errors.Conflict(exc.message)
    return ProblemsError(exc.message, exc.problems or [Problem("approval.refused", "", exc.message)])


class PublishRequestList(APIView):
    @extend_schema(operation_id="publish_requests_list", tags=TAGS, parameters=[sa.PublishRequestFilterParams],
                   responses={200: sa.PublishRequestPage, **_errors(400, 403)},
                   summary="Publish requests you may see, newest first (at most 200)")
    def get(self, request):
        access.require(request.user, access.SECURITY, access.EDITOR, access.AUDITOR)
        params = _valid(sa.PublishRequestFilterParams, request.query_params)
        rows = access.publish_requests(request.user).prefetch_related("decisions__approver")
        if params.get("state"):
            rows = rows.filter(state=params["state"])
        if params.get("waiting_for_me"):
            rows = rows.filter(pk__in=approvals.pending_for(request.user).values("pk"))
        data = sa.PublishRequestSerializer(rows[:200], many=True, context={"request": request}).data
        return Response({"results": data})

    @extend_schema(
        operation_id="publish_requests_create", tags=TAGS, request=sa.PublishRequestCreateSerializer,
        examples=[OpenApiExample("Publish a gold version", request_only=True,
                                 value={"gold_image": "ubuntu", "version": "1.1.0", "comment": "monthly baseline"}),
                  OpenApiExample("Publish a layer version", request_only=True,
                                 value={"layer": "web/nginx", "version": "1.1.0"}),
                  OpenApiExample("Promote to production", request_only=True,
                                 value={"gold_image": "ubuntu", "version": "1.0.0", "channel": "production"})],
        responses={201: OpenApiResponse(sa.PublishRequestSerializer, description="Pending: another person approves "
                                                                                 "it. Location names it."),
                   **_errors(400, 403, 404, 409)},
        summary="Ask for a draft to be published, or a gold version promoted (every publish check runs first)")
    def post(self, request):
        access.require(request.user, access.SECURITY, access.EDITOR)
        data = _valid(sa.PublishRequestCreateSerializer, request.data)
        if data.get("gold_image"):
            need = "view" if data.get("channel") else "change"
            target = access.get_gold_version(request.user, data["gold_image"], data["version"], need=need)
        else:
            department, slug = data["layer"].split("/")
            target = access.get_layer_version(request.user, department, slug, data["version"], need="change")
        try:
            if data.get("channel"):
                made = approvals.promotion_request_create(actor=request.user, gold_version=target,
                                                          channel=data["channel"], comment=data["comment"])
            else:
                made = approvals.publish_request_create(actor=request.user, target=target, comment=data["comment"])
        except services.ImmutableVersion as exc:
            raise errors.Conflict(exc.message) from exc
        except services.ServiceError as exc:
            raise _refused(request, exc) from exc
        response = _out(request, made, status.HTTP_201_CREATED)
        response["Location"] = response.data["url"]
        return response


class PublishRequestDetail(APIView):
    @extend_schema(operation_id="publish_requests_retrieve", tags=TAGS, parameters=[REQUEST_UUID],
                   responses={200: sa.PublishRequestSerializer, **_errors(403, 404)},
                   summary="One publish request with its decisions")
    def get(self, request, request_uuid):
        return _out(request, access.get_publish_request(request.user, request_uuid))


class _Decide(APIView):
    verdict = ""

    def post(self, request, request_uuid):
        publish_request = access.get_publish_request(request.user, request_uuid, need="change")
        # Who may act is settled before the body is read (four eyes: a 403, whatever was sent).
        if self.verdict == "withdraw":
            refusal = "" if publish_request.author_id == request.user.pk else "Only the author may withdraw a request."
        else:
            refusal = policies.approval_refusal(request.user, publish_request) if publish_request.is_pending else ""
        if refusal:
            access.deny(request.user, refusal, obj=publish_request, department=publish_request.department_id)
        comment = "" if self.verdict == "withdraw" else _valid(sa.DecisionSerializer, request.data)["comment"]
        try:
            if self.verdict == "approve":
                approvals.publish_request_approve(actor=request.user, request=publish_request, comment=comment)
            elif self.verdict == "reject":
                approvals.publish_request_reject(actor=request.user, request=publish_request, comment=comment)
            else:
                approvals.publish_request_withdraw(actor=request.user, request=publish_request)
        except services.ServiceError as exc:
            if exc.problems and not isinstance(exc, approvals.NotAllowed):
                raise ProblemsError(exc.message, exc.problems) from exc
            raise _refused(request, exc, publish_request) from exc
        return _out(request, publish_request)


class PublishRequestApprove(_Decide):
    verdict = "approve"

    @extend_schema(operation_id="publish_requests_approve", tags=TAGS, parameters=[REQUEST_UUID],
                   request=sa.DecisionSerializer,
                   responses={200: OpenApiResponse(sa.PublishRequestSerializer,
                                                   description="Approved (the version is published or promoted) or "
                                                               "still pending more approvals."),
                              **_errors(400, 403, 404, 409)},
                   summary="Approve (never your own request); the last needed approval publishes")
    def post(self, request, request_uuid):
        return super().post(request, request_uuid)


class PublishRequestReject(_Decide):
    verdict = "reject"

    @extend_schema(operation_id="publish_requests_reject", tags=TAGS, parameters=[REQUEST_UUID],
                   request=sa.DecisionSerializer,
                   responses={200: sa.PublishRequestSerializer, **_errors(400, 403, 404, 409)},
                   summary="Reject, with a comment (required)")
    def post(self, request, request_uuid):
        return super().post(request, request_uuid)


class PublishRequestWithdraw(_Decide):
    verdict = "withdraw"

    @extend_schema(operation_id="publish_requests_withdraw", tags=TAGS, parameters=[REQUEST_UUID], request=None,
                   responses={200: sa.PublishRequestSerializer, **_errors(403, 404, 409)},
                   summary="Withdraw your own pending request")
    def post(self, request, request_uuid):
        return super().post(request, request_uuid)
