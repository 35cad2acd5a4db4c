from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "HSI Console"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # checks registers the system checks; signals audits sign-ins and feeds the sign-in limit.
        from console import checks, signals  # noqa: F401
        from console.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="console.roles.ensure_roles")
