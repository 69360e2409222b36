from django.apps import AppConfig


class BuildsConfig(AppConfig):
    name = "builds"
    verbose_name = "Images and builds"

    def ready(self):
        # Importing registers the domain's system checks (goldsmith.E011) and the rollouts'
        # receiver of builds.signals.version_released (the policy's automatic rollouts).
        from builds import checks, rollouts  # noqa: F401
