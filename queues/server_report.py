"""Redis overview for people: INFO in words, eviction risk, memory by family, SLOWLOG, pub/sub.

Everything is read in a few round trips and cached for ``OVERVIEW_CACHE_SECONDS`` like the
dashboard. Memory by family comes from ``MEMORY USAGE`` on a bounded SCAN sample and is an estimate.
The last hour's charts come from the relay's samples in ``console:live:history`` (one XREVRANGE
with a COUNT cap), turned here into SVG polyline points so the page needs no JavaScript.

Sizing. Used memory is compared with the operator guide's sizing table (Small 1-4 cameras
50-100 MB, Medium 5-8 cameras 100-200 MB, Large 8+ cameras 200-512 MB) for the number of cameras,
estimated cheaply: ``batch:{camera_id}:current`` keys (refreshed while a camera sends, TTL 1 h;
one bounded SCAN) and the camera_ids of the first SIZING_QUEUE_SAMPLE entries of each work queue.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from django.core.cache import cache

from console.redis import get_redis
from queues import dlq, keys
from queues.conf import conf
from queues.keyspace.scan import pipelined, scan, text
from queues.overview import KeyCensus, ServerFacts, key_census
from realtime.events import HISTORY_KEY, HISTORY_SECONDS
from realtime.events import setting as realtime_setting

QUEUE_FAMILIES = ("queues", "dlq", "overflow_dlq", "streams", "stream_dlq")
EVICTS_WITHOUT_TTL = ("allkeys-lru", "allkeys-lfu", "allkeys-random")
HSI_CHANNELS = (keys.SECURITY_EVENTS, keys.SYSTEM_STATUS, keys.PERFORMANCE_UPDATE)
COMMAND_TEXT = 300
CACHE_KEY = "server_report"
HISTORY_COUNT = 2000  # stream entries read at most (an hour at one sample every 1.8 s)
CHANGE_SECONDS = 900  # the queue list's trend: change in length over the last 15 minutes
MIN_CHANGE_SECONDS = 60  # a sample younger than this says too little to show a trend
HISTORY_SERIES = 8  # queues and DLQs charted, the deepest now first
SPARK_WIDTH = 300
SPARK_HEIGHT = 48
MB = 1024 * 1024
SIZING_QUEUE_SAMPLE = 100  # entries of each work queue read for their camera_id
SIZING_CAMERA_ROWS = 1000  # batch:*:current keys one estimate collects at most


@dataclass(frozen=True)
class Tier:
    """One row of the operator guide's sizing table (docs: Redis setup, "Memory Usage Estimates")."""

    name: str
    cameras: str
    fewest: int
    most: int
    low_mb: int
    high_mb: int


TIERS = (
    Tier("Small", "1\u20134", 1, 4, 50, 100),
    Tier("Medium", "5\u20138", 5, 8, 100, 200),
    Tier("Large", "8+", 9, 10**9, 200, 512),  # the guide's "8+" overlaps Medium; 8 counts as Medium
)


@dataclass(frozen=True)
class Sizing:
    """Used memory against the sizing table's range for the estimated number of cameras."""

    cameras: int
    cameras_complete: bool  # False: the SCAN stopped early, so there may be more cameras
    tier: str
    tier_cameras: str
    expected_low_bytes: int
    expected_high_bytes: int
    used_bytes: int
    maxmemory_bytes: int
    position: str  # "below", "within", "above" the expected range; "unknown" without cameras
    maxmemory_note: str
    sentence: str
    estimated: bool = True


@dataclass(frozen=True)
class FamilyMemory:
    name: str
    label: str
    sampled_keys: int
    sampled_bytes: int
    estimated_bytes: int


@dataclass(frozen=True)
class BigKey:
    key: str
    family: str
    bytes: int


@dataclass(frozen=True)
class SlowEntry:
    id: int
    at: str
    duration_ms: float
    command: str
    client: str


@dataclass(frozen=True)
class Channel:
    name: str
    subscribers: int
    hsi: bool


@dataclass(frozen=True)
class Sparkline:
    """One chart: ``points`` for an SVG polyline in a SPARK_WIDTH x SPARK_HEIGHT box."""

    label: str
    points: str
    count: int
    minimum: int
    maximum: int
    latest: int
    limit: int = 0  # maxmemory, drawn as a line at ``limit_y`` when set
    limit_y: float = 0.0


@dataclass(frozen=True)
class History:
    """The relay's samples of the last hour (``samples`` 0: the relay has not sampled)."""

    samples: int = 0
    start: str = ""
    end: str = ""
    span_seconds: int = 0
    memory: Sparkline | None = None
    queues: list[Sparkline] = field(default_factory=list)
    width: int = SPARK_WIDTH
    height: int = SPARK_HEIGHT


@dataclass(frozen=True)
class Report:
    server: ServerFacts
    expired_keys: int
    fragmentation_ratio: float | None
    ops_per_second: int
    total_commands: int
    blocked_clients: int
    maxclients: int
    aof_rewrite_in_progress: bool
    aof_last_rewrite_seconds: int
    rdb_last_save_at: str
    eviction_warning: str
    queue_keys: int
    memory_sample: int
    memory_sample_complete: bool
    memory_by_family: list[FamilyMemory]
    largest: list[BigKey]
    slowlog: list[SlowEntry]
    slowlog_error: str
    channels: list[Channel]
    pattern_subscriptions: int
    census: KeyCensus
    generated_at: datetime
    history: History = field(default_factory=History)
    sizing: Sizing | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["generated_at"] = self.generated_at.isoformat()
        data["server"]["memory_ratio"] = self.server.memory_ratio
        data["memory_estimate"] = True
        return data


def eviction_warning(policy: str, queue_keys: int) -> str:
    """The loud sentence when ``policy`` can evict keys without a TTL while queues or DLQs exist."""
    if policy not in EVICTS_WITHOUT_TTL or not queue_keys:
        return ""
    return (
        f"maxmemory-policy is {policy}: under memory pressure Redis may evict keys that have no TTL, "
        f"including the {queue_keys:,} work queues and dead-letter queues found. Jobs and failures "
        "would vanish without a trace. Set maxmemory-policy to noeviction or volatile-lru, or give "
        "Redis more memory."
    )


def _int(info: dict[str, Any], name: str) -> int:
    try:
        return int(info.get(name, 0))
    except (TypeError, ValueError):
        return 0


def memory_sample(client: redis.Redis, total: int) -> tuple[list[FamilyMemory], list[BigKey], int, bool]:
    """MEMORY USAGE of up to MEMORY_SAMPLE keys from a SCAN, summed per family and scaled to DBSIZE."""
    limit, sampled = conf("MEMORY_SAMPLE"), []
    cursor = 0
    while True:
        cursor, batch = client.scan(cursor, count=min(limit, conf("SCAN_COUNT")))
        sampled += batch
        if cursor == 0 or len(sampled) >= limit:
            break
    sampled = sampled[:limit]
    sizes = pipelined(client, [("memory_usage", (k,)) for k in sampled])
    per_family: dict[str, list[int]] = {}
    big: list[BigKey] = []
    for raw, size in zip(sampled, sizes, strict=True):
        if not isinstance(size, int):
            continue
        name = text(raw)
        family = keys.classify(name)
        per_family.setdefault(family.name, [0, 0])
        per_family[family.name][0] += 1
        per_family[family.name][1] += size
        big.append(BigKey(name, family.label, size))
    scale = total / len(sampled) if sampled else 0
    labels = {f.name: f.label for f in (*keys.families(), keys.OTHER)}
    rows = [
        FamilyMemory(name, labels.get(name, name), count, size, round(size * scale))
        for name, (count, size) in per_family.items()
    ]
    rows.sort(key=lambda r: -r.estimated_bytes)
    big.sort(key=lambda b: -b.bytes)
    return rows, big[: conf("LARGEST_KEYS")], len(sampled), cursor == 0


def camera_estimate(client: redis.Redis) -> tuple[int, bool]:
    """Distinct cameras seen in ``batch:*:current`` keys and in the head of each work queue."""
    found = scan(client, [keys.BATCH_CURRENT_PATTERN], rows=SIZING_CAMERA_ROWS)
    cameras = {keys.wildcard_part(name, keys.BATCH_CURRENT_PATTERN) for name in found.names} - {""}
    heads = dlq.peek(client, keys.QUEUE_NAMES, 0, SIZING_QUEUE_SAMPLE - 1)
    for head in heads:
        for entry in [] if isinstance(head, Exception) else head.entries:
            value = entry.payload
            camera = value.get("camera_id") if isinstance(value, dict) else None
            if isinstance(camera, str) and camera:
                cameras.add(camera)
    return len(cameras), found.complete


def _mb(size: int) -> str:
    return f"{size / MB:,.0f} MB"


def sizing(used: int, maxmemory: int, cameras: int, complete: bool) -> Sizing:
    """Where ``used`` stands against the sizing table for ``cameras``, in one sentence."""
    tier = next((t for t in TIERS if t.fewest <= cameras <= t.most), None)
    some = "" if complete else "at least "
    limit_note = ""
    if maxmemory and tier and maxmemory < tier.high_mb * MB:
        limit_note = (
            f"maxmemory ({_mb(maxmemory)}) is below the {tier.high_mb} MB the sizing table allows for "
            f"{tier.name.lower()} deployments."
        )
    elif not maxmemory:
        limit_note = "No maxmemory limit is set."
    if tier is None:
        return Sizing(
            0,
            complete,
            "",
            "",
            0,
            0,
            used,
            maxmemory,
            "unknown",
            limit_note,
            f"No cameras were seen (no open batches, no queued detections), so the sizing table "
            f"cannot be applied; Redis uses {_mb(used)}.",
        )
    low, high = tier.low_mb * MB, tier.high_mb * MB
    position = "below" if used < low else "above" if used > high else "within"
    plural = "s" if cameras != 1 else ""
    expected = (
        f"the {tier.low_mb}\u2013{tier.high_mb} MB expected for {some}{cameras} camera{plural} ({tier.name})"
    )
    if position == "above":
        sentence = f"Redis uses {_mb(used)}, above {expected}; check the largest keys."
    elif position == "below":
        sentence = f"Redis uses {_mb(used)}, below {expected}: fine, the table gives typical sizes."
    else:
        sentence = f"Redis uses {_mb(used)}, within {expected}."
    return Sizing(
        cameras, complete, tier.name, tier.cameras, low, high, used, maxmemory, position, limit_note, sentence
    )


def slow_entries(client: redis.Redis) -> tuple[list[SlowEntry], str]:
    try:
        raw = client.slowlog_get(conf("SLOWLOG_ENTRIES"))
    except redis.ResponseError as exc:  # SLOWLOG can be renamed or denied by ACLs
        return [], f"SLOWLOG is not available: {exc}"
    entries = []
    for item in raw:
        command = item.get("command", b"")
        words = text(command) if isinstance(command, bytes | str) else " ".join(text(w) for w in command)
        if len(words) > COMMAND_TEXT:
            words = words[:COMMAND_TEXT] + "…"
        entries.append(
            SlowEntry(
                int(item.get("id", 0)),
                datetime.fromtimestamp(int(item.get("start_time", 0)), UTC).isoformat(),
                int(item.get("duration", 0)) / 1000,
                words,
                text(item.get("client_address", b"") or b""),
            )
        )
    return entries, ""


def channels(client: redis.Redis) -> tuple[list[Channel], int]:
    wanted = tuple(dict.fromkeys((*HSI_CHANNELS, *realtime_setting("EVENT_CHANNELS"))))
    pipe = client.pipeline(transaction=False)
    pipe.pubsub_numsub(*wanted)
    pipe.pubsub_numpat()
    numsub, numpat = pipe.execute()
    found = [Channel(text(name), int(count), text(name) in HSI_CHANNELS) for name, count in numsub]
    return found, int(numpat)


def _y(value: int, low: int, high: int) -> float:
    if high <= low:
        return SPARK_HEIGHT / 2
    return round(SPARK_HEIGHT - (value - low) / (high - low) * SPARK_HEIGHT, 1)


def sparkline(label: str, times: list[int], values: list[int], limit: int = 0) -> Sparkline:
    """Polyline points for ``values`` at ``times`` (ms); with ``limit``, scaled from 0 to it."""
    first, last = times[0], times[-1]
    low, high = (0, max(limit, *values)) if limit else (min(values), max(values))
    span = last - first
    points = " ".join(
        f"{round((t - first) / span * SPARK_WIDTH, 1) if span else 0:g},{_y(v, low, high):g}"
        for t, v in zip(times, values, strict=True)
    )
    return Sparkline(
        label,
        points,
        len(values),
        min(values),
        max(values),
        values[-1],
        limit,
        _y(limit, low, high) if limit else 0.0,
    )


@dataclass(frozen=True)
class Sample:
    """One of the relay's samples in ``console:live:history``: when, used memory, every queue's length."""

    ms: int
    used_memory: int
    depths: dict[str, int]

    @classmethod
    def of(cls, entry_id: Any, fields: Any) -> Sample | None:
        """The sample, or None when the entry is not one (the stream is Redis data: anything goes)."""
        if entry_id is None or not fields:
            return None
        values = {text(k): text(v) for k, v in fields.items()}
        try:
            depths = json.loads(values.get("depths", "{}"))
            used = int(values.get("used_memory", "0"))
            ms = int(text(entry_id).split("-", 1)[0])
        except ValueError:
            return None
        if not isinstance(depths, dict):
            return None
        lengths = {str(k): v for k, v in depths.items() if isinstance(v, int) and not isinstance(v, bool)}
        return cls(ms, used, lengths)


def sample_since(client: redis.Redis, seconds: int, now_ms: int | None = None) -> Sample | None:
    """The relay's first sample of the last ``seconds`` (one XRANGE), or None if it took none."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    for entry_id, fields in client.xrange(HISTORY_KEY, f"{now_ms - seconds * 1000}", "+", count=10) or []:
        if (sample := Sample.of(entry_id, fields)) is not None:
            return sample
    return None


@dataclass(frozen=True)
class Change:
    """How much a queue's length changed over the last ``seconds`` (the queue list's trend)."""

    entries: int
    seconds: int

    def as_dict(self) -> dict[str, int]:
        return {"entries": self.entries, "seconds": self.seconds}


def changes(client: redis.Redis, lengths: dict[str, int], now_ms: int | None = None) -> dict[str, Change]:
    """Each queue's change since the relay's first sample of the last ``CHANGE_SECONDS``. A queue
    that sample does not hold, or a sample under ``MIN_CHANGE_SECONDS`` old, says nothing: no
    relay, no trend (the relay samples every few seconds while it runs)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    sample = sample_since(client, CHANGE_SECONDS, now_ms)
    if sample is None or now_ms - sample.ms < MIN_CHANGE_SECONDS * 1000:
        return {}
    seconds = round((now_ms - sample.ms) / 1000)
    past = sample.depths
    return {key: Change(length - past[key], seconds) for key, length in lengths.items() if key in past}


def read_history(client: redis.Redis, maxmemory: int, now_ms: int | None = None) -> History:
    """The last hour of ``console:live:history``: used memory and the deepest queues and DLQs."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    raw = client.xrevrange(HISTORY_KEY, "+", f"{now_ms - HISTORY_SECONDS * 1000}", count=HISTORY_COUNT)
    samples = [s for s in (Sample.of(entry_id, fields) for entry_id, fields in reversed(raw or [])) if s]
    times = [sample.ms for sample in samples]
    memory = [sample.used_memory for sample in samples]
    depths = [sample.depths for sample in samples]
    if not times:
        return History()
    latest = depths[-1]
    names = sorted({k for d in depths for k in d}, key=lambda k: (-latest.get(k, 0), k))[:HISTORY_SERIES]
    return History(
        samples=len(times),
        start=datetime.fromtimestamp(times[0] / 1000, UTC).strftime("%H:%M:%S"),
        end=datetime.fromtimestamp(times[-1] / 1000, UTC).strftime("%H:%M:%S"),
        span_seconds=round((times[-1] - times[0]) / 1000),
        memory=sparkline("Used memory", times, memory, maxmemory),
        queues=[sparkline(name, times, [d.get(name, 0) for d in depths]) for name in names],
    )


def build_report(client: redis.Redis) -> Report:
    pipe = client.pipeline(transaction=False)
    pipe.info("all")
    pipe.dbsize()
    info, total = pipe.execute()
    server = ServerFacts.from_info(info, int(total))
    census = key_census(client)
    queue_keys = sum(f.count for f in census.families if f.name in QUEUE_FAMILIES)
    families, largest, sampled, sample_complete = memory_sample(client, int(total))
    slowlog, slowlog_error = slow_entries(client)
    subscribed, patterns = channels(client)
    cameras, cameras_complete = camera_estimate(client)
    last_save = _int(info, "rdb_last_save_time")
    fragmentation = info.get("mem_fragmentation_ratio")
    return Report(
        server=server,
        expired_keys=_int(info, "expired_keys"),
        fragmentation_ratio=float(fragmentation) if isinstance(fragmentation, int | float) else None,
        ops_per_second=_int(info, "instantaneous_ops_per_sec"),
        total_commands=_int(info, "total_commands_processed"),
        blocked_clients=_int(info, "blocked_clients"),
        maxclients=_int(info, "maxclients"),
        aof_rewrite_in_progress=bool(_int(info, "aof_rewrite_in_progress")),
        aof_last_rewrite_seconds=_int(info, "aof_last_rewrite_time_sec"),
        rdb_last_save_at=datetime.fromtimestamp(last_save, UTC).isoformat() if last_save else "",
        eviction_warning=eviction_warning(server.maxmemory_policy, queue_keys),
        queue_keys=queue_keys,
        memory_sample=sampled,
        memory_sample_complete=sample_complete,
        memory_by_family=families,
        largest=largest,
        slowlog=slowlog,
        slowlog_error=slowlog_error,
        channels=subscribed,
        pattern_subscriptions=patterns,
        census=census,
        generated_at=datetime.now(UTC),
        history=read_history(client, server.maxmemory),
        sizing=sizing(server.used_memory, server.maxmemory, cameras, cameras_complete),
    )


def server_report(*, use_cache: bool = True) -> Report:
    """The report, cached for ``OVERVIEW_CACHE_SECONDS`` in the console's cache."""
    if use_cache:
        cached = cache.get(CACHE_KEY)
        if isinstance(cached, Report):
            return cached
    started = time.monotonic()
    report = build_report(get_redis())
    report.notes.append(f"Built in {1000 * (time.monotonic() - started):.0f} ms.")
    cache.set(CACHE_KEY, report, conf("OVERVIEW_CACHE_SECONDS"))
    return report
