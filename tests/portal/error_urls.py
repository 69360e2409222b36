"""The portal's URLs plus views that fail on purpose, for the error page tests only."""

from django.core.exceptions import SuspiciousOperation
from django.urls import path

from web.urls import urlpatterns as portal_urlpatterns


def fail(request):
    raise RuntimeError("the test's own failure")


def suspicious(request):
    raise SuspiciousOperation("the test's own bad request")


urlpatterns = [
    path("test-errors/500/", fail),
    path("test-errors/400/", suspicious),
    *portal_urlpatterns,
]
