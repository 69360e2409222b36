"""Content negotiation that never refuses: the API speaks JSON (and CSV for the export).

DRF answers 406 when the Accept header names nothing a view renders; a pipeline sending
`Accept: text/plain` (or a CSV download whose request fails) should rather get the JSON error
shape it can read. So an unsatisfiable Accept falls back to the view's first renderer, JSON.
"""

from __future__ import annotations

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class JsonFallbackNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
