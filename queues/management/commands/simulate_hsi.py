"""``manage.py simulate_hsi``: a live HSI pipeline in miniature, for development and demos."""

from __future__ import annotations

import random
import time
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis.exceptions import AuthenticationWrongNumberOfArgsError, NoPermissionError

from console.redis import RedisConfig, explain, get_redis
from queues.simulator import Simulator

RETRY_SECONDS = 1.0
REFUSALS = (redis.AuthenticationError, NoPermissionError, AuthenticationWrongNumberOfArgsError)


class Command(BaseCommand):
    help = (
        "Publish HSI-shaped messages on security_events, system_status and performance_update, and move "
        "items through detection_queue/analysis_queue like the pipeline would. Ctrl-C stops it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rate", type=float, default=2.0, help="Security events per second (default 2).")
        stop = parser.add_mutually_exclusive_group()
        stop.add_argument("--duration", type=float, help="Stop after this many seconds.")
        stop.add_argument("--count", type=int, help="Stop after this many events.")
        parser.add_argument("--seed", type=int, help="Random seed (default: different every run).")
        parser.add_argument("--force", action="store_true", help="Run even with DJANGO_DEBUG=false.")

    def handle(self, *args: Any, **options: Any) -> None:
        rate: float = options["rate"]
        if rate <= 0:
            raise CommandError("--rate must be a number of events per second above 0.")
        if not (settings.DEBUG or options["force"]):
            raise CommandError(
                "simulate_hsi pushes fake detections into HSI's queues and pops real ones: it runs only "
                "with DJANGO_DEBUG=true, or with --force (never against a production HSI)."
            )
        config = settings.HSI_REDIS
        simulator = Simulator(get_redis(config), random.Random(options["seed"]))  # noqa: S311 - fake data
        self.steps, self.down = 0, False
        self.stdout.write(f"Simulating HSI on {config.masked_url} at {rate:g} events/s (Ctrl-C stops it).")
        try:
            self._run(simulator, config, rate, options["duration"], options["count"])
        except KeyboardInterrupt:
            self.stdout.write("")
        self.stdout.write(f"Simulator stopped after {self.steps} events.")

    def _run(
        self,
        simulator: Simulator,
        config: RedisConfig,
        rate: float,
        duration: float | None,
        count: int | None,
    ) -> None:
        deadline = time.monotonic() + duration if duration is not None else None
        next_at = time.monotonic()
        while (count is None or self.steps < count) and (deadline is None or time.monotonic() < deadline):
            wait = next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait if deadline is None else max(0.0, min(wait, deadline - time.monotonic())))
                continue
            if self._step(simulator, config):
                next_at = max(next_at + 1 / rate, time.monotonic() - 1 / rate)
            else:
                next_at = time.monotonic() + RETRY_SECONDS

    def _step(self, simulator: Simulator, config: RedisConfig) -> bool:
        """One step; any Redis error is reported once and retried, except a refusal (auth, ACL)."""
        try:
            simulator.step()
        except REFUSALS as exc:
            raise CommandError(explain(exc, config)) from exc
        except redis.RedisError as exc:
            if not self.down:
                self.stderr.write(f"{explain(exc, config)} Retrying every {RETRY_SECONDS:g} s.")
            self.down = True
            return False
        if self.down:
            self.stdout.write("Redis is reachable again: simulation resumed.")
            self.down = False
        self.steps += 1
        return True
