from django.contrib import admin
from django.urls import include, path, re_path

from api.errors import not_found_view as api_not_found
from portal import admin_site, health, signin
from web import views_portal as views
from web import views_profile
from web.urls_audit import audit_patterns

portal_patterns = [
    path("", views.home, name="home"),
    path("login/", signin.login_view, name="login"),
    path("logout/", signin.logout_view, name="logout"),
    path("auth/entra/", signin.entra_start, name="entra-start"),
    path("auth/entra/callback/", signin.entra_callback, name="entra-callback"),
    path("profile/", views_profile.profile, name="profile"),
    path("profile/tokens/", views_profile.token_create, name="token-create"),
    path("profile/tokens/<uuid:token_uuid>/revoke/", views_profile.token_revoke, name="token-revoke"),
    path("operator/", views.operator, name="operator"),
    *audit_patterns,
]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("", include("web.urls_builds")),
    path("", include("web.urls_notify")),
    path("admin/", admin.site.urls),
    path("rq/", include((admin_site.rq_patterns(), "django_rq"))),
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", include("api.urls")),
    re_path(r"^api/", api_not_found),  # the API's JSON 404 for any other path under /api/
]
