"""Every queue and DLQ of both layouts with depth, fill ratio and oldest-item age, in one round trip.

Streams add their consumer groups; a second round trip, only when there are groups, reads every
group's consumers (XINFO CONSUMERS) and pending summary (XPENDING) at once.

HSI stops writing a list at QUEUE_MAX_SIZE, but it trims a stream: ``XADD MAXLEN ~ QUEUE_MAX_SIZE``
deletes the oldest entries whether or not a consumer group has processed them. So a list is flagged
by its length, a stream by how far behind its groups are (and a stream DLQ by its length too, since
every new failure trims its oldest failed job once it is at MAXLEN).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from django.core.cache import cache

from queues import keys
from queues.conf import conf
from queues.dlq import Entry, parse_time, peek
from queues.scripts import script
from queues.streams import ends as stream_ends

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
LEVELS = ("ok", "filling", "full")  # in order of urgency


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
    first_id: str | None = None  # a stream's oldest entry, the next one XADD MAXLEN trims
    stream_room: int | None = None  # see ``stream_room``: what a stream can take, when measured
    stored_type: str | None = None  # what the key holds when it is not a list or stream as named

    @property
    def fill_ratio(self) -> float | None:
        return self.length / self.max_size if self.max_size else None

    @property
    def room(self) -> int | None:
        """Entries the console may still push before the queue reaches its max size (a stream: before
        HSI's trimming would reach an entry a group has not processed, when measured)."""
        if self.stream_room is not None:
            return self.stream_room
        return max(self.max_size - self.length, 0) if self.max_size else None

    @property
    def level(self) -> str:
        """How near HSI is to refusing or losing this queue's entries: "ok", "filling" or "full".

        A list (and a stream DLQ) by its length: filling from 80% of its max size, full at it. A
        stream also by its worst consumer group (see ``group_risk``); an overflow DLQ never.
        """
        return max(self._fill_level, self._group_level, key=LEVELS.index)

    @property
    def _fill_level(self) -> str:
        if self.fill_ratio is None or (self.type == "stream" and self.kind != "dlq"):
            return "ok"
        return "full" if self.fill_ratio >= 1 else "filling" if self.fill_ratio >= WARN_RATIO else "ok"

    @property
    def _group_level(self) -> str:
        return max((group["level"] for group in self.groups), key=LEVELS.index, default="ok")

    @property
    def warning(self) -> bool:
        return self.level != "ok"

    @property
    def alert(self) -> str:
        """What the level means for HSI, and what to do, as a sentence ("" when all is well)."""
        if self.level == "ok":
            return ""
        if self._group_level == self.level:
            return self._group_alert()
        size = f"{self.length:,} of {self.max_size:,}"
        if self.type == "stream":  # a stream DLQ
            if self.level == "full":
                return (
                    f"Full ({size}): every new failure makes HSI's XADD MAXLEN trim the oldest failed "
                    "job from this DLQ, and that job is lost. Retry or delete entries to make room."
                )
            return (
                f"Filling up ({size}): at MAXLEN HSI's XADD trims the oldest failed jobs. Retry or "
                "delete entries before it is full."
            )
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

    def _group_alert(self) -> str:
        """The worst group's state as a sentence: entries trimmed unprocessed, or about to be."""
        group = max(self.groups, key=lambda g: (LEVELS.index(g["level"]), g["behind"]))
        name, behind = group["name"], f"{group['behind']:,}"
        if group["level"] == "filling":
            return (
                f"Falling behind: group {name} has {behind} entries it has not processed, "
                f"{group['behind'] / self.max_size:.0%} of MAXLEN {self.max_size:,}. At MAXLEN HSI's XADD "
                "trims the oldest entries whether or not they were processed."
            )
        lost = []
        if group["trimmed_unread"]:
            lost.append(f"{group['trimmed_unread']:,} entries it had not read")
        if group["pending_trimmed"]:
            lost.append("entries it had read but not acknowledged (its oldest pending entry is gone)")
        if lost:
            what = f"Losing entries of group {name}: HSI's XADD MAXLEN trimmed {' and '.join(lost)}."
        else:
            what = (
                f"Trimming unprocessed entries ({self.length:,} of MAXLEN {self.max_size:,}): group {name} "
                f"is {behind} behind, so HSI's next XADD trims an entry it has not processed."
            )
        return f"{what} The group's consumers are not keeping up; check that they are running."

    def as_dict(self) -> dict[str, Any]:
        ratio = self.fill_ratio
        facts = asdict(self)
        del facts["first_id"], facts["stream_room"]
        return {
            **facts,
            "fill_ratio": None if ratio is None else round(ratio, 4),
            "level": self.level,
            "alert": self.alert or None,
        }


def well_known() -> dict[str, str]:
    """HSI's own queues and retry DLQs (key -> family), listed even while they do not exist."""
    found = dict.fromkeys(keys.QUEUE_NAMES, "queues")
    return found | {keys.dlq_key(name): "dlq" for name in keys.QUEUE_NAMES}


def contract_names() -> list[str]:
    """Every queue and DLQ name HSI itself writes, in both key layouts (the contract's list)."""
    names: list[str] = []
    for name in keys.QUEUE_NAMES:
        for queue in (name, f"{keys.DOCUMENTED_PREFIX}{name}"):
            names += [queue, keys.dlq_key(name, documented=queue != name), f"dlq:overflow:{queue}"]
    for stream in keys.STREAM_NAMES:
        names += [stream, f"{stream}:dlq"]
    return names


def known(client: redis.Redis) -> dict[str, str]:
    """The well-known names, and those of HSI's other names that exist (one pipelined EXISTS each):
    found whatever the keyspace's size, where a bounded SCAN may stop before reaching them."""
    found = well_known()
    candidates = {name: keys.classify(name).name for name in contract_names() if name not in found}
    return found | _existing(candidates, client)


@dataclass(frozen=True)
class Discovery:
    """Queue and DLQ keys (key -> family) and how far the SCAN for other names has got: ``complete``
    once it has been through the whole keyspace, else ``examined`` keys of its first pass so far."""

    found: dict[str, str]
    examined: int
    complete: bool


DISCOVERY_CACHE = "queues:discovery"
DISCOVERY_CACHE_SECONDS = 3600


def discover(client: redis.Redis) -> Discovery:
    """HSI's own queue names (see ``known``), plus the queue and DLQ keys under other names (such
    as ``hsi:queue:<other>``) that a SCAN meets. The SCAN looks at SCAN_LIMIT keys a call and
    resumes where the previous call stopped (its cursor and findings are kept in the cache), so
    every call costs the same and a keyspace of any size is covered after a few calls; keys it
    found that have gone since are dropped."""
    state = cache.get(DISCOVERY_CACHE)
    if not isinstance(state, dict):
        state = {"cursor": 0, "found": {}, "examined": 0, "complete": False}
    cursor, others, examined = int(state["cursor"]), dict(state["found"]), 0
    complete = bool(state["complete"])
    while True:
        cursor, batch = client.scan(cursor, count=conf("SCAN_COUNT"))
        for raw in batch:
            key = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)
            family = keys.classify(key).name
            if family in QUEUE_FAMILIES:
                others[key] = family
        examined += len(batch)
        if cursor == 0:
            complete = True
        if cursor == 0 or examined >= conf("SCAN_LIMIT"):
            break
    found = known(client)
    others = _existing({key: family for key, family in others.items() if key not in found}, client)
    first_pass = 0 if complete else int(state["examined"]) + examined
    new_state = {"cursor": cursor, "found": others, "examined": first_pass, "complete": complete}
    cache.set(DISCOVERY_CACHE, new_state, DISCOVERY_CACHE_SECONDS)
    return Discovery(found | others, first_pass, complete)


def _existing(candidates: dict[str, str], client: redis.Redis) -> dict[str, str]:
    pipe = client.pipeline(transaction=False)
    for key in candidates:
        pipe.exists(key)
    return {
        key: family for (key, family), there in zip(candidates.items(), pipe.execute(), strict=True) if there
    }


def queue_keys(client: redis.Redis) -> dict[str, str]:
    return discover(client).found


def alerts(infos: list[QueueInfo]) -> list[QueueInfo]:
    """The flagged ones, full before filling."""
    return sorted((info for info in infos if info.warning), key=lambda info: info.level != "full")


def oldest_age(head: Entry | None, now: float) -> float | None:
    decoded = head.decoded if head is not None and head.raw else None
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
    return measure(client, queue_keys(client))


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
    retry stops at QUEUE_MAX_SIZE there (``dlq:X`` retries to ``X`` even when X is no HSI name),
    with the room the retry scripts will find."""
    source = keys.source_queue(dlq) or dlq
    is_stream = keys.classify(dlq).name == "stream_dlq"
    info = _measure(client, [_info(source, "streams" if is_stream else "queues")])[0]
    if is_stream and info.max_size:
        info.stream_room = stream_room(client, source, info.max_size)
    return info


def stream_room(client: redis.Redis, key: str, adding: int) -> int:
    """How many of ``adding`` entries the stream can take before HSI's next XADD MAXLEN would trim
    one that a consumer group has not processed: the rule the retry and restore scripts apply."""
    return int(script("stream_room").call(client, [key], [conf("QUEUE_MAX_SIZE"), adding]))


def _measure(client: redis.Redis, infos: list[QueueInfo]) -> list[QueueInfo]:
    """Lengths and oldest entries: lists in one script call (a large head entry is cut inside Redis),
    streams' groups in one pipeline and their lengths and first ids in one call (which sends no
    entry's fields)."""
    lists = [info for info in infos if info.type == "list"]
    heads = peek(client, [info.key for info in lists], 0, 0)
    streams = [info for info in infos if info.type != "list"]
    pipe = client.pipeline(transaction=False)
    for info in streams:
        pipe.xinfo_groups(info.key)
    replies = iter(pipe.execute(raise_on_error=False) if streams else [])
    ends = stream_ends(client, [info.key for info in streams])
    now = time.time()
    refused = []  # keys of another type: Redis refused the length
    for info, head in zip(lists, heads, strict=True):
        if isinstance(head, redis.ResponseError):
            info.length = 0
            refused.append(info)
            continue
        info.length = head.length
        info.oldest_age_seconds = oldest_age(head.entries[0] if head.entries else None, now)
    for info, end in zip(streams, ends, strict=True):
        groups = next(replies)
        if isinstance(groups, list):
            info.groups = [_group(group) for group in groups]
        if isinstance(end, redis.ResponseError):
            info.length = 0
            refused.append(info)
            continue
        info.length, first = end
        if first is not None:
            info.first_id = first
            info.oldest_age_seconds = max(now - entry_ms(first) / 1000, 0.0)
    _add_stored_types(client, refused)
    _add_group_facts(client, infos)
    return infos


def _add_stored_types(client: redis.Redis, infos: list[QueueInfo]) -> None:
    """What the keys whose length Redis refused hold instead (one more round trip, only for them)."""
    if not infos:
        return
    pipe = client.pipeline(transaction=False)
    for info in infos:
        pipe.type(info.key)
    for info, stored in zip(infos, pipe.execute(), strict=True):
        text = str(_text(stored))
        info.stored_type = None if text == "none" else text  # "none": deleted meanwhile


def entry_ms(entry_id: str) -> int:
    """The time (ms since the epoch) Redis stamped into a stream entry id, ``<ms>-<seq>``."""
    return int(entry_id.split("-")[0])


def _id_order(entry_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in entry_id.split("-"))


def _text(value: Any) -> Any:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _group(group: dict[Any, Any]) -> dict[str, Any]:
    return {_text(k): _text(v) for k, v in group.items()}


def _add_group_facts(client: redis.Redis, infos: list[QueueInfo]) -> None:
    """Each group's consumers and oldest pending entry, for all groups in one pipeline.

    ``idle_consumers`` flags a group whose consumers have all been idle (no read or claim
    attempted) longer than ``CONSUMER_IDLE_SECONDS``; a group without consumers is not flagged.
    """
    groups = [(info, group) for info in infos for group in info.groups]
    if not groups:
        return
    pipe = client.pipeline(transaction=False)
    for info, group in groups:
        pipe.xinfo_consumers(info.key, str(group.get("name", "")))
        pipe.xpending(info.key, str(group.get("name", "")))
    replies = iter(pipe.execute(raise_on_error=False))
    threshold = float(conf("CONSUMER_IDLE_SECONDS"))
    for info, group in groups:
        reply, pending = next(replies), next(replies)
        consumers = [_consumer(c) for c in reply] if isinstance(reply, list) else []
        group["consumer_details"] = consumers
        group["idle_consumers"] = bool(consumers) and all(c["idle_seconds"] > threshold for c in consumers)
        oldest = pending.get("min") if isinstance(pending, dict) else None
        group |= group_risk(info, group, _text(oldest) if oldest else None)


def group_risk(info: QueueInfo, group: dict[str, Any], oldest_pending: str | None) -> dict[str, Any]:
    """How much of a stream a group has not processed, and whether HSI's trimming reaches it.

    ``behind``: pending (read, not acknowledged) plus lag (not read yet). ``trimmed_unread``:
    entries XADD MAXLEN trimmed before the group read them (Redis counts entries added and read, so
    a lag longer than the stream says so). ``pending_trimmed``: the oldest pending entry is older
    than the stream's first, so it was trimmed before it was acknowledged. ``level``: "full" when
    entries were lost that way or the stream is at MAXLEN and HSI's next XADD trims an entry the
    group has not processed (its lag has reached MAXLEN: the XADD keeps the newest MAXLEN entries,
    its own among them; or its oldest pending entry is the stream's first), "filling" when the
    group is 80% of MAXLEN behind. (The retry scripts' room, lib.lua stream_room, places a pending
    entry exactly; this needs no extra read per group.)
    """
    lag = group.get("lag") if isinstance(group.get("lag"), int) else None
    pending = int(group.get("pending") or 0)
    behind = pending + (lag or 0)
    first = _id_order(info.first_id) if info.first_id else None
    trimmed_unread = max((lag or 0) - info.length, 0)
    pending_trimmed = bool(first and oldest_pending and _id_order(oldest_pending) < first)
    at_max = bool(info.max_size and info.length >= info.max_size and info.length)
    at_head = at_max and (
        (lag is not None and lag >= info.max_size)
        or bool(first and oldest_pending and _id_order(oldest_pending) <= first)
    )
    if trimmed_unread or pending_trimmed or at_head:
        level = "full"
    elif info.max_size and behind >= WARN_RATIO * info.max_size:
        level = "filling"
    else:
        level = "ok"
    return {
        "behind": behind,
        "trimmed_unread": trimmed_unread,
        "pending_trimmed": pending_trimmed,
        "level": level,
    }


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
