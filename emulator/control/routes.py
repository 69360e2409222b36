"""The control API (/_emulator/...): health, reset, request log, stats, faults, denials, clock, settings.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from emulator.control.backend import CONTROL, Control
from emulator.control.middleware import (
    arm_headers_middleware,
    auth_middleware,
    faults_middleware,
    request_log_middleware,
)
from emulator.core import ArmError, Request, Response

if TYPE_CHECKING:
    from emulator.core.pipeline import App


# ---------------------------------------------------------------------------------------
# Control endpoints
# ---------------------------------------------------------------------------------------

def _body(request: Request) -> dict:
    body = request.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request body must be a JSON object.")
    return body


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def _int_arg(request: Request, name: str, default: int | None) -> int | None:
    value = request.arg(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ArmError(400, "InvalidParameter", f"'{name}' must be an integer.") from exc


def register_routes(app: App, control: Control) -> None:
    route = app.router.add

    @route("GET", CONTROL + "/health", "Control_Health", auth="none")
    def health(request: Request) -> Response:
        return Response(200, {"status": "ok", "services": sorted(app.services), **control.clock_state()})

    @route("POST", CONTROL + "/reset", "Control_Reset", auth="none")
    def reset(request: Request) -> Response:
        app.reset()
        return Response(200, {"status": "reset"})

    @route("GET", CONTROL + "/requests", "Control_ListRequests", auth="none")
    def list_requests(request: Request) -> Response:
        entries, last = control.entries(
            since=_int_arg(request, "since", 0) or 0, control=_flag(request.arg("control"), True),
            operation=request.arg("operation"), template=request.arg("template"),
            client_id=request.arg("client_id"), limit=_int_arg(request, "limit", None))
        return Response(200, {"value": entries, "lastSeq": last})

    @route("GET", CONTROL + "/stats", "Control_Stats", auth="none")
    def stats(request: Request) -> Response:
        return Response(200, control.stats(_int_arg(request, "since", 0) or 0))

    @route("GET", CONTROL + "/faults", "Control_ListFaults", auth="none")
    def list_faults(request: Request) -> Response:
        return Response(200, {"value": control.faults()})

    @route("POST", CONTROL + "/faults", "Control_AddFault", auth="none")
    def add_fault(request: Request) -> Response:
        return Response(201, control.add_fault(_body(request)).public())

    @route("DELETE", CONTROL + "/faults", "Control_ClearFaults", auth="none")
    def clear_faults(request: Request) -> Response:
        control.remove_fault(None)
        return Response(204)

    @route("DELETE", CONTROL + r"/faults/(?P<rule>\d+)", "Control_DeleteFault", auth="none")
    def delete_fault(request: Request) -> Response:
        if not control.remove_fault(int(request.params["rule"])):
            raise ArmError(404, "NotFound", "No such fault rule.")
        return Response(204)

    @route("GET", CONTROL + "/denials", "Control_ListDenials", auth="none")
    def list_denials(request: Request) -> Response:
        return Response(200, {"value": control.denials()})

    @route("POST", CONTROL + "/denials", "Control_AddDenial", auth="none")
    def add_denial(request: Request) -> Response:
        return Response(201, asdict(control.add_denial(_body(request))))

    @route("DELETE", CONTROL + "/denials", "Control_ClearDenials", auth="none")
    def clear_denials(request: Request) -> Response:
        control.remove_denial(None)
        return Response(204)

    @route("DELETE", CONTROL + r"/denials/(?P<denial>\d+)", "Control_DeleteDenial", auth="none")
    def delete_denial(request: Request) -> Response:
        if not control.remove_denial(int(request.params["denial"])):
            raise ArmError(404, "NotFound", "No such denial.")
        return Response(204)

    @route("GET", CONTROL + "/clock", "Control_GetClock", auth="none")
    def get_clock(request: Request) -> Response:
        return Response(200, control.clock_state())

    @route("POST", CONTROL + "/clock", "Control_SetClock", auth="none")
    def set_clock(request: Request) -> Response:
        body = _body(request)
        unknown = set(body) - {"freeze", "advance_seconds", "time_scale"}
        if unknown:
            raise ArmError(400, "InvalidParameter", f"Unknown clock fields: {', '.join(sorted(unknown))}.")
        return Response(200, control.change_clock(time_scale=body.get("time_scale"), freeze=body.get("freeze"),
                                                  advance_seconds=body.get("advance_seconds")))

    @route("POST", CONTROL + "/clock/freeze", "Control_FreezeClock", auth="none")
    def freeze_clock(request: Request) -> Response:
        return Response(200, control.change_clock(freeze=True))

    @route("POST", CONTROL + "/clock/unfreeze", "Control_UnfreezeClock", auth="none")
    def unfreeze_clock(request: Request) -> Response:
        return Response(200, control.change_clock(freeze=False))

    @route("POST", CONTROL + "/clock/advance", "Control_AdvanceClock", auth="none")
    def advance_clock(request: Request) -> Response:
        seconds = _body(request).get("seconds")
        if not isinstance(seconds, int | float):
            raise ArmError(400, "InvalidParameter", "Send {\"seconds\": N}.")
        return Response(200, control.change_clock(advance_seconds=seconds))

    @route("GET", CONTROL + "/settings", "Control_GetSettings", auth="none")
    def get_settings(request: Request) -> Response:
        return Response(200, dict(control.settings))

    @route("POST", CONTROL + "/settings", "Control_SetSettings", auth="none")
    def set_settings(request: Request) -> Response:
        return Response(200, control.change_settings(_body(request)))


def register(app: App) -> None:
    """Register the control service, its routes and the shared middlewares (outermost first)."""
    control = Control(app)
    app.services["control"] = control
    app.reset_hooks.append(control.on_reset)
    register_routes(app, control)
    app.middlewares[:0] = [
        request_log_middleware(control),
        arm_headers_middleware(control),
        faults_middleware(control),
        auth_middleware(control),
    ]
