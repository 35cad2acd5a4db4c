"""HSI's persisted orchestrator state (``orchestrator:service:{name}:state``), read defensively.

The keys are what ``ServiceRegistry.persist_state`` last wrote; the running backend keeps its own
registry in memory and only reads them at boot. Editing them changes nothing: actions go through
HSI's API (``orchestrator.hsi_api``).

All known services (the contract's names) plus any others a bounded SCAN finds are read with one
pipelined round trip of GETs. Every value is decoded with ``queues.codec.decode``; a field that is
missing or of the wrong type is shown as unknown with the reason, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.core.cache import cache

from queues import keys
from queues.codec import decode
from queues.conf import conf

CATEGORIES = ("infrastructure", "ai", "monitoring")
SERVICES: dict[str, str] = {
    "postgres": "infrastructure",
    "redis": "infrastructure",
    "frontend": "infrastructure",
    "ai-detector": "ai",
    "ai-yolo26": "ai",  # the schema examples' name for the detector [drift]
    "ai-llm": "ai",
    "ai-florence": "ai",
    "ai-clip": "ai",
    "ai-enrichment": "ai",
    "prometheus": "monitoring",
    "grafana": "monitoring",
    "alertmanager": "monitoring",
    "redis-exporter": "monitoring",
    "json-exporter": "monitoring",
    "blackbox-exporter": "monitoring",
    "jaeger": "monitoring",
}
UNKNOWN_CATEGORY = "other"
STATUSES = ("running", "starting", "unhealthy", "stopped", "disabled", "not_found")
# Failures after which HSI disables a service, per category (contract §6).
MAX_FAILURES = {"infrastructure": 10, "ai": 5, "monitoring": 5}

# "Flapping": restarted at least FLAP_RESTARTS times with the last restart within FLAP_WINDOW, or
# failure_count at or above FLAP_FAILURES. HSI persists only counts and the last times, so this is
# the closest the keys allow to "3 restarts in 10 minutes".
FLAP_RESTARTS = 3
FLAP_WINDOW = timedelta(minutes=10)
FLAP_FAILURES = 3

SCAN_PATTERN = keys.orchestrator_state_key("*")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEY = re.compile(r"orchestrator:service:(.+):state", re.DOTALL)
DISCOVERED_CACHE = "orchestrator:discovered"


@dataclass
class Service:
    """One service's persisted state as read; ``problems`` say why a value is shown as unknown."""

    name: str
    category: str
    exists: bool = False
    status: str | None = None
    enabled: bool | None = None
    failure_count: int | None = None
    restart_count: int | None = None
    last_failure_at: datetime | None = None
    last_restart_at: datetime | None = None
    problems: list[str] = field(default_factory=list)
    encoding: str = ""

    @property
    def key(self) -> str:
        return keys.orchestrator_state_key(self.name)

    @property
    def disabled(self) -> bool:
        return self.status == "disabled" or self.enabled is False

    @property
    def max_failures(self) -> int | None:
        return MAX_FAILURES.get(self.category)

    def flapping(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        if self.failure_count is not None and self.failure_count >= FLAP_FAILURES:
            return True
        recent = self.last_restart_at is not None and now - self.last_restart_at <= FLAP_WINDOW
        return recent and self.restart_count is not None and self.restart_count >= FLAP_RESTARTS

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "status": self.status,
            "enabled": self.enabled,
            "failure_count": self.failure_count,
            "restart_count": self.restart_count,
            "last_restart_at": self.last_restart_at.isoformat() if self.last_restart_at else None,
            "last_failure_at": self.last_failure_at.isoformat() if self.last_failure_at else None,
            "exists": self.exists,
            "disabled": self.disabled,
            "flapping": self.flapping(),
            "problems": list(self.problems),
        }


@dataclass
class Inventory:
    services: list[Service]
    complete: bool  # False when the SCAN for unknown services hit the limit

    def by_category(self) -> list[tuple[str, list[Service]]]:
        order = (*CATEGORIES, UNKNOWN_CATEGORY)
        groups = [(c, [s for s in self.services if s.category == c]) for c in order]
        return [(c, members) for c, members in groups if members]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def discover(client: redis.Redis) -> tuple[list[str], bool]:
    """Service names found under ``orchestrator:service:*:state`` (bounded SCAN, cached briefly)."""
    cached = cache.get(DISCOVERED_CACHE)
    if isinstance(cached, tuple) and len(cached) == 2:
        return list(cached[0]), bool(cached[1])
    names: set[str] = set()
    cursor, examined, limit = 0, 0, conf("SCAN_LIMIT")
    while True:
        cursor, batch = client.scan(cursor, match=SCAN_PATTERN, count=conf("SCAN_COUNT"))
        for raw in batch:
            match = _KEY.fullmatch(_text(raw) if isinstance(raw, bytes) else str(raw))
            if match:
                names.add(match.group(1))
        examined += conf("SCAN_COUNT")  # with MATCH, each call examines about COUNT keys
        if cursor == 0 or examined >= limit:
            break
    result = (sorted(names), cursor == 0)
    cache.set(DISCOVERED_CACHE, result, conf("OVERVIEW_CACHE_SECONDS"))
    return result


def read_services(client: redis.Redis) -> Inventory:
    """Every known and discovered service; the GETs go in one pipelined round trip."""
    found, complete = discover(client)
    names = list(SERVICES) + [name for name in found if name not in SERVICES]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(keys.orchestrator_state_key(name))
    values = pipe.execute()
    services = [parse(name, raw) for name, raw in zip(names, values, strict=True)]
    # Contract names that have no key and are not the detector's alias stay listed as "no state".
    services = [s for s in services if s.exists or s.name != "ai-yolo26"]
    return Inventory(services, complete)


def read_service(client: redis.Redis, name: str) -> Service:
    return parse(name, client.get(keys.orchestrator_state_key(name)))


def _timestamp(value: Any, name: str, problems: list[str]) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{name} is {type(value).__name__}, not an ISO time")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{name} {value[:40]!r} is not an ISO time")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _count(value: Any, name: str, problems: list[str]) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
        problems.append(f"{name} is negative ({value})")
        return None
    if isinstance(value, str) and value.isdigit():
        problems.append(f"{name} is the string {value!r}, read as a number")
        return int(value)
    kind = type(value).__name__
    problems.append(f"{name} is missing" if value is None else f"{name} is {kind}, not an int")
    return None


def parse(name: str, raw: bytes | str | None) -> Service:
    """A service from its stored bytes; never raises."""
    service = Service(name, SERVICES.get(name, UNKNOWN_CATEGORY))
    if raw is None:
        service.problems.append("no state key: HSI has not persisted this service (not discovered yet)")
        return service
    service.exists = True
    decoded = decode(raw)
    service.encoding = "/".join(decoded.encodings)
    state = decoded.value
    if not isinstance(state, dict):
        what = decoded.note or f"{decoded.kind} value"
        service.problems.append(f"not a JSON object ({what}); nothing can be read from it")
        return service
    problems = service.problems
    status = state.get("status")
    if isinstance(status, str) and status in STATUSES:
        service.status = status
    elif status is None:
        problems.append("status is missing")
    else:
        problems.append(f"status {str(status)[:40]!r} is not one HSI writes")
    enabled = state.get("enabled")
    if isinstance(enabled, bool):
        service.enabled = enabled
    else:
        shown = repr(enabled)[:40]
        problems.append("enabled is missing" if enabled is None else f"enabled {shown} is not true/false")
    service.failure_count = _count(state.get("failure_count"), "failure_count", problems)
    service.restart_count = _count(state.get("restart_count"), "restart_count", problems)
    service.last_failure_at = _timestamp(state.get("last_failure_at"), "last_failure_at", problems)
    service.last_restart_at = _timestamp(state.get("last_restart_at"), "last_restart_at", problems)
    return service
