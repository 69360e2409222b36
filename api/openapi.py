"""The OpenAPI document and the browsable docs (Swagger UI from drf-spectacular-sidecar).

The document is generated from the views and serializers by drf-spectacular; this module
adds what it cannot see: the Bearer token scheme, and the docs page served so that the
Content-Security-Policy holds (no inline script or style: the start-up script comes from the
same view's `?script` URL, Swagger UI itself from our static files, never a CDN).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.tokens.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A Goldsmith API token (`gst_...`) from your profile page or `manage.py createtoken`."}


class _JsonErrors:
    """Errors of the docs views in the API's JSON shape, whatever renders their success."""

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "exception", False):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class SchemaView(_JsonErrors, SpectacularJSONAPIView):
    pass


class DocsView(_JsonErrors, SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"
    title = "Goldsmith API"
