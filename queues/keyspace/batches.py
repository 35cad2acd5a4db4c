"""Open batches (contract §7): one per camera, closed after 90 s, 30 s idle or 500 detections."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis

from queues import keys
from queues.codec import decode
from queues.keyspace.scan import Found, number, ok, pipelined, scalar, scan, text, ttl_text

BATCH_WINDOW_SECONDS = 90
BATCH_IDLE_SECONDS = 30
BATCH_MAX_DETECTIONS = 500
BATCH_CHECK_SECONDS = 5


@dataclass
class Batch:
    camera: str
    key: str
    batch_id: str | None = None
    ttl: str = ""
    started_at: float | None = None
    last_activity: float | None = None
    pipeline_start: str = ""
    detections: int | None = None
    encoding: str = ""
    closing: bool = False
    problems: list[str] = field(default_factory=list)
    now: float = 0.0

    @property
    def age(self) -> float | None:
        return self.now - self.started_at if self.started_at is not None else None

    @property
    def idle(self) -> float | None:
        return self.now - self.last_activity if self.last_activity is not None else None

    @property
    def close(self) -> tuple[float | None, str]:
        """Seconds until the timeout worker closes it (≤ 0: due at its next check) and why."""
        if self.detections is not None and self.detections >= BATCH_MAX_DETECTIONS:
            return 0.0, f"{BATCH_MAX_DETECTIONS} detections reached"
        candidates = []
        if self.started_at is not None:
            candidates.append((self.started_at + BATCH_WINDOW_SECONDS - self.now, "90 s window"))
        if self.last_activity is not None:
            candidates.append((self.last_activity + BATCH_IDLE_SECONDS - self.now, "30 s idle"))
        if not candidates:
            return None, "unknown (no start or activity time)"
        return min(candidates)

    @property
    def close_text(self) -> str:
        seconds, reason = self.close
        if seconds is None:
            return reason
        if seconds <= 0:
            return f"due now ({reason}; the worker checks every {BATCH_CHECK_SECONDS} s)"
        return f"in {seconds:.0f} s ({reason})"

    @property
    def problem(self) -> str:
        return "; ".join(self.problems)


BATCH_FIELDS = ("camera_id", "started_at", "last_activity", "pipeline_start_time", "closing")


def open_batches(client: redis.Redis, start: str = "") -> tuple[list[Batch], Found]:
    found = scan(client, [keys.BATCH_CURRENT_PATTERN], start=start)
    names = found.names
    now = time.time()
    batches = [Batch(keys.wildcard_part(name, keys.BATCH_CURRENT_PATTERN), name, now=now) for name in names]
    first = pipelined(client, [c for k in found.keys for c in (("get", (k,)), ("ttl", (k,)))])
    for index, batch in enumerate(batches):
        raw, ttl = first[2 * index], first[2 * index + 1]
        batch.ttl = ttl_text(ttl)
        batch.batch_id, problem = scalar(raw) if ok(raw) else (None, "not a string key")
        if problem:
            batch.problems.append(f"current batch id: {problem}")
    live = [b for b in batches if b.batch_id]
    calls: list[tuple[str, tuple[Any, ...]]] = []
    for batch in live:
        batch_id = batch.batch_id or ""
        calls += [("get", (keys.batch_field_key(batch_id, f),)) for f in BATCH_FIELDS]
        calls.append(("type", (keys.batch_field_key(batch_id, "detections"),)))
    second = pipelined(client, calls)
    width = len(BATCH_FIELDS) + 1
    counts: list[tuple[Batch, str]] = []
    for index, batch in enumerate(live):
        camera, started, activity, pipeline_start, closing, kind = second[index * width : (index + 1) * width]
        _read_batch_fields(batch, camera, started, activity, pipeline_start, closing)
        kind_text = text(kind) if ok(kind) else "unknown"
        counts.append((batch, kind_text))
    third = pipelined(
        client,
        [
            ("llen" if kind == "list" else "get", (keys.batch_field_key(b.batch_id or "", "detections"),))
            for b, kind in counts
            if kind in ("list", "string")
        ],
    )
    answers = iter(third)
    for batch, kind in counts:
        if kind == "list":
            length = next(answers)
            batch.detections, batch.encoding = (length if ok(length) else None), "Redis list"
        elif kind == "string":
            _detections_from_json(batch, next(answers))
        elif kind == "none":
            batch.detections, batch.encoding = 0, "none yet"
        else:
            batch.problems.append(f"detections: unexpected Redis type {kind}")
    return batches, found


def _read_batch_fields(batch: Batch, *values: Any) -> None:
    camera, started, activity, pipeline_start, closing = (v if ok(v) else None for v in values)
    if camera is not None:
        name, problem = scalar(camera)
        if problem or name != batch.camera:
            batch.problems.append(f"camera_id key says {name or problem!r}")
    batch.started_at, problem = number(started)
    if problem:
        batch.problems.append(f"started_at: {problem}")
    batch.last_activity, problem = number(activity)
    if problem and problem != "missing":
        batch.problems.append(f"last_activity: {problem}")
    if pipeline_start is not None:
        batch.pipeline_start = scalar(pipeline_start)[0] or ""
    batch.closing = closing is not None


def _detections_from_json(batch: Batch, raw: Any) -> None:
    found = decode(raw if ok(raw) else None)
    if isinstance(found.value, list):
        batch.detections, batch.encoding = len(found.value), "JSON string list"
    else:
        batch.problems.append(f"detections: a string that is not a JSON list ({found.kind})")
