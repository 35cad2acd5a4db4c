"""Rate-limit windows (contract §12): a sorted set per tier and client, sliding 60 s."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from django.http import HttpRequest

from console import audit
from queues import keys
from queues.keyspace.scan import Found, ok, pipelined, scan, ttl_text

RATE_WINDOW_SECONDS = 60
# Requests per minute + burst per tier.
RATE_TIERS: dict[str, tuple[int, int]] = {
    "default": (60, 10),
    "media": (120, 10),
    "websocket": (100, 2),
    "search": (30, 10),
    "export": (10, 0),
    "ai_inference": (10, 3),
    "bulk": (10, 2),
}


@dataclass
class RateWindow:
    key: str
    tier: str
    client: str
    requests: int | None
    limit: int | None
    ttl: str
    problem: str = ""

    @property
    def blocked(self) -> bool:
        return self.requests is not None and self.limit is not None and self.requests >= self.limit


def is_rate_limit_key(name: str) -> bool:
    return name.startswith(keys.RATE_LIMIT_PREFIX) and name.count(":") >= 2


def rate_windows(client: redis.Redis, start: str = "") -> tuple[list[RateWindow], Found]:
    found = scan(client, [keys.RATE_LIMIT_PREFIX + "*"], start=start)
    since = time.time() - RATE_WINDOW_SECONDS
    answers = pipelined(
        client, [c for k in found.keys for c in (("zcount", (k, since, "+inf")), ("ttl", (k,)))]
    )
    rows = []
    for index, name in enumerate(found.names):
        count, ttl = answers[2 * index], answers[2 * index + 1]
        _, tier, who = [*name.split(":", 2), "", ""][:3]
        rpm = RATE_TIERS.get(tier)
        row = RateWindow(
            name, tier, who, count if ok(count) else None, sum(rpm) if rpm else None, ttl_text(ttl)
        )
        problems = []
        if not ok(count):
            problems.append("not a sorted set")
        if rpm is None:
            problems.append(f"unknown tier {tier!r}")
        row.problem = "; ".join(problems)
        rows.append(row)
    rows.sort(key=lambda r: -(r.requests or 0))
    return rows, found


def reset_rate_limit(client: redis.Redis, request: HttpRequest, key: str) -> int:
    removed = int(client.delete(key))
    audit.record(request.user, "reset_rate_limit", key=key, count=removed, request=request)
    return removed
