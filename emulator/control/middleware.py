"""The shared middlewares the control service installs (outermost first): the request log,
ARM response headers, fault injection and bearer-token authentication with RBAC denials.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable

from emulator.control.backend import Control, FaultRule, arm_action, client_of, subscription_of, unverified_claims
from emulator.core import ArmError, Drop, Request, Response, Route
from emulator.core.clock import iso

# ---------------------------------------------------------------------------------------

def _kind(route: Route) -> str:
    if route.operation.startswith("Control_"):
        return "control"
    return "arm" if route.auth == "arm" else "other"


def request_log_middleware(control: Control) -> Callable:
    def middleware(request: Request, route: Route, call_next: Callable[[Request], Response]) -> Response:
        started = time.monotonic()
        # Wall-clock time: the log is about what clients did (e.g. waiting out a Retry-After, in
        # real seconds), which a frozen or advanced emulator clock would hide.
        at = iso(dt.datetime.now(dt.UTC))
        emulator_at = iso(control.app.clock.now())
        status: int = 0
        retry_after = None
        try:
            try:
                response = call_next(request)
            except ArmError as error:  # refused further in (401, 403...): still an answer to log
                response = error.to_response()
            status = response.status
            retry_after = response.headers.get("Retry-After")
            return response
        finally:
            claims = request.claims or unverified_claims(request.headers.get("Authorization"))
            control.record({
                "time": at,
                "emulatorTime": emulator_at,
                "clientId": client_of(claims),
                "method": request.method,
                "path": request.path,
                "operation": route.operation,
                "template": request.params.get("template"),
                "status": status,  # 0: the connection was dropped without an answer
                "retryAfter": retry_after,
                "durationMs": round((time.monotonic() - started) * 1000, 1),
                "kind": _kind(route),
            })

    return middleware


def arm_headers_middleware(control: Control) -> Callable:
    """Every ARM answer carries request ids and the subscription's remaining-requests counter."""

    def middleware(request: Request, route: Route, call_next: Callable[[Request], Response]) -> Response:
        if route.auth != "arm":
            return call_next(request)
        request_id = str(uuid.uuid4())
        correlation = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        request.correlation_id = correlation  # type: ignore[attr-defined]
        try:
            response = call_next(request)
        except ArmError as error:
            response = error.to_response()
        kind = "reads" if request.method in ("GET", "HEAD") else "writes"
        subscription = subscription_of(request.path) or "tenant"
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": correlation,
            f"x-ms-ratelimit-remaining-subscription-{kind}": str(control.remaining(subscription, kind)),
        }
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            headers["x-ms-client-request-id"] = client_request_id
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    return middleware


def _fault_response(rule: FaultRule, request: Request) -> Response:
    subscription = subscription_of(request.path) or "(none)"
    kind = "read" if request.method in ("GET", "HEAD") else "write"
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(int(rule.retry_after)) if float(rule.retry_after).is_integer() else str(rule.retry_after)
    if rule.status == 429:
        wait = headers.get("Retry-After", "5")
        actor = client_of(request.claims or unverified_claims(request.headers.get("Authorization"))) or "unknown"
        code = rule.code or "TooManyRequests"
        message = rule.message or (
            f"Number of '{kind}' requests for subscription '{subscription}' actor '{actor}' exceeded. "
            f"Please try again after '{wait}' seconds after additional tokens are available. "
            "Refer to https://aka.ms/arm-throttling for additional information.")
        headers.setdefault("Retry-After", wait)
        headers[f"x-ms-ratelimit-remaining-subscription-{kind}s"] = "0"
        headers["x-ms-failure-cause"] = "gateway"
    elif rule.status == 503:
        code = rule.code or "ServiceUnavailable"
        message = rule.message or ("The service is temporarily unable to handle the request. "
                                   "Please retry the request later.")
    else:
        tracking = str(uuid.uuid4())
        code = rule.code or "InternalServerError"
        message = rule.message or (
            "Encountered internal server error. Diagnostic information: timestamp "
            f"'{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}', subscription id '{subscription}', "
            f"tracking id '{tracking}', request correlation id '{getattr(request, 'correlation_id', tracking)}'.")
    return ArmError(rule.status or 500, code, message, headers=headers).to_response()


def faults_middleware(control: Control) -> Callable:
    def middleware(request: Request, route: Route, call_next: Callable[[Request], Response]) -> Response:
        fired = control.firing_rules(request, route)
        if not fired:
            return call_next(request)
        latency = sum(rule.latency_ms for rule in fired)
        if latency:
            time.sleep(latency / 1000)  # real time: latency is about the network, not the simulation
        for rule in fired:
            if rule.drop:
                raise Drop
            if rule.status is not None:
                return _fault_response(rule, request)
        return call_next(request)

    return middleware


def auth_middleware(control: Control) -> Callable:
    """ARM routes need a verified bearer token (entra's verify_bearer) and no matching denial."""

    def middleware(request: Request, route: Route, call_next: Callable[[Request], Response]) -> Response:
        if route.auth != "arm":
            return call_next(request)
        entra = control.app.services.get("entra")
        header = request.headers.get("Authorization")
        if entra is not None and hasattr(entra, "verify_bearer"):
            request.claims = entra.verify_bearer(header, base_url=request.base_url,
                                                 subscription=subscription_of(request.path))
        else:
            # No verifier registered (a trimmed-down app): accept any bearer token, refuse none.
            if not header:
                raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
            request.claims = unverified_claims(header) or {}
        action, scope = arm_action(request.method, request.path)
        if control.denied(request.claims or {}, action, scope):
            claims = request.claims or {}
            who = claims.get("oid") or client_of(claims) or "unknown"
            raise ArmError(403, "AuthorizationFailed",
                           f"The client '{client_of(claims) or who}' with object id '{who}' does not have authorization "
                           f"to perform action '{action}' over scope '{scope}' or the scope is invalid. "
                           "If access was recently granted, please refresh your credentials.")
        return call_next(request)

    return middleware


