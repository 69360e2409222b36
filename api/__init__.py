"""Goldsmith's JSON API (/api/v1/), for pipelines and scripts. docs/api.md is the user's guide.

- urls.py: the endpoints, in the `api` namespace; unknown paths under /api/ answer the API's 404.
- views.py: thin views: objects through builds.access (on portal.access), conversions in serializers.py, writes
  through the same services as the pages (so the same audit events are written).
- resolve.py: a build request's references to catalog objects, through the funnel.
- errors.py: one error shape, {"error": {"code", "message", "problems"?}}, for every error.
- pagination.py: keyset cursors for every list; throttling.py: API_RATE_PER_MINUTE per token.
- idempotency.py: Idempotency-Key for build requests; negotiation.py: JSON unless CSV asked;
  parsers.py: JSON bodies of at most 500 KB.
- openapi.py: the Bearer scheme for the document, the document and the Swagger UI views.

Callers authenticate with `Authorization: Bearer <token>` (portal.tokens) or, for the docs
and trying things out in the browser, the portal session; session calls that change
anything need the CSRF token (DRF's SessionAuthentication enforces it; Bearer calls need none).
"""
