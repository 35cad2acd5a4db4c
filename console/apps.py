from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "HSI Console"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # checks registers the system checks; signals audits sign-ins and feeds the sign-in limit.
        from console import checks, signals  # noqa: F401
