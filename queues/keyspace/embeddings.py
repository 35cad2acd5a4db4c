"""Entity re-identification embeddings per day (contract §10), decoded even when double-encoded.

The list of days reads a day's value only when STRLEN says it is at most LIST_MAX_BYTES: a busy
day's value holds every embedding vector (MBs), and one GET of it would be a long command; such a
day shows its size and "too large to count here" (its own page reads it whole, up to
EMBEDDINGS_MAX_BYTES).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from queues import keys
from queues.codec import Decoded, decode
from queues.conf import conf
from queues.keyspace.scan import Found, ok, pipelined, scan, ttl_text

EMBEDDING_PREVIEW = 4
LIST_MAX_BYTES = 256 * 1024  # larger values are not read by the list (a GET of 256 KiB is well under 5 ms)
TOO_LARGE_TO_COUNT = "too large to count here; open the day"


@dataclass
class Entity:
    entity_type: str
    camera_id: str
    timestamp: str
    detection_id: str
    dimensions: int | None
    preview: list[float]
    attributes: str
    problem: str = ""


@dataclass
class EmbeddingDay:
    key: str
    day: str
    ttl: str
    size: int | None
    encoding: str = ""
    persons: int | None = None
    vehicles: int | None = None
    problem: str = ""
    note: str = ""  # not a problem with the data: why the list did not count it
    entities: list[Entity] = field(default_factory=list)


def _entity(item: Any, expected: str) -> Entity:
    if not isinstance(item, dict):
        return Entity(expected, "", "", "", None, [], "", f"not an object ({type(item).__name__})")
    vector = item.get("embedding")
    problems = []
    dims: int | None = None
    preview: list[float] = []
    if isinstance(vector, list):
        dims = len(vector)
        preview = [round(v, 4) for v in vector[:EMBEDDING_PREVIEW] if isinstance(v, int | float)]
        if len(preview) < min(dims, EMBEDDING_PREVIEW):
            problems.append("embedding holds non-numbers")
    else:
        problems.append("no embedding list")
    kind = item.get("entity_type")
    if kind != expected:
        problems.append(f"entity_type is {kind!r}")
    attributes = item.get("attributes")
    return Entity(
        str(kind or expected),
        str(item.get("camera_id", "")),
        str(item.get("timestamp", "")),
        str(item.get("detection_id", "")),
        dims,
        preview,
        ", ".join(f"{k}: {v}" for k, v in attributes.items())[:200] if isinstance(attributes, dict) else "",
        "; ".join(problems),
    )


def _read_day(day: EmbeddingDay, found: Decoded, *, with_entities: bool) -> None:
    day.encoding = " → ".join(found.encodings)
    value = found.value
    if not isinstance(value, dict):
        day.problem = f"not a JSON object ({found.kind}{': ' + found.note if found.note else ''})"
        return
    problems = []
    for name, expected in (("persons", "person"), ("vehicles", "vehicle")):
        items = value.get(name)
        if not isinstance(items, list):
            problems.append(f"{name} is {'missing' if items is None else 'not a list'}")
            continue
        setattr(day, name, len(items))
        if with_entities:
            day.entities += [_entity(item, expected) for item in items]
    day.problem = "; ".join(problems)


def embedding_days(
    client: redis.Redis, *, day: str | None = None, start: str = ""
) -> tuple[list[EmbeddingDay], Found]:
    """Per day: counts, size and TTL; with ``day``, that day's entities too (vectors abbreviated)."""
    if day is None:
        found = scan(client, [keys.EMBEDDINGS_PATTERN], start=start)
    else:
        key = keys.embeddings_key(day).encode()
        found = Found([key], 1, True)
    answers = pipelined(
        client, [c for k in found.keys for c in (("ttl", (k,)), ("strlen", (k,)), ("memory_usage", (k,)))]
    )
    days: list[EmbeddingDay] = []
    readable: list[EmbeddingDay] = []
    for index, name in enumerate(found.names):
        ttl, length, size = answers[3 * index : 3 * index + 3]
        entry = EmbeddingDay(
            name, keys.wildcard_part(name, keys.EMBEDDINGS_PATTERN), ttl_text(ttl), size if ok(size) else None
        )
        if ttl == -2:
            entry.problem = "no such key"
        elif not ok(length):
            entry.problem = "not a string key"
        elif length > conf("EMBEDDINGS_MAX_BYTES"):
            entry.problem = f"{length:,} bytes: too large to read here"
        elif day is None and length > LIST_MAX_BYTES:
            entry.note = f"{length:,} bytes: {TOO_LARGE_TO_COUNT}"
        else:
            readable.append(entry)
        days.append(entry)
    values = pipelined(client, [("get", (d.key,)) for d in readable])
    for entry, raw in zip(readable, values, strict=True):
        _read_day(entry, decode(raw if ok(raw) else None), with_entities=day is not None)
    days.sort(key=lambda d: d.day, reverse=True)
    return days, found
