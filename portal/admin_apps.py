"""Installs GoldsmithAdminSite as the default admin site (in INSTALLED_APPS instead of
"django.contrib.admin"), so every `admin.register` anywhere lands on the guarded site."""

from django.contrib.admin.apps import AdminConfig


class GoldsmithAdminConfig(AdminConfig):
    default_site = "portal.admin_site.GoldsmithAdminSite"
