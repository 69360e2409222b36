from django.apps import AppConfig


class BuildsConfig(AppConfig):
    name = "builds"
    verbose_name = "Images and builds"

    def ready(self):
        # Importing registers the domain's system checks (goldsmith.E011).
        from builds import checks  # noqa: F401
