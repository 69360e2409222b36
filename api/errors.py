"""One error shape for every API error, and the exceptions the API raises itself.

Every error answers

    {"error": {"code": "<stable code>", "message": "<for people>", "problems": [...]}}

where `problems` (a list of {"rule", "path", "message", "severity"}, the shape of
builds.schema.Problem) appears with `validation_failed` only. Codes are part of the API's
contract (docs/api.md lists them); messages are not. A 404 always says "Not found.", so a
refused object and a missing one answer the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from builds.schema import Problem
from portal.json_errors import NOT_AUTHENTICATED, body, json_error

log = logging.getLogger(__name__)

VALIDATION_FAILED = "validation_failed"
PERMISSION_DENIED = "permission_denied"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
CONFLICT = "conflict"
REQUEST_TOO_LARGE = "request_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
THROTTLED = "throttled"
SERVER_ERROR = "server_error"

# Every code and its status, for the OpenAPI document and docs/api.md.
CODES = {
    VALIDATION_FAILED: 400, NOT_AUTHENTICATED: 401, PERMISSION_DENIED: 403, NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405, CONFLICT: 409, REQUEST_TOO_LARGE: 413, UNSUPPORTED_MEDIA_TYPE: 415, THROTTLED: 429,
    SERVER_ERROR: 500,
}
NOT_FOUND_MESSAGE = "Not found."


class ProblemsError(exceptions.APIException):
    """400 validation_failed with a list of Problems (a refused build, bad filters, a bad body)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = VALIDATION_FAILED

    def __init__(self, message: str, problems: Iterable[Problem] = ()):
        super().__init__(message)
        self.message = message
        self.problems = list(problems)


class Conflict(exceptions.APIException):
    """409: the request is well-formed but the object's state refuses it (cancel a finished build)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = CONFLICT
    default_detail = "The request conflicts with the current state."


class RequestTooLarge(exceptions.APIException):
    """413: the body is over the API's bound (parsers.MAX_BODY_BYTES) or Django's upload limit."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = REQUEST_TOO_LARGE
    default_detail = "The request body is too large."


def problem(rule: str, path: str, message: str, severity: str = "error") -> Problem:
    return Problem(rule, path, message, severity)


def problems_from_detail(detail: Any, path: str = "") -> list[Problem]:
    """DRF's nested ValidationError detail ({"field": ["msg"], "items": {0: {...}}}) as Problems,
    one per message, with JSON paths (`layers[1]`, `filters.since`)."""
    found: list[Problem] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                child = path
            elif isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            found += problems_from_detail(value, child)
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            for item in detail:
                found.append(Problem(f"request.{getattr(item, 'code', None) or 'invalid'}", path, str(item)))
        else:
            for index, item in enumerate(detail):
                if item:  # DRF puts {} for list items that passed
                    found += problems_from_detail(item, f"{path}[{index}]")
    else:
        found.append(Problem(f"request.{getattr(detail, 'code', None) or 'invalid'}", path, str(detail)))
    return found


def _code_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return NOT_AUTHENTICATED if exc.status_code == 401 else PERMISSION_DENIED
    return {
        exceptions.PermissionDenied: PERMISSION_DENIED, exceptions.NotFound: NOT_FOUND,
        exceptions.MethodNotAllowed: METHOD_NOT_ALLOWED, exceptions.UnsupportedMediaType: UNSUPPORTED_MEDIA_TYPE,
        exceptions.Throttled: THROTTLED, Conflict: CONFLICT, RequestTooLarge: REQUEST_TOO_LARGE,
    }.get(type(exc), {400: VALIDATION_FAILED, 409: CONFLICT}.get(exc.status_code, "error"))


def exception_handler(exc: Exception, context: dict) -> Response:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every exception of an API view becomes the one shape.

    Anything unexpected is logged with its traceback and answered 500 server_error (the
    request id in X-Request-ID finds it in the logs), never Django's HTML page.
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(NOT_FOUND_MESSAGE)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or exceptions.PermissionDenied.default_detail)
    elif isinstance(exc, RequestDataTooBig):
        # Django refuses a declared body over DATA_UPLOAD_MAX_MEMORY_SIZE when DRF reads it; the
        # body is left unread, so this costs nothing.
        exc = RequestTooLarge(f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    headers: dict[str, str] = {}
    if isinstance(exc, ProblemsError):
        return Response(body(VALIDATION_FAILED, exc.message, exc.problems), status=400)
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        detail = exc.detail
        if isinstance(exc, exceptions.ParseError):
            problems = [Problem("request.malformed", "", str(detail))]
        else:
            problems = problems_from_detail(detail)
        return Response(body(VALIDATION_FAILED, "The request is not valid.", problems), status=400)
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        message = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        if isinstance(exc, exceptions.NotFound):
            message = NOT_FOUND_MESSAGE
        return Response(body(_code_of(exc), str(message)), status=exc.status_code, headers=headers)
    request = context.get("request")
    log.error("API error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"),
              exc_info=(type(exc), exc, exc.__traceback__))
    return Response(body(SERVER_ERROR, "Something went wrong on our side; the request id in X-Request-ID "
                                       "helps the operators find it."), status=500)


@csrf_exempt  # a POST to an unknown path is a 404 like any other, not a CSRF refusal in HTML
def not_found_view(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/: the API's 404, not the portal's HTML page."""
    return json_error(404, NOT_FOUND, NOT_FOUND_MESSAGE)
