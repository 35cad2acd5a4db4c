"""The console's roles and permissions, as data (used by the data migration and the docs)."""

from __future__ import annotations

from typing import Any

PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("view_console", "Can view the console"),
    ("view_live_events", "Can view live events"),
    ("retry_items", "Can retry DLQ items"),
    ("delete_items", "Can delete and restore items"),
    ("edit_and_retry", "Can edit and retry DLQ items"),
    ("cancel_jobs", "Can cancel and abort jobs"),
    ("manage_keys", "Can clear dedupe, cache and rate-limit keys"),
    ("manage_services", "Can restart, enable and disable services"),
    ("view_audit", "Can view the audit trail"),
)

VIEWER = ("console.view_console", "console.view_live_events")
OPERATOR = (
    *VIEWER,
    "console.retry_items",
    "console.delete_items",
    "console.edit_and_retry",
    "console.cancel_jobs",
    "console.manage_keys",
    "console.manage_services",
    "console.view_audit",
    "console.view_auditentry",
)
ADMIN = (
    *OPERATOR,
    *(
        f"auth.{action}_{model}"
        for model in ("user", "group")
        for action in ("add", "change", "delete", "view")
    ),
    "auth.view_permission",
    "authtoken.add_token",
    "authtoken.view_token",
    "authtoken.delete_token",
)

ROLES: dict[str, tuple[str, ...]] = {"Viewer": VIEWER, "Operator": OPERATOR, "Admin": ADMIN}


def perm(codename: str) -> str:
    """The ``app_label.codename`` form ``user.has_perm`` expects."""
    return f"console.{codename}"


def ensure_roles(sender: Any = None, *, apps: Any = None, using: str = "default", **kwargs: Any) -> None:
    """Create each role's group with its permissions where the group is missing (``post_migrate``):
    a flushed database (``manage.py flush``, a transactional test) gets its roles back, as it gets
    its permissions back. A group that exists is left as it is, with whatever an Admin changed."""
    from django.apps import apps as installed
    from django.contrib.auth.management import create_permissions

    apps = apps or installed  # flush sends no migration state
    for app_config in installed.get_app_configs():  # the roles use auth's and authtoken's too
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    group_model, permission_model = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    for name, permissions in ROLES.items():
        group, created = group_model.objects.using(using).get_or_create(name=name)
        if created:
            for dotted in permissions:
                app_label, codename = dotted.split(".")
                group.permissions.add(
                    permission_model.objects.using(using).get(
                        content_type__app_label=app_label, codename=codename
                    )
                )
