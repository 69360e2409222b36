"""htmx on the pages: whether a request came from htmx, and the one rule for answering it.

The rule (docs/style.md): an htmx request gets the fragment it swaps in; form errors answer
200 there (htmx swaps only 2xx answers by default) and 422 to a plain form post. Every answer
that depends on the header says so (Vary: HX-Request), so no cache serves a fragment as a page.
"""

from __future__ import annotations

from django.shortcuts import render as django_render
from django.utils.cache import patch_vary_headers


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def error_status(request, status: int = 422) -> int:
    """The status for a form with errors: 200 for htmx (so it swaps them in), else `status`."""
    return 200 if is_htmx(request) else status


def render(request, template: str, context: dict, *, fragment: str | None = None, status: int = 200):
    """The full page, or `fragment` for htmx; a 422 becomes 200 for htmx; Vary: HX-Request."""
    htmx = is_htmx(request)
    name = fragment if fragment and htmx else template
    response = django_render(request, name, context, status=error_status(request, status) if status == 422 else status)
    patch_vary_headers(response, ("HX-Request",))
    return response
