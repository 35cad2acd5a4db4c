"""Redis overview: server facts and the HSI key families found, at bounded cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from django.core.cache import cache

from console.redis import get_redis
from queues import inventory, keys
from queues.conf import conf

SAMPLES_PER_FAMILY = 3
INFO_SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "keyspace")


@dataclass(frozen=True)
class ServerFacts:
    version: str
    mode: str
    role: str
    uptime_seconds: int
    connected_clients: int
    used_memory: int
    used_memory_human: str
    maxmemory: int
    maxmemory_human: str
    maxmemory_policy: str
    evicted_keys: int
    aof_enabled: bool
    aof_last_rewrite_status: str
    aof_last_write_status: str
    total_keys: int
    keyspace: dict[str, int]

    @property
    def memory_ratio(self) -> float | None:
        return self.used_memory / self.maxmemory if self.maxmemory else None

    @classmethod
    def from_info(cls, info: dict[str, Any], total_keys: int) -> ServerFacts:
        keyspace = {
            name: int(value.get("keys", 0))
            for name, value in info.items()
            if name.startswith("db") and isinstance(value, dict)
        }
        return cls(
            version=str(info.get("redis_version", "unknown")),
            mode=str(info.get("redis_mode", "standalone")),
            role=str(info.get("role", "master")),
            uptime_seconds=int(info.get("uptime_in_seconds", 0)),
            connected_clients=int(info.get("connected_clients", 0)),
            used_memory=int(info.get("used_memory", 0)),
            used_memory_human=str(info.get("used_memory_human", "")),
            maxmemory=int(info.get("maxmemory", 0)),
            maxmemory_human=str(info.get("maxmemory_human", "")),
            maxmemory_policy=str(info.get("maxmemory_policy", "")),
            evicted_keys=int(info.get("evicted_keys", 0)),
            aof_enabled=bool(int(info.get("aof_enabled", 0))),
            aof_last_rewrite_status=str(info.get("aof_last_bgrewrite_status", "")),
            aof_last_write_status=str(info.get("aof_last_write_status", "")),
            total_keys=total_keys,
            keyspace=keyspace,
        )


@dataclass
class FamilyCount:
    name: str
    label: str
    patterns: tuple[str, ...]
    count: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KeyCensus:
    families: list[FamilyCount]
    examined: int
    complete: bool

    @property
    def found(self) -> list[FamilyCount]:
        return sorted((f for f in self.families if f.count), key=lambda f: keys.display_rank(f.name))


@dataclass(frozen=True)
class Overview:
    server: ServerFacts
    census: KeyCensus
    generated_at: datetime
    queue_alerts: list[dict[str, Any]] = field(default_factory=list)  # inventory.QueueInfo.as_dict()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["generated_at"] = self.generated_at.isoformat()
        data["server"]["memory_ratio"] = self.server.memory_ratio
        return data


def server_facts(client: redis.Redis) -> ServerFacts:
    """INFO and DBSIZE in one round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.info(*INFO_SECTIONS)
    pipe.dbsize()
    info, total_keys = pipe.execute()
    return ServerFacts.from_info(info, int(total_keys))


def key_census(
    client: redis.Redis, *, limit: int | None = None, queues: dict[str, str] | None = None
) -> KeyCensus:
    """Count keys per family with a bounded SCAN, examining at most ``limit`` keys; the queue and
    DLQ keys it meets are added to ``queues`` (key -> family), as ``inventory.queue_keys`` finds them."""
    limit = limit or conf("SCAN_LIMIT")
    counts = {f.name: FamilyCount(f.name, f.label, f.patterns) for f in (*keys.families(), keys.OTHER)}
    cursor, examined = 0, 0
    while True:
        cursor, batch = client.scan(cursor, count=conf("SCAN_COUNT"))
        for raw in batch:
            key = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)
            entry = counts[keys.classify(key).name]
            entry.count += 1
            if queues is not None and entry.name in inventory.QUEUE_FAMILIES:
                queues[key] = entry.name
            if len(entry.samples) < SAMPLES_PER_FAMILY:
                entry.samples.append(key)
        examined += len(batch)
        if cursor == 0 or examined >= limit:
            break
    return KeyCensus(list(counts.values()), examined, complete=cursor == 0)


def redis_overview(client: redis.Redis | None = None, *, use_cache: bool = True) -> Overview:
    """Server facts plus key census, cached for a few seconds in the console's cache."""

    def build() -> Overview:
        connection = client or get_redis()
        queues = inventory.known(connection)
        census = key_census(connection, queues=queues)
        flagged = [info.as_dict() for info in inventory.alerts(inventory.measure(connection, queues))]
        return Overview(server_facts(connection), census, datetime.now(UTC), flagged)

    if not use_cache or client is not None:
        return build()
    cached = cache.get("overview")
    if isinstance(cached, Overview):
        return cached
    overview = build()
    cache.set("overview", overview, conf("OVERVIEW_CACHE_SECONDS"))
    return overview
