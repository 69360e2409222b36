from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        # Importing registers the configuration checks (goldsmith.E001 and on).
        from portal import checks, checks_identity  # noqa: F401
