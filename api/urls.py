"""URL patterns of the JSON API, mounted at /api/v1/ in the `api` namespace (web/urls.py)."""

from django.urls import path, register_converter

from api import openapi, views, views_approvals, views_logs, views_notify, views_preflight, views_rollouts


class VersionConverter:
    """Version strings as the catalog writes them (1.2.0, 2.0.0-rc.1); anything else is a 404."""

    regex = r"[0-9A-Za-z.+-]{1,32}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(VersionConverter, "apiversion")

app_name = "api"

urlpatterns = [
    path("gold-images/", views.GoldImageList.as_view(), name="gold-list"),
    path("gold-images/<slug:slug>/", views.GoldImageDetail.as_view(), name="gold-detail"),
    path("gold-images/<slug:slug>/versions/<apiversion:version>/", views.GoldVersionDetail.as_view(),
         name="gold-version"),
    path("gold-images/<slug:slug>/versions/<apiversion:version>/review/", views_preflight.GoldVersionReview.as_view(),
         name="gold-version-review"),
    path("layers/", views.LayerList.as_view(), name="layer-list"),
    path("layers/<slug:department>/<slug:slug>/", views.LayerDetail.as_view(), name="layer-detail"),
    path("layers/<slug:department>/<slug:slug>/versions/<apiversion:version>/", views.LayerVersionDetail.as_view(),
         name="layer-version"),
    path("builds/", views.BuildList.as_view(), name="build-list"),
    path("builds/<uuid:build_uuid>/", views.BuildDetail.as_view(), name="build-detail"),
    path("builds/<uuid:build_uuid>/cancel/", views.BuildCancel.as_view(), name="build-cancel"),
    path("builds/<uuid:build_uuid>/log", views_logs.BuildLog.as_view(), name="build-log"),
    path("templates/check/", views.TemplateCheck.as_view(), name="template-check"),
    path("vm-sizes/", views_preflight.VmSizeList.as_view(), name="vm-size-list"),
    path("audit-events/", views.AuditEventList.as_view(), name="audit-event-list"),
    path("audit-events/export.csv", views.AuditExport.as_view(), name="audit-export"),
    path("notify/endpoints/", views_notify.EndpointList.as_view(), name="notify-endpoint-list"),
    path("notify/endpoints/<uuid:endpoint_uuid>/", views_notify.EndpointDetail.as_view(), name="notify-endpoint-detail"),
    path("publish-requests/", views_approvals.PublishRequestList.as_view(), name="publish-request-list"),
    path("publish-requests/<uuid:request_uuid>/", views_approvals.PublishRequestDetail.as_view(),
         name="publish-request"),
    path("publish-requests/<uuid:request_uuid>/approve/", views_approvals.PublishRequestApprove.as_view(),
         name="publish-request-approve"),
    path("publish-requests/<uuid:request_uuid>/reject/", views_approvals.PublishRequestReject.as_view(),
         name="publish-request-reject"),
    path("publish-requests/<uuid:request_uuid>/withdraw/", views_approvals.PublishRequestWithdraw.as_view(),
         name="publish-request-withdraw"),
    path("rollouts/", views_rollouts.RolloutList.as_view(), name="rollout-list"),
    path("rollouts/<uuid:rollout_uuid>/", views_rollouts.RolloutDetail.as_view(), name="rollout"),
    path("rollouts/<uuid:rollout_uuid>/pause/", views_rollouts.RolloutPause.as_view(), name="rollout-pause"),
    path("rollouts/<uuid:rollout_uuid>/resume/", views_rollouts.RolloutResume.as_view(), name="rollout-resume"),
    path("rollouts/<uuid:rollout_uuid>/cancel/", views_rollouts.RolloutCancel.as_view(), name="rollout-cancel"),
    path("openapi.json", openapi.SchemaView.as_view(), name="openapi"),
    path("docs/", openapi.DocsView.as_view(url_name="api:openapi"), name="docs"),
]
