"""The API's endpoints: thin views that read through the access funnel, convert with the
serializers and call the same services as the pages (which write the audit events).

Authentication, the rate limit, renderers and the error shape come from REST_FRAMEWORK in
portal/settings.py; see api/__init__.py for the whole picture.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from api import errors, idempotency, pagination, resolve
from api import serializers as s
from api.errors import ProblemsError, problem
from builds import access, importer, preflight, schema, selectors, services, validation
from builds.models import Build
from builds.schema import Problem
from portal import audit_export, audit_history
from portal.tokens import BearerTokenAuthentication

CATALOG_READERS = (access.SECURITY, access.EDITOR, access.AUDITOR)
AUDIT_READERS = (access.AUDITOR, access.SECURITY)

# --- Documentation helpers ------------------------------------------------------------------------


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses an operation documents (always 401 and 429)."""
    described = {
        400: "validation_failed: the problems list says what to fix.",
        401: "not_authenticated: no token, or a revoked, expired or unknown one.",
        403: "permission_denied: your role may not do this (or a session call without its CSRF token).",
        404: "not_found: no such object, or not one you may see.",
        409: "conflict: the object's state refuses the request.",
        413: "request_too_large: the body is over 500 KB.",
        429: "throttled: over API_RATE_PER_MINUTE; wait Retry-After seconds.",
    }
    wanted = sorted({401, 429, *statuses})
    return {code: OpenApiResponse(s.ErrorSerializer, description=described[code]) for code in wanted}


def _slug_param(name: str, description: str, example: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.PATH, description=description,
                            pattern=r"^[-a-zA-Z0-9_]+$", examples=[OpenApiExample(example, value=example)])


VERSION_PARAM = OpenApiParameter("version", OpenApiTypes.STR, OpenApiParameter.PATH,
                                 description="A version, e.g. `1.2.0`.", pattern=r"^[0-9A-Za-z.+-]{1,32}$",
                                 examples=[OpenApiExample("1.0.0", value="1.0.0")])
GOLD_SLUG = _slug_param("slug", "The gold image's slug.", "ubuntu")
DEPARTMENT_SLUG = _slug_param("department", "The department's slug.", "web")
LAYER_SLUG = _slug_param("slug", "The layer's slug.", "nginx")


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _query(request, *serializer_classes) -> dict:
    """The query parameters validated by each serializer class, merged; every problem at once."""
    merged, problems = {}, []
    for serializer_class in serializer_classes:
        # DRF would skip an empty optional parameter; the document promises a value, so say so.
        problems += [Problem("request.blank", name, "Leave the parameter out rather than send it empty.")
                     for name in serializer_class().fields if request.query_params.get(name, None) == ""]
        serializer = serializer_class(data=request.query_params)
        if serializer.is_valid():
            merged.update(serializer.validated_data)
        else:
            problems += errors.problems_from_detail(serializer.errors)
    if problems:
        raise ProblemsError("The request is not valid.", problems)
    return merged


# --- Gold images ----------------------------------------------------------------------------------


class GoldImageList(APIView):
    @extend_schema(operation_id="gold_images_list", tags=["gold images"], parameters=[pagination.PageParams],
                   responses={200: s.GoldImagePage, **_errors(400, 403)},
                   summary="Gold images you may see, with their visible versions")
    def get(self, request):
        access.require(request.user, *CATALOG_READERS)
        params = _query(request, pagination.PageParams)
        position = pagination.decode(params.get("cursor"), ("slug",))
        queryset = selectors.gold_image_list(request.user)
        if position:
            queryset = queryset.filter(slug__gt=str(position["slug"]))
        rows = list(queryset[: params["limit"] + 1])
        rows, after = pagination.page(rows, params["limit"], lambda image: {"slug": image.slug})
        return Response({"results": s.GoldImageSerializer(rows, many=True, context={"request": request}).data,
                         "next": pagination.next_url(request, after)})


class GoldImageDetail(APIView):
    @extend_schema(operation_id="gold_images_retrieve", tags=["gold images"],
                   parameters=[GOLD_SLUG],
                   responses={200: s.GoldImageSerializer, **_errors(403, 404)}, summary="One gold image")
    def get(self, request, slug):
        image = selectors.gold_image_detail(request.user, slug)
        return Response(s.GoldImageSerializer(image, context={"request": request}).data)


class GoldVersionDetail(APIView):
    @extend_schema(operation_id="gold_versions_retrieve", tags=["gold images"],
                   parameters=[GOLD_SLUG, VERSION_PARAM],
                   responses={200: s.GoldVersionSerializer, **_errors(403, 404)},
                   summary="One gold image version, with its composed baseline template")
    def get(self, request, slug, version):
        gold_version = access.get_gold_version(request.user, slug, version)
        return Response(s.GoldVersionSerializer(gold_version, context={"request": request}).data)


# --- Layers ----------------------------------------------------------------------------------------


class LayerList(APIView):
    @extend_schema(operation_id="layers_list", tags=["layers"], parameters=[s.LayerFilterParams, pagination.PageParams],
                   responses={200: s.LayerPage, **_errors(400, 403)},
                   summary="Layers of your departments (every department's for security and auditors)")
    def get(self, request):
        access.require(request.user, *CATALOG_READERS)
        params = filters = _query(request, pagination.PageParams, s.LayerFilterParams)
        position = pagination.decode(params.get("cursor"), ("department", "slug"))
        queryset = selectors.layer_list(request.user, department=filters.get("department", ""),
                                        gold_image=filters.get("gold_image", ""))
        if position:
            department, slug = str(position["department"]), str(position["slug"])
            queryset = queryset.filter(Q(department__slug__gt=department) | Q(department__slug=department,
                                                                               slug__gt=slug))
        rows = list(queryset[: params["limit"] + 1])
        rows, after = pagination.page(rows, params["limit"],
                                      lambda layer: {"department": layer.department.slug, "slug": layer.slug})
        return Response({"results": s.LayerSerializer(rows, many=True, context={"request": request}).data,
                         "next": pagination.next_url(request, after)})


class LayerDetail(APIView):
    @extend_schema(operation_id="layers_retrieve", tags=["layers"],
                   parameters=[DEPARTMENT_SLUG, LAYER_SLUG],
                   responses={200: s.LayerSerializer, **_errors(403, 404)}, summary="One layer")
    def get(self, request, department, slug):
        layer = selectors.layer_detail(request.user, department, slug)
        return Response(s.LayerSerializer(layer, context={"request": request}).data)


class LayerVersionDetail(APIView):
    @extend_schema(operation_id="layer_versions_retrieve", tags=["layers"],
                   parameters=[DEPARTMENT_SLUG, LAYER_SLUG, VERSION_PARAM],
                   responses={200: s.LayerVersionSerializer, **_errors(403, 404)},
                   summary="One layer version: its steps, tags and the gold versions it accepts")
    def get(self, request, department, slug, version):
        layer_version = access.get_layer_version(request.user, department, slug, version)
        return Response(s.LayerVersionSerializer(layer_version, context={"request": request}).data)


# --- Builds ----------------------------------------------------------------------------------------


def _build_position(text_position: dict | None) -> tuple[dt.datetime, int] | None:
    if text_position is None:
        return None
    try:
        created = dt.datetime.fromisoformat(str(text_position["created_at"]))
        return created, int(text_position["id"])
    except (TypeError, ValueError):
        raise ProblemsError("The request is not valid.", [
            problem("request.cursor", "cursor", "This cursor was not made by this list: use the `next` link.")]) \
            from None


class BuildList(APIView):
    @extend_schema(operation_id="builds_list", tags=["builds"], parameters=[s.BuildFilterParams, pagination.PageParams],
                   responses={200: s.BuildPage, **_errors(400, 403)},
                   summary="Builds you may see, newest first")
    def get(self, request):
        access.require(request.user, *CATALOG_READERS, access.ADMIN)  # the admin role reads builds too
        params = filters = _query(request, pagination.PageParams, s.BuildFilterParams)
        position = _build_position(pagination.decode(params.get("cursor"), ("created_at", "id")))
        queryset = selectors.build_list(request.user, selectors.BuildFilters(
            **{name: filters[name] for name in s.BuildFilterParams().fields if name in filters}))
        if position:
            created, build_id = position
            if timezone.is_naive(created):
                created = timezone.make_aware(created, dt.UTC)
            queryset = queryset.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=build_id))
        rows = list(queryset[: params["limit"] + 1])
        rows, after = pagination.page(rows, params["limit"],
                                      lambda build: {"created_at": build.created_at.isoformat(), "id": build.id})
        return Response({"results": s.BuildListItemSerializer(rows, many=True, context={"request": request}).data,
                         "next": pagination.next_url(request, after)})

    @extend_schema(
        operation_id="builds_create", tags=["builds"], request=s.BuildRequestSerializer,
        examples=[OpenApiExample("A department layer on a gold version", request_only=True,
                                 value={"gold_image": "ubuntu", "version": "1.0.0", "layers": ["web/nginx@1.0.0"]}),
                  OpenApiExample("Gold only", request_only=True, value={"gold_image": "ubuntu", "version": "1.0.0"}),
                  OpenApiExample("On a release channel", request_only=True,
                                 value={"gold_image": "ubuntu", "channel": "production",
                                        "layers": ["web/nginx@1.0.0"]})],
        parameters=[OpenApiParameter(idempotency.HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description="Optional: the same key and body within 24 hours answer the build "
                                                 "already requested instead of making another.")],
        responses={202: OpenApiResponse(s.BuildSerializer, description="Requested: follow `url` until the state "
                                                                       "is final. Location names it too."),
                   **_errors(400, 403, 409, 413)},
        summary="Request a build (every validation rule runs first)")
    def post(self, request):
        access.require(request.user, access.SECURITY, access.EDITOR)
        data = _valid(s.BuildRequestSerializer, request.data)
        claim = idempotency.claim(request, data)
        if claim.replay:
            build = access.get_build(request.user, claim.replay)
            return self._accepted(request, build, replayed=True)
        try:
            wanted = resolve.build_request_objects(request.user, data)
            try:
                build = services.build_request(actor=request.user, gold_version=wanted.gold_version,
                                               layer_versions=wanted.layer_versions, department=wanted.department,
                                               channel=wanted.channel)
            except services.ServiceError as exc:
                raise ProblemsError(exc.message, exc.problems or [Problem("build.refused", "", exc.message)]) \
                    from exc
        except BaseException:
            idempotency.release(claim)
            raise
        idempotency.complete(claim, str(build.uuid))
        return self._accepted(request, build)

    def _accepted(self, request, build: Build, *, replayed: bool = False) -> Response:
        data = s.BuildSerializer(build, context={"request": request}).data
        response = Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


BUILD_UUID_PARAM = OpenApiParameter("build_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The build's id.")


class BuildDetail(APIView):
    @extend_schema(operation_id="builds_retrieve", tags=["builds"], parameters=[BUILD_UUID_PARAM],
                   responses={200: s.BuildSerializer, **_errors(403, 404)},
                   summary="One build: state, sub-state, events, outputs, error and template hash")
    def get(self, request, build_uuid):
        build = access.get_build(request.user, build_uuid)
        return Response(s.BuildSerializer(build, context={"request": request}).data)


class BuildCancel(APIView):
    @extend_schema(operation_id="builds_cancel", tags=["builds"], parameters=[BUILD_UUID_PARAM], request=None,
                   responses={202: OpenApiResponse(s.BuildSerializer, description="Canceled, or canceling: Image "
                                                                                  "Builder is asked to stop the run."),
                              **_errors(403, 404, 409)},
                   summary="Cancel an active build")
    def post(self, request, build_uuid):
        build = access.get_build(request.user, build_uuid, need="change")
        try:
            services.build_cancel(actor=request.user, build=build)
        except services.ServiceError as exc:
            raise errors.Conflict(exc.message) from exc
        build = access.get_build(request.user, build_uuid)
        return Response(s.BuildSerializer(build, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


# --- Template check --------------------------------------------------------------------------------


class TemplateCheck(APIView):
    @extend_schema(
        operation_id="templates_check", tags=["templates"], parameters=[s.TemplateCheckParams],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiResponse(s.TemplateCheckResultSerializer,
                                        description="The check ran: `ok` says whether the template passes."),
                   **_errors(400, 403, 413)},
        summary="Check an Image Builder template against every rule (as `manage.py checktemplate`)",
        description="The body is a template as a bare body, an ARM resource or an ARM deployment template.")
    def post(self, request):
        access.require(request.user, *CATALOG_READERS)
        params = _query(request, s.TemplateCheckParams)
        if not isinstance(request.data, dict):
            raise ProblemsError("The request is not valid.", [
                problem("request.not-an-object", "", "Send the template as a JSON object.")])
        try:
            parsed = importer.parse(request.data)
        except importer.ImportError_ as exc:
            problems = exc.problems or [Problem("import.unreadable", "", str(exc))]
            return Response(_check_result(problems, form="", checks=[]))
        try:
            report = preflight.body_report(parsed.body, policy=params.get("policy"), lookups=not params["offline"],
                                           os_type=params.get("os_type") or importer.guess_os_type(parsed.body))
        except preflight.UnknownPolicy as exc:
            raise ProblemsError("The request is not valid.", [problem("request.policy", "policy", str(exc))]) \
                from exc
        problems = schema.dedupe(parsed.problems + report.problems)
        return Response(_check_result(problems, form=parsed.form,
                                      checks=validation.summarize(problems, report.ran)))


def _check_result(problems: list[Problem], *, form: str, checks: list) -> dict:
    errors_found = any(p.severity == "error" for p in problems)
    return {"ok": not errors_found, "form": form, "problems": [p.as_dict() for p in problems],
            "checks": [{"group": c.group, "title": c.title, "ran": c.ran, "passed": c.passed} for c in checks]}


# --- Audit -----------------------------------------------------------------------------------------


def _audit_query(request, *serializer_classes) -> tuple[dict, object]:
    """Validated query parameters and portal.audit_history's filter form bound to the query (the
    auditor pages' filters, applied by audit_history.apply_filters); 400 with every problem."""
    try:
        params = _query(request, *serializer_classes)
    except ProblemsError as exc:
        params, problems = {}, exc.problems
    else:
        problems = []
    form = audit_history.filter_form(request.query_params, audit_history.departments_for_filter())
    if form.is_bound and not form.is_valid():
        reported = {problem.path for problem in problems}
        problems += [Problem(f"request.{error.code or 'invalid'}", field, message)
                     for field, field_errors in form.errors.as_data().items() if field not in reported
                     for error in field_errors for message in error.messages]
    if problems:
        raise ProblemsError("The request is not valid.", problems)
    return params, form


class AuditEventList(APIView):
    @extend_schema(operation_id="audit_events_list", tags=["audit"],
                   parameters=[s.AuditFilterParams, pagination.PageParams],
                   responses={200: s.AuditEventPage, **_errors(400, 403)},
                   summary="The audit trail, newest first (auditors and the security team)")
    def get(self, request):
        access.require(request.user, *AUDIT_READERS)
        params, form = _audit_query(request, s.AuditFilterParams, pagination.PageParams)
        position = pagination.decode(params.get("cursor"), ("before",))
        before = position["before"] if position else None
        if before is not None and not isinstance(before, int):
            raise ProblemsError("The request is not valid.", [
                problem("request.cursor", "cursor", "This cursor was not made by this list: use the `next` link.")])
        queryset = audit_history.history_list(request.user, form)
        found = audit_history.keyset_page(queryset, before=before, size=params["limit"])
        after = {"before": found.older} if found.older is not None else None
        return Response({"results": s.AuditEventSerializer(found.events, many=True).data,
                         "next": pagination.next_url(request, after)})


class AuditExport(APIView):
    # Tokens only: an export is recorded, so a link on another site must not be able to make an
    # auditor's signed-in browser export (the export page is POST with CSRF for the same reason).
    authentication_classes = [BearerTokenAuthentication]

    @extend_schema(operation_id="audit_events_export", tags=["audit"], parameters=[s.AuditFilterParams],
                   responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=(
                       "The filtered trail as CSV, oldest first, through the newest event at the time of the "
                       "request (the columns of docs/audit.md). Recorded as `export.download`.")),
                       **_errors(400, 403)},
                   summary="Export the audit trail as CSV (auditors)")
    def get(self, request):
        access.require(request.user, access.AUDITOR)
        _, form = _audit_query(request, s.AuditFilterParams)
        return audit_export.record_and_stream(actor=request.user, queryset=audit_history.events(request.user, form),
                                              export_format="csv", filters=audit_history.active_filters(form),
                                              channel="api")
