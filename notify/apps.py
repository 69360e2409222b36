from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "notify"
    verbose_name = "Notifications"

    def ready(self):
        # Importing registers the notification checks (goldsmith.E030).
        from notify import checks  # noqa: F401
