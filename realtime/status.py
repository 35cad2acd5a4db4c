"""The relay's health as the diagnostics card shows it, read from ``console:relay:status``.

The leading relay keeps the hash current: ``heartbeat`` (Redis time, written with every lock
renewal), ``state``, ``leader``, ``forwarded`` (incremented by the append script itself),
``malformed`` and ``malformed:<reason>``, ``last_malformed``; any relay writes ``last_error`` when
it gets Redis back after losing it. Times are Redis's own clock, so hosts' clocks do not matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from django.conf import settings

from console.redis import get_redis
from realtime.events import LEADER_KEY, MALFORMED_REASONS, STATUS_KEY, setting

STALE_AFTER_LOCKS = 3  # a heartbeat older than this many lock TTLs means no relay is forwarding


@dataclass(frozen=True)
class RelayStatus:
    """``state`` is "forwarding", "stopped" (clean exit, nobody took over), "stale" (the last
    leader stopped renewing: no relay is forwarding) or "not running" (no relay ever reported)."""

    leader: str | None
    state: str
    heartbeat_age_seconds: float | None
    forwarded: int = 0
    malformed: int = 0
    malformed_reasons: dict[str, int] = field(default_factory=dict)
    last_malformed: str = ""
    last_error: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == "forwarding"


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _int(value: bytes | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def relay_status(client: redis.Redis | None = None) -> RelayStatus:
    """One round trip (HGETALL, GET of the lock, TIME). ``client`` defaults to HSI's Redis, where
    the relay keeps its status (next to its stream and lock)."""
    client = client or get_redis(settings.HSI_REDIS)
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(STATUS_KEY)
        pipe.get(LEADER_KEY)
        pipe.time()
        raw, leader, (seconds, micros) = pipe.execute()
    fields: dict[bytes, bytes] = raw or {}
    age: float | None = None
    if fields.get(b"heartbeat"):
        try:
            age = max(0.0, seconds + micros / 1e6 - float(fields[b"heartbeat"]))
        except ValueError:
            age = None
    stored = _text(fields.get(b"state"))
    if age is None:
        state = "not running"
    elif stored == "stopped" and not leader:
        state = "stopped"
    elif age > STALE_AFTER_LOCKS * float(setting("RELAY_LOCK_SECONDS")):
        state = "stale"
    else:
        state = stored or "forwarding"
    reasons = {reason: _int(fields.get(f"malformed:{reason}".encode())) for reason in MALFORMED_REASONS}
    return RelayStatus(
        leader=_text(leader) or None,
        state=state,
        heartbeat_age_seconds=None if age is None else round(age, 3),
        forwarded=_int(fields.get(b"forwarded")),
        malformed=_int(fields.get(b"malformed")),
        malformed_reasons={reason: count for reason, count in reasons.items() if count},
        last_malformed=_text(fields.get(b"last_malformed")),
        last_error=_text(fields.get(b"last_error")),
    )
