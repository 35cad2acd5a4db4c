"""``manage.py ensure_dev_admin``: in DEBUG only, a superuser for the newcomer, printed once per run."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser

USERNAME = "admin"


class Command(BaseCommand):
    help = "Create (or reset) the development login 'admin' and print its password. Refuses outside DEBUG."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password-file",
            default=str(settings.BASE_DIR / ".run" / "dev-admin-password"),
            help="Where the generated password is kept between runs (git-ignored).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "ensure_dev_admin only runs with DJANGO_DEBUG=true; use createsuperuser instead."
            )
        password_file = Path(options["password_file"])
        password_file.parent.mkdir(parents=True, exist_ok=True)
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        user, _ = User.objects.get_or_create(username=USERNAME)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get(name="Admin"))
        self.stdout.write(
            f"Development login: {USERNAME} / {password}  (DEBUG only; kept in {password_file})"
        )
