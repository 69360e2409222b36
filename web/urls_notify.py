"""Notification pages, in the `notify` namespace (included by web/urls.py)."""

from django.urls import path

from web import views_notify as views

app_name = "notify"

urlpatterns = [
    path("profile/notifications/", views.subscriptions, name="subscriptions"),
    path("notifications/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("notifications/endpoints/", views.endpoints, name="endpoints"),
    path("notifications/endpoints/<uuid:endpoint_uuid>/", views.endpoint_detail, name="endpoint-detail"),
    path("notifications/endpoints/<uuid:endpoint_uuid>/delete/", views.endpoint_delete, name="endpoint-delete"),
    path("notifications/endpoints/<uuid:endpoint_uuid>/enable/", views.endpoint_enable, name="endpoint-enable"),
    path("notifications/endpoints/<uuid:endpoint_uuid>/deliveries/<uuid:delivery_uuid>/redeliver/",
         views.delivery_redeliver, name="delivery-redeliver"),
    path("sandbox/mail/", views.sandbox_mail, name="sandbox-mail"),
]
