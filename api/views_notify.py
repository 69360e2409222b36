"""The notification endpoints of the API: list, create and delete shared endpoints.

Same services and selectors as the pages (notify/); the secret of a generic webhook is in the
creation answer only, never in a list.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import ProblemsError, problem
from api.views import _errors as documented_errors
from notify import catalog, selectors, services
from notify.models import Endpoint
from portal import access
from portal.models import Department

MANAGERS = (access.SECURITY, access.EDITOR, access.AUDITOR)


class EndpointSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    scope = serializers.CharField(read_only=True)

    class Meta:
        model = Endpoint
        fields = ["id", "name", "kind", "scope", "event_types", "owner", "enabled", "consecutive_failures",
                  "disabled_reason", "created_at"]


class EndpointCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Endpoint.Kind.values)
    url = serializers.CharField(max_length=1000, help_text="https URL, or an e-mail address for kind=email.")
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=catalog.NAMES), min_length=1)
    scope = serializers.CharField(default="all", help_text="`all` or `department:<slug>`.")
    name = serializers.CharField(max_length=100, required=False, default="")
    secret = serializers.CharField(max_length=200, required=False, default="", write_only=True)


class EndpointCreatedSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="Generated HMAC secret: shown in this answer only.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


class EndpointList(APIView):
    @extend_schema(operation_id="notify_endpoints_list", tags=["notifications"],
                   responses={200: EndpointSerializer(many=True), **documented_errors(403)}, summary="Endpoints you manage")
    def get(self, request):
        access.require(request.user, *MANAGERS)
        return Response(EndpointSerializer(selectors.endpoints_managed_by(request.user), many=True).data)

    @extend_schema(operation_id="notify_endpoints_create", tags=["notifications"], request=EndpointCreateSerializer,
                   responses={201: EndpointCreatedSerializer, **documented_errors(400, 403)}, summary="Add a notification endpoint")
    def post(self, request):
        access.require(request.user, *MANAGERS)
        given = EndpointCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        department = None
        if data["scope"] != "all":
            kind, _, slug = data["scope"].partition(":")
            department = Department.objects.filter(slug=slug).first() if kind == "department" else None
            if department is None:
                raise ProblemsError("Unknown scope.", [problem("notify.scope", "scope", "Use all or department:<slug>.")])
        try:
            endpoint, secret = services.endpoint_create(actor=request.user, kind=data["kind"], url=data["url"],
                                                        event_types=data["event_types"], department=department,
                                                        secret=data["secret"], name=data["name"])
        except services.NotifyError as exc:
            raise ProblemsError(exc.message, [problem("notify.refused", exc.field or "", exc.message)]) from exc
        body = EndpointSerializer(endpoint).data
        body["secret"] = secret if not data["secret"] else ""
        return Response(body, status=status.HTTP_201_CREATED)


class EndpointDetail(APIView):
    def _endpoint(self, request, endpoint_uuid) -> Endpoint:
        access.require(request.user, *MANAGERS)
        endpoint = Endpoint.objects.filter(uuid=endpoint_uuid).select_related("owner", "department").first()
        if endpoint is None or not services.may_manage(request.user, endpoint):
            if endpoint is not None:
                access.deny(request.user, "notification endpoint of another owner", obj=endpoint, status=404)
            raise Http404("No such endpoint.")
        return endpoint

    @extend_schema(operation_id="notify_endpoints_read", tags=["notifications"], responses={200: EndpointSerializer, **documented_errors(403, 404)},
                   summary="One endpoint")
    def get(self, request, endpoint_uuid):
        return Response(EndpointSerializer(self._endpoint(request, endpoint_uuid)).data)

    @extend_schema(operation_id="notify_endpoints_delete", tags=["notifications"],
                   responses={200: OpenApiResponse(EndpointSerializer, description="Deleted: what it was."),
                              **documented_errors(403, 404)},
                   summary="Delete an endpoint")
    def delete(self, request, endpoint_uuid):
        endpoint = self._endpoint(request, endpoint_uuid)
        body = EndpointSerializer(endpoint).data
        services.endpoint_delete(actor=request.user, endpoint=endpoint)
        return Response(body)
