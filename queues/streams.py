"""Streams and stream DLQs: pages of entries by id, and retry back to the stream in Lua."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import redis

from queues import dlq
from queues.conf import conf
from queues.scripts import script

DLQ_FIELDS = ("original_message_id", "dlq_reason", "dlq_timestamp", "delivery_count")
ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")  # a stream entry id, "<ms>-<seq>"


def as_text(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class StreamEntry:
    id: str
    fields: dict[str, str]

    @property
    def job(self) -> dict[str, str]:
        return {k: v for k, v in self.fields.items() if k not in DLQ_FIELDS}


@dataclass(frozen=True)
class StreamPage:
    key: str
    total: int
    entries: list[StreamEntry]
    next_id: str | None


def page(
    client: redis.Redis, key: str, after: str = "-", limit: int = 50, newest_first: bool = False
) -> StreamPage:
    """Entries after (or, newest first, before) an id: XRANGE with an exclusive start, bounded."""
    limit = max(1, min(limit, 100))
    pipe = client.pipeline(transaction=False)
    pipe.xlen(key)
    if newest_first:
        pipe.xrevrange(key, max="+" if after == "-" else f"({after}", min="-", count=limit)
    else:
        pipe.xrange(key, min="-" if after == "-" else f"({after}", max="+", count=limit)
    total, rows = pipe.execute()
    entries = [StreamEntry(as_text(i), {as_text(k): as_text(v) for k, v in f.items()}) for i, f in rows]
    next_id = entries[-1].id if len(entries) == limit else None
    return StreamPage(key, int(total), entries, next_id)


def retry(client: redis.Redis, key: str, ids: list[str]) -> dlq.Outcome:
    """Move stream DLQ entries back to their stream with their original fields."""
    target = dlq.target_of(key)
    outcome = dlq.Outcome(key, target)
    if not ids:
        return outcome
    statuses = script(client, "stream_retry")(keys=[key, target], args=[conf("QUEUE_MAX_SIZE"), *ids])
    for status in statuses:
        outcome.count(as_text(status))
    return outcome


def as_json(entry: StreamEntry) -> dict[str, Any]:
    return {"id": entry.id, "fields": entry.fields}
