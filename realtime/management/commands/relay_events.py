"""``manage.py relay_events``: HSI's pub/sub channels → the console's stream → every open live page."""

from __future__ import annotations

import asyncio
import faulthandler
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from realtime.relay import Relay, run_forever


class Command(BaseCommand):
    help = (
        "Relay HSI's pub/sub messages (HSI_EVENT_CHANNELS, HSI_EVENT_PATTERNS) into the console's event "
        "stream and to every open live page, and sample queue depths. Run one or more (one leads, the "
        "others stand by); SIGTERM or Ctrl-C stops it cleanly, SIGUSR1 prints every thread's stack to "
        "stderr (for a relay that does not stop)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--relay-id", help="Name in logs and in the lock (default: host:pid:random).")

    def handle(self, *args: Any, **options: Any) -> None:
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        relay = Relay(relay_id=options["relay_id"])

        def install(stop: asyncio.Event) -> None:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)

        run_forever(relay, install)
