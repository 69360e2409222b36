"""Comparing whole pages: what differs on every answer by design."""

from __future__ import annotations

import re

_HX_TOKEN = re.compile(r'"X-CSRFToken": "[^"]*"')
_FORM_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def without_csrf_tokens(page: bytes | str) -> str:
    """The page with its CSRF tokens blanked: Django masks the token afresh for every answer, so
    two renders of one page (the 404 for a refused object and for a missing one) differ there only."""
    text = page.decode() if isinstance(page, bytes) else page
    text = _HX_TOKEN.sub('"X-CSRFToken": ""', text)
    return _FORM_TOKEN.sub('name="csrfmiddlewaretoken" value=""', text)
