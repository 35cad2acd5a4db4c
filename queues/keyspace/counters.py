"""Idempotency keys (contract §9), telemetry latency lists and HyperLogLogs (§11)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from queues import keys
from queues.codec import decode
from queues.keyspace.scan import Found, number, ok, pipelined, scalar, scan, ttl_text

TELEMETRY_MAX_ITEMS = 1000


@dataclass
class Idempotency:
    key: str
    kind: str
    ttl: str
    summary: str
    problem: str = ""


def idempotency_keys(client: redis.Redis, start: str = "") -> tuple[list[Idempotency], Found]:
    found = scan(client, keys.IDEMPOTENCY_PATTERNS, start=start)
    answers = pipelined(client, [c for k in found.keys for c in (("get", (k,)), ("ttl", (k,)))])
    rows = []
    for index, name in enumerate(found.names):
        raw, ttl = answers[2 * index], answers[2 * index + 1]
        row = Idempotency(name, "", ttl_text(ttl), "")
        if keys.classify(name).name == "batch_event":
            row.kind = "batch → event"
            event, row.problem = scalar(raw) if ok(raw) else (None, "not a string key")
            row.summary = f"event {event}" if event else ""
        else:
            row.kind = "HTTP response"
            value = decode(raw if ok(raw) else None).value
            if not isinstance(value, dict):
                row.problem = "not a JSON object"
            else:
                missing = [f for f in ("status_code", "fingerprint") if f not in value]
                row.problem = f"missing {', '.join(missing)}" if missing else ""
                content = value.get("content")
                row.summary = (
                    f"status {value.get('status_code', '?')}, {value.get('media_type', '?')}, "
                    f"{len(str(content or '')):,} characters, "
                    f"fingerprint {str(value.get('fingerprint', ''))[:12]}"
                )
        rows.append(row)
    return rows, found


@dataclass
class Latency:
    key: str
    stage: str
    ttl: str
    samples: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    problem: str = ""


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty sequence."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latencies(client: redis.Redis, start: str = "") -> tuple[list[Latency], Found]:
    found = scan(client, [keys.TELEMETRY_LATENCY_PATTERN], start=start)
    answers = pipelined(
        client,
        [c for k in found.keys for c in (("lrange", (k, -TELEMETRY_MAX_ITEMS, -1)), ("ttl", (k,)))],
    )
    rows = []
    for index, name in enumerate(found.names):
        items, ttl = answers[2 * index], answers[2 * index + 1]
        row = Latency(name, keys.wildcard_part(name, keys.TELEMETRY_LATENCY_PATTERN), ttl_text(ttl))
        if not ok(items):
            row.problem = "not a list"
        else:
            values, bad = [], 0
            for raw in items:
                parsed, _ = number(raw)
                if parsed is None:
                    bad += 1
                else:
                    values.append(parsed)
            values.sort()
            row.samples = len(values)
            if values:
                row.p50, row.p95, row.p99 = (percentile(values, s) for s in (0.5, 0.95, 0.99))
            if bad:
                row.problem = f"{bad} entr{'y is' if bad == 1 else 'ies are'} not numbers (skipped)"
        rows.append(row)
    return rows, found


@dataclass
class Counter:
    key: str
    ttl: str
    count: int | None
    problem: str = ""


def hyperloglogs(client: redis.Redis, start: str = "") -> tuple[list[Counter], Found]:
    found = scan(client, [keys.HLL_PATTERN], start=start)
    answers = pipelined(client, [c for k in found.keys for c in (("pfcount", (k,)), ("ttl", (k,)))])
    rows = []
    for index, name in enumerate(found.names):
        count, ttl = answers[2 * index], answers[2 * index + 1]
        problem = "" if ok(count) else "not a HyperLogLog"
        rows.append(Counter(name, ttl_text(ttl), count if ok(count) else None, problem))
    return rows, found
