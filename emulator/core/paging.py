"""Paging shared by the listings (templates, gallery image versions)."""

from __future__ import annotations

from emulator.core.http import ArmError, Request

PAGE_SIZE = 100


def page_size(app) -> int:
    """Items per list page: the control API's page_size setting, else PAGE_SIZE."""
    control = app.services.get("control")
    size = control.settings.get("page_size") if control is not None else None
    return int(size) if size else PAGE_SIZE


def skip_token(request: Request) -> int:
    """The position a `$skipToken` (or `skipToken`) from one of our nextLinks names; 0 without one."""
    token = request.arg("$skipToken") or request.arg("skipToken")
    if not token:
        return 0
    if not token.isdigit():
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is not valid.")
    return int(token)
