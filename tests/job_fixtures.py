"""HSI job values as the contract shows them (§5), written by the jobs tests; never read at run time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis


def iso(seconds_ago: float) -> str:
    """A time that long before now: now when called, not at import, which is minutes earlier in a full run."""
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def tracker_job(job_id: str, status: str = "running", **extra: Any) -> dict[str, Any]:
    job = {
        "job_id": job_id,
        "job_type": "export",
        "status": status,
        "progress": 40,
        "message": "Exported 400/1000 events",
        "created_at": iso(60),
        "started_at": iso(59) if status != "pending" else None,
        "completed_at": None,
        "result": None,
        "error": None,
    }
    return job | extra


def put_tracker(
    client: redis.Redis, job_id: str, status: str = "running", *, ttl: int | None = None, **extra: Any
) -> None:
    # JobTracker writes through RedisClient.set: plain JSON text.
    client.set(f"job:{job_id}", json.dumps(tracker_job(job_id, status, **extra)), ex=ttl)


def status_job(job_id: str, status: str = "running", **extra: Any) -> dict[str, Any]:
    job = tracker_job(job_id, status) | {"job_type": "cleanup", "extra": {"requested_by": "api"}}
    return job | extra


def put_status(
    client: redis.Redis, job_id: str, status: str = "running", *, ttl: int | None = None, **extra: Any
) -> None:
    """A JobStatusService job with its index entries, as the service writes them."""
    client.set(f"job:{job_id}:status", json.dumps(status_job(job_id, status, **extra)), ex=ttl)
    created = time.time() - 60
    client.zadd("job:status:list", {job_id: created})
    if status == "running":
        client.zadd("jobs:active", {job_id: created + 1})
    if status in ("completed", "failed", "cancelled"):
        client.zadd("jobs:completed", {job_id: created + 30})


def stored(client: redis.Redis, key: str) -> dict[str, Any]:
    raw = client.get(key)
    assert isinstance(raw, bytes), f"{key} is missing"
    value: dict[str, Any] = json.loads(raw)
    return value
