"""Every queue and DLQ of both layouts with depth, fill ratio and oldest-item age, in one round trip.

Streams add their consumer groups; a second round trip, only when there are groups, reads every
group's consumers (XINFO CONSUMERS) at once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from queues import keys
from queues.codec import decode
from queues.conf import conf
from queues.dlq import parse_time

QUEUE_FAMILIES = {
    "queues": "queue",
    "dlq": "dlq",
    "overflow_dlq": "dlq",
    "streams": "queue",
    "stream_dlq": "dlq",
}
LIST_DLQ_FAMILIES = frozenset({"dlq", "overflow_dlq"})
STREAM_FAMILIES = frozenset({"streams", "stream_dlq"})
TIME_FIELDS = ("pipeline_start_time", "timestamp", "queued_at", "last_failed_at", "first_failed_at")
WARN_RATIO = 0.8  # HSI's QUEUE_BACKPRESSURE_THRESHOLD
# Lists HSI writes only while they are shorter than QUEUE_MAX_SIZE: work queues, and retry DLQs
# (RetryHandler writes with the reject policy). HSI appends to an overflow DLQ with no limit.
BOUNDED_FAMILIES = frozenset({"queues", "dlq"})
BREAKER_FAILURES = 5  # DLQ_CIRCUIT_BREAKER_FAILURE_THRESHOLD: rejected DLQ writes before it opens


def limit_of(key: str) -> int | None:
    """QUEUE_MAX_SIZE for a work queue or retry DLQ (and a stream: HSI's MAXLEN), ``None`` for an
    overflow DLQ, which HSI appends to freely."""
    return _limit(keys.classify(key).name)


def _limit(family: str) -> int | None:
    return conf("QUEUE_MAX_SIZE") if family in BOUNDED_FAMILIES | STREAM_FAMILIES else None


@dataclass
class QueueInfo:
    key: str
    kind: str
    type: str
    length: int = 0
    source: str | None = None
    max_size: int | None = None  # None: no limit (an overflow DLQ); streams: HSI's MAXLEN
    oldest_age_seconds: float | None = None
    groups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fill_ratio(self) -> float | None:
        return self.length / self.max_size if self.max_size else None

    @property
    def room(self) -> int | None:
        """Entries the console may still push before the queue reaches its max size."""
        return max(self.max_size - self.length, 0) if self.max_size else None

    @property
    def level(self) -> str:
        """How near its max size a list HSI stops writing at is: "full", "filling" (from 80%) or "ok".

        Streams are trimmed by HSI's XADD MAXLEN rather than refused, so they are never flagged here.
        """
        if self.type != "list" or self.fill_ratio is None:
            return "ok"
        return "full" if self.fill_ratio >= 1 else "filling" if self.fill_ratio >= WARN_RATIO else "ok"

    @property
    def warning(self) -> bool:
        return self.level != "ok"

    @property
    def alert(self) -> str:
        """What the level means for HSI, and what to do, as a sentence ("" when all is well)."""
        if self.level == "ok":
            return ""
        size = f"{self.length:,} of {self.max_size:,}"
        if self.kind == "dlq":
            if self.level == "full":
                return (
                    f"Full ({size}): HSI rejects every new failure, and after {BREAKER_FAILURES} rejections "
                    "its DLQ circuit breaker opens and drops failed jobs (logged as CRITICAL DATA LOSS). "
                    "Retry or delete entries to make room."
                )
            return (
                f"Filling up ({size}): at QUEUE_MAX_SIZE HSI rejects new failures and then drops failed "
                "jobs. Retry or delete entries before it is full."
            )
        overflow = keys.overflow_dlq_key(self.key)
        if self.level == "full":
            return (
                f"Full ({size}): HSI's producers now reject new items or move the oldest to {overflow}, "
                "depending on QUEUE_OVERFLOW_POLICY. Its workers are not keeping up."
            )
        return (
            f"Filling up ({size}): HSI logs back-pressure warnings; at QUEUE_MAX_SIZE its producers "
            "reject or evict."
        )

    def as_dict(self) -> dict[str, Any]:
        ratio = self.fill_ratio
        return {
            **asdict(self),
            "fill_ratio": None if ratio is None else round(ratio, 4),
            "level": self.level,
            "alert": self.alert or None,
        }


def well_known() -> dict[str, str]:
    """HSI's own queues and retry DLQs (key -> family), listed even while they do not exist."""
    found = dict.fromkeys(keys.QUEUE_NAMES, "queues")
    return found | {keys.dlq_key(name): "dlq" for name in keys.QUEUE_NAMES}


def queue_keys(client: redis.Redis) -> dict[str, str]:
    """Queue and DLQ keys found by a bounded SCAN, plus the well-known names (even when empty)."""
    found = well_known()
    for examined, raw in enumerate(client.scan_iter(count=conf("SCAN_COUNT")), start=1):
        key = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)
        family = keys.classify(key).name
        if family in QUEUE_FAMILIES:
            found[key] = family
        if examined >= conf("SCAN_LIMIT"):
            break
    return found


def alerts(infos: list[QueueInfo]) -> list[QueueInfo]:
    """The flagged ones, full before filling."""
    return sorted((info for info in infos if info.warning), key=lambda info: info.level != "full")


def oldest_age(raw: bytes | None, now: float) -> float | None:
    decoded = decode(raw) if raw else None
    if decoded is not None and decoded.kind == "overflow" and decoded.inner is not None:
        decoded = decoded.inner
    value = decoded.value if decoded else None
    if isinstance(value, dict) and isinstance(value.get("original_job"), dict):
        value = {**value["original_job"], **value}
    if not isinstance(value, dict):
        return None
    for name in TIME_FIELDS:
        moment = parse_time(value.get(name))
        if moment is not None:
            return max(now - moment, 0.0)
    return None


def is_stream(family: str) -> bool:
    return family in STREAM_FAMILIES


def _info(key: str, family: str) -> QueueInfo:
    kind = QUEUE_FAMILIES[family]
    return QueueInfo(
        key,
        kind,
        "stream" if is_stream(family) else "list",
        source=keys.source_queue(key) if kind == "dlq" else None,
        max_size=_limit(family),
    )


def list_queues(client: redis.Redis) -> list[QueueInfo]:
    """Depth and head item of every list, length and groups of every stream, pipelined."""
    found = sorted(queue_keys(client).items(), key=lambda kv: (keys.display_rank(kv[1]), kv[0]))
    return _measure(client, [_info(key, family) for key, family in found])


def measure(client: redis.Redis, found: dict[str, str]) -> list[QueueInfo]:
    """``list_queues`` for keys already found (key -> family, see ``queue_keys``): no SCAN."""
    ordered = sorted(found.items(), key=lambda kv: (keys.display_rank(kv[1]), kv[0]))
    return _measure(client, [_info(key, family) for key, family in ordered])


def of_length(key: str, length: int) -> QueueInfo:
    """The facts of a queue or DLQ whose length is already known (a page read it): no round trip."""
    info = _info(key, keys.classify(key).name)
    info.length = length
    return info


def describe(client: redis.Redis, key: str) -> QueueInfo:
    """The same facts for one queue or DLQ key (no SCAN)."""
    return _measure(client, [_info(key, keys.classify(key).name)])[0]


def describe_source(client: redis.Redis, dlq: str) -> QueueInfo:
    """The facts of the queue a DLQ retries to: a work queue (or stream) whatever its name, since a
    retry stops at QUEUE_MAX_SIZE there (``dlq:X`` retries to ``X`` even when X is no HSI name)."""
    source = keys.source_queue(dlq) or dlq
    return _measure(
        client, [_info(source, "streams" if keys.classify(dlq).name == "stream_dlq" else "queues")]
    )[0]


def _measure(client: redis.Redis, infos: list[QueueInfo]) -> list[QueueInfo]:
    pipe = client.pipeline(transaction=False)
    for info in infos:
        if info.type == "list":
            pipe.llen(info.key)
            pipe.lindex(info.key, 0)
        else:
            pipe.xlen(info.key)
            pipe.xinfo_groups(info.key)
    replies = pipe.execute(raise_on_error=False)
    now = time.time()
    for index, info in enumerate(infos):
        length, extra = replies[2 * index], replies[2 * index + 1]
        info.length = length if isinstance(length, int) else 0
        if info.type == "list":
            info.oldest_age_seconds = oldest_age(extra if isinstance(extra, bytes) else None, now)
        elif isinstance(extra, list):
            info.groups = [_group(group) for group in extra]
    _add_consumers(client, infos)
    return infos


def _text(value: Any) -> Any:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _group(group: dict[Any, Any]) -> dict[str, Any]:
    return {_text(k): _text(v) for k, v in group.items()}


def _add_consumers(client: redis.Redis, infos: list[QueueInfo]) -> None:
    """Each group's consumers with pending count and idle times, for all groups in one pipeline.

    ``idle_consumers`` flags a group whose consumers have all been idle (no read or claim
    attempted) longer than ``CONSUMER_IDLE_SECONDS``; a group without consumers is not flagged.
    """
    groups = [(info.key, group) for info in infos for group in info.groups]
    if not groups:
        return
    pipe = client.pipeline(transaction=False)
    for key, group in groups:
        pipe.xinfo_consumers(key, str(group.get("name", "")))
    threshold = float(conf("CONSUMER_IDLE_SECONDS"))
    for (_, group), reply in zip(groups, pipe.execute(raise_on_error=False), strict=True):
        consumers = [_consumer(c) for c in reply] if isinstance(reply, list) else []
        group["consumer_details"] = consumers
        group["idle_consumers"] = bool(consumers) and all(c["idle_seconds"] > threshold for c in consumers)


def _consumer(reply: dict[Any, Any]) -> dict[str, Any]:
    """XINFO CONSUMERS' fields in seconds; ``inactive`` is reported by Redis 7.2 and later only."""
    fields = _group(reply)
    inactive = fields.get("inactive")
    return {
        "name": str(fields.get("name", "")),
        "pending": int(fields.get("pending") or 0),
        "idle_seconds": int(fields.get("idle") or 0) / 1000,
        "inactive_seconds": inactive / 1000 if isinstance(inactive, int) and inactive >= 0 else None,
    }
