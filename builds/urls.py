from django.urls import path  # noqa: F401 - patterns are added by the pages that need them

app_name = "builds"

urlpatterns: list = []
