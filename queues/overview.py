"""Redis overview: server facts and the HSI key families found, at bounded cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
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
    """Keys per family. A keyspace larger than HSI_SCAN_LIMIT is counted over several loads, each
    resuming the SCAN where the last one stopped: ``complete`` with ``steps`` > 1 is such a count,
    finished at ``finished_at``, while ``counting`` says how far the next one has got."""

    families: list[FamilyCount]
    examined: int
    complete: bool
    steps: int = 1
    finished_at: str = ""  # ISO time a count over several loads finished
    counting: int = 0  # keys the count in progress has examined (shown with an earlier complete one)
    total: int = 0  # DBSIZE when a partial count was taken

    @property
    def found(self) -> list[FamilyCount]:
        return sorted((f for f in self.families if f.count), key=lambda f: keys.display_rank(f.name))

    @property
    def summary(self) -> str:
        """How complete these counts are, as a sentence without its full stop."""
        if self.complete and self.steps == 1:
            return f"Full SCAN of {self.examined:,} keys"
        if self.complete:
            at = datetime.fromisoformat(self.finished_at).strftime("%H:%M:%S UTC")
            text = f"Counted all {self.examined:,} keys over {self.steps} loads, finished at {at}"
            return text + (f"; the next count has examined {self.counting:,} so far" if self.counting else "")
        loads = f"{self.steps} load{'s' if self.steps > 1 else ''}"
        of = f" of {self.total:,}" if self.total >= self.examined else ""
        return (
            f"Counting: {self.examined:,}{of} keys examined over {loads} so far (each load goes on "
            "with the SCAN where the last one stopped); counts are partial"
        )


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


CENSUS_RUN = "overview:census:run"  # the count in progress: SCAN cursor and counts so far
CENSUS_DONE = "overview:census:done"  # the last count that reached the end of the keyspace
CENSUS_SECONDS = 3600


@dataclass
class CensusRun:
    """A count of the keyspace in progress, kept in the cache between calls."""

    cursor: int = 0
    examined: int = 0
    steps: int = 0
    tallies: dict[str, tuple[int, list[str]]] = field(default_factory=dict)  # family: count, samples


def key_census(
    client: redis.Redis, *, limit: int | None = None, queues: dict[str, str] | None = None
) -> KeyCensus:
    """Count keys per family with a bounded SCAN, examining at most ``limit`` keys; the queue and
    DLQ keys it meets are added to ``queues`` (key -> family), as ``inventory.queue_keys`` finds them.

    A keyspace larger than ``limit`` is counted over several calls: each resumes the SCAN where the
    last one stopped (cursor and counts in the console's cache) and, once a count has reached the
    end, the calls show it, with how far the next count has got, until that one is done too.
    """
    limit = limit or conf("SCAN_LIMIT")
    run = cache.get(CENSUS_RUN)
    run = run if isinstance(run, CensusRun) else CensusRun()
    counts = {f.name: FamilyCount(f.name, f.label, f.patterns) for f in (*keys.families(), keys.OTHER)}
    for name, (count, samples) in run.tallies.items():
        if name in counts:
            counts[name].count, counts[name].samples = count, list(samples)
    seen = 0
    while True:
        run.cursor, batch = client.scan(run.cursor, count=conf("SCAN_COUNT"))
        for raw in batch:
            key = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)
            entry = counts[keys.classify(key).name]
            entry.count += 1
            if queues is not None and entry.name in inventory.QUEUE_FAMILIES:
                queues[key] = entry.name
            if len(entry.samples) < SAMPLES_PER_FAMILY:
                entry.samples.append(key)
        seen += len(batch)
        if run.cursor == 0 or seen >= limit:
            break
    run.examined, run.steps = run.examined + seen, run.steps + 1
    families = list(counts.values())
    if run.cursor == 0:  # the count reached the end of the keyspace
        cache.delete(CENSUS_RUN)
        if run.steps == 1:
            return KeyCensus(families, run.examined, complete=True)
        finished = datetime.now(UTC).isoformat()
        census = KeyCensus(families, run.examined, complete=True, steps=run.steps, finished_at=finished)
        cache.set(CENSUS_DONE, census, CENSUS_SECONDS)
        return census
    run.tallies = {f.name: (f.count, f.samples) for f in families if f.count}
    cache.set(CENSUS_RUN, run, CENSUS_SECONDS)
    done = cache.get(CENSUS_DONE)
    if isinstance(done, KeyCensus):
        return replace(done, counting=run.examined)
    return KeyCensus(families, run.examined, complete=False, steps=run.steps, total=int(client.dbsize()))


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
