"""GET /api/v1/builds/{id}/log: the build's redacted Packer log (`?log=validation`: its
validation.log; customization.log by default), streamed as text/plain, with single byte ranges (206, 416) over the redacted text. A kept copy knows its size; a live log is
read through once to learn it before a ranged answer (the staging blob's offsets count bytes
before redaction)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api import errors
from api import serializers as s
from builds import access, buildlogs
from portal.json_errors import body

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _limited(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    for chunk in chunks:
        if length <= 0:
            return
        piece = chunk[:length]
        length -= len(piece)
        yield piece


class BuildLog(APIView):
    @extend_schema(
        operation_id="builds_log", tags=["builds"],
        parameters=[OpenApiParameter("build_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                     description="The build's id."),
                    OpenApiParameter("log", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                                     enum=["customization", "validation"], default="customization",
                                     description="Which log: `customization` (customization.log, the "
                                                 "customizers) or `validation` (validation.log, written "
                                                 "when the template has in-VM validators)."),
                    OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                                     description="One byte range of the redacted text: `bytes=0-1023`, "
                                                 "`bytes=1024-` or `bytes=-500` (the last 500 bytes).")],
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description=(
            "The whole log, secrets masked, streamed. Live while the build runs (from its staging storage), "
            "Goldsmith's kept copy after cleanup.")),
            (206, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The requested range (Content-Range)."),
            400: OpenApiResponse(s.ErrorSerializer, description="validation_failed: `log` is neither "
                                                                 "`customization` nor `validation`."),
            403: OpenApiResponse(s.ErrorSerializer, description="permission_denied"),
            404: OpenApiResponse(s.ErrorSerializer, description="not_found: no such build, or no log (yet, or any "
                                                                 "more; or no validation log: no validators); "
                                                                 "the detail says which."),
            401: OpenApiResponse(s.ErrorSerializer, description="not_authenticated"),
            429: OpenApiResponse(s.ErrorSerializer, description="throttled: over API_RATE_PER_MINUTE"),
            416: OpenApiResponse(s.ErrorSerializer, description="range_not_satisfiable: the range starts past "
                                                                 "the end (Content-Range: bytes */size).")},
        summary="A build's log as text (redacted), with Range")
    def get(self, request, build_uuid):
        build = access.get_build(request.user, build_uuid)
        log = request.query_params.get("log") or buildlogs.CUSTOMIZATION
        if log not in buildlogs.LOGS:
            raise errors.ProblemsError("The query parameter log is not valid.", [
                errors.problem("log", "log", "Must be customization or validation.")])
        header = request.headers.get("Range", "").strip()
        try:
            if not header:
                chunks, size, _kind = buildlogs.opened(build, log=log)
                response = StreamingHttpResponse(chunks, content_type="text/plain; charset=utf-8")
                if size is not None:
                    response["Content-Length"] = str(size)
                response["Accept-Ranges"] = "bytes"
                return response
            size = buildlogs.redacted_size(build, log=log)
        except buildlogs.Unavailable as exc:
            return Response(body("not_found", str(exc)), status=404)
        found = _RANGE.match(header)
        if not found or not (found.group(1) or found.group(2)):
            # Not one range we understand (several ranges, another unit): the whole log, as RFC 9110 allows.
            response = StreamingHttpResponse(buildlogs.stream(build, log=log), content_type="text/plain; charset=utf-8")
            response["Content-Length"] = str(size)
            response["Accept-Ranges"] = "bytes"
            return response
        first, last = found.group(1), found.group(2)
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        else:
            start, end = max(0, size - int(last)), size - 1
        if start >= size or end < start:
            return Response(body("range_not_satisfiable", f"The log has {size} bytes."), status=416,
                            headers={"Content-Range": f"bytes */{size}"})
        length = end - start + 1
        response = StreamingHttpResponse(_limited(buildlogs.stream(build, start, log=log), length), status=206,
                                         content_type="text/plain; charset=utf-8")
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(length)
        response["Accept-Ranges"] = "bytes"
        return response
