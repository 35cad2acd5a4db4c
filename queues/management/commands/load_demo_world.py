"""``manage.py load_demo_world``: write a realistic HSI keyspace (both layouts) for development."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.redis import RedisConfig, explain, get_redis
from queues.demo import build_demo_world, holds_hsi_keys


def summary(config: RedisConfig, counts: dict[str, int]) -> str:
    families = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    return f"Loaded the HSI demo world into {config.masked_url}: {sum(counts.values())} keys ({families})."


class Command(BaseCommand):
    help = (
        "Write a realistic HSI keyspace (queues, DLQs, streams, jobs, orchestrator, batches...) into "
        "HSI's Redis. Only the demo's own keys are replaced; nothing else is touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--seed", type=int, default=7, help="Random seed (default 7): same seed, same world."
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when Redis already holds keys other than the console's own.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Replace existing HSI keys even with DJANGO_DEBUG=false."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = settings.HSI_REDIS
        try:
            client = get_redis(config)
            if holds_hsi_keys(client) and not self._may_replace(config, options):
                return
            counts = build_demo_world(client, seed=options["seed"])
        except redis.RedisError as exc:
            raise CommandError(explain(exc, config)) from exc
        self.stdout.write(self.style.SUCCESS(summary(config, counts)))

    def _may_replace(self, config: RedisConfig, options: dict[str, Any]) -> bool:
        """Redis already holds HSI keys: --if-empty skips, DEBUG or --force replaces, else refuse."""
        if options["if_empty"]:
            self.stdout.write(f"{config.masked_url} already holds HSI keys: the demo world was not loaded.")
            return False
        if settings.DEBUG or options["force"]:
            return True
        raise CommandError(
            f"{config.masked_url} already holds HSI keys and the demo world replaces some of them "
            "(detection_queue, dlq:detection_queue...). With DJANGO_DEBUG=false, pass --force to do it."
        )
