"""``manage.py check_redis``: connect as the console would and say what is wrong, if anything."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.redis import log_connection_status


class Command(BaseCommand):
    help = "Connect to HSI's Redis with the configured settings and report the result in one sentence."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing; only set the exit code.")

    def handle(self, *args: Any, **options: Any) -> None:
        config = settings.HSI_REDIS
        report = log_connection_status(config)
        if not report.connected:
            raise CommandError(f"{report.message} (REDIS_URL={config.masked_url})", returncode=2)
        if not options["quiet"]:
            self.stdout.write(self.style.SUCCESS(f"{report.message} at {config.masked_url}"))
