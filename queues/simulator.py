"""A miniature HSI backend: publishes what HSI publishes and moves items through its queues.

Each ``Simulator.step()`` pushes new detections to ``detection_queue`` and pops from its head as a
worker would (the depth stays within a band), now and then closes a batch into ``analysis_queue``
or dead-letters a detection, publishes one ``security_events`` message, and every
``status_interval`` seconds a ``system_status`` and a ``performance_update`` wrapper (contract §13).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from queues import keys
from queues.codec import encode_payload
from queues.demo import (
    CAMERAS,
    SERVICE_CATEGORIES,
    analysis_payload,
    batch_id,
    detection_payload,
    iso,
    job_failure,
    local_naive,
    uuid4,
)

DETECTION_QUEUE, ANALYSIS_QUEUE = keys.QUEUE_NAMES
MESSAGE_TYPES = ("event", "detection.new", "camera_status", "alert_created", "service_status")
MESSAGE_WEIGHTS = (55, 25, 8, 7, 5)
RISK_LEVELS = ((85, "critical"), (60, "high"), (30, "medium"), (0, "low"))
SUMMARIES = {
    "low": ("Delivery driver dropped off a package", "Neighbour walking a dog past the {camera}",
            "Cat crossing the {camera}"),
    "medium": ("Unfamiliar car idling near the {camera}", "Person checking the mailbox after dark"),
    "high": ("Unknown person lingering at the {camera}", "Person trying the handle at the {camera}"),
    "critical": ("Person with a crowbar at the {camera}", "Forced entry attempt at the {camera}"),
}  # fmt: skip
LABELS = ("person", "person", "car", "truck", "dog", "cat", "bicycle")


def risk_level(score: int) -> str:
    """HSI's default bands: low < 30 <= medium < 60 <= high < 85 <= critical."""
    return next(level for floor, level in RISK_LEVELS if score >= floor)


@dataclass(frozen=True)
class Published:
    channel: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Depths:
    detection: int
    analysis: int
    dlq: int


class Simulator:
    """A fake HSI backend instance; ``step()`` is one tick of its pipeline."""

    def __init__(
        self,
        client: redis.Redis,
        rng: random.Random,
        *,
        clock: Callable[[], float] | None = None,
        status_interval: float = 5.0,
        depth_band: tuple[int, int] = (20, 60),
        analysis_cap: int = 10,
        dlq_cap: int = 1000,
    ) -> None:
        self.client = client
        self.rng = rng
        self.clock = clock or time.time
        self.status_interval = status_interval
        self.depth_band = depth_band
        self.analysis_cap = analysis_cap
        self.dlq_cap = dlq_cap
        self.instance_id = uuid4(rng)
        self.next_event_id = 9000 + rng.randint(0, 999)
        self.next_detection_id = 60_000 + rng.randint(0, 9999)
        self.last_status_at: float | None = None

    def step(self) -> list[Published]:
        """Move queue items, then publish; returns the messages published, in order."""
        at = datetime.fromtimestamp(self.clock(), UTC)
        depths = self._push_detections(at)
        with self.client.pipeline(transaction=False) as pipe:
            depths = self._work(pipe, depths, at)
            published = self._messages(at, depths)
            for item in published:
                pipe.publish(item.channel, json.dumps(item.message))
            pipe.execute()
        return published

    # --- Queues ---

    def _push_detections(self, at: datetime) -> Depths:
        count = 2 if self.rng.random() < 0.15 else 1
        items = [encode_payload(self._detection(at)) for _ in range(count)]
        with self.client.pipeline(transaction=False) as pipe:
            pipe.rpush(keys.queue_key(DETECTION_QUEUE), *items)
            pipe.llen(keys.queue_key(ANALYSIS_QUEUE))
            pipe.llen(keys.dlq_key(DETECTION_QUEUE))
            detection, analysis, dlq = pipe.execute()
        return Depths(detection, analysis, dlq)

    def _work(self, pipe: redis.client.Pipeline, depths: Depths, at: datetime) -> Depths:
        """Pop like the workers, close a batch now and then, dead-letter a detection rarely."""
        pops = self._pops(depths.detection)
        if pops:
            pipe.lpop(keys.queue_key(DETECTION_QUEUE), pops)
        analysis = depths.analysis + self._analysis(pipe, depths.analysis, at)
        dlq = depths.dlq
        if dlq < self.dlq_cap and self.rng.random() < 0.03:
            failure = job_failure(self.rng, self._detection(at - timedelta(seconds=5)), at)
            pipe.rpush(keys.dlq_key(DETECTION_QUEUE), encode_payload(failure))
            dlq += 1
        return Depths(depths.detection - pops, analysis, dlq)

    def _pops(self, depth: int) -> int:
        """Items the detection worker takes this tick: more when the queue is deep, none when shallow."""
        low, high = self.depth_band
        if depth > high:
            return 2
        return 0 if depth < low else 1 + (self.rng.random() < 0.15)

    def _analysis(self, pipe: redis.client.Pipeline, depth: int, at: datetime) -> int:
        """Returns the change in depth: +1 for a closed batch, -1 for one the LLM finished."""
        change = 0
        if depth < self.analysis_cap and self.rng.random() < 0.2:
            ids = list(range(self.next_detection_id - 4, self.next_detection_id))
            payload = analysis_payload(self.rng, self.rng.choice(CAMERAS), at, ids)
            pipe.rpush(keys.queue_key(ANALYSIS_QUEUE), encode_payload(payload))
            change += 1
        if depth > 0 and self.rng.random() < 0.2:
            pipe.lpop(keys.queue_key(ANALYSIS_QUEUE))
            change -= 1
        return change

    def _detection(self, at: datetime) -> dict[str, Any]:
        self.next_detection_id += 1
        return detection_payload(self.rng, self.rng.choice(CAMERAS), at)

    # --- Messages ---

    def _messages(self, at: datetime, depths: Depths) -> list[Published]:
        kind = self.rng.choices(MESSAGE_TYPES, MESSAGE_WEIGHTS)[0]
        published = [Published(keys.SECURITY_EVENTS, self._security_message(kind, at))]
        now = at.timestamp()
        if self.last_status_at is None or now - self.last_status_at >= self.status_interval:
            self.last_status_at = now
            published.append(
                Published(keys.SYSTEM_STATUS, self._wrap("system_status", self._status(depths), at))
            )
            published.append(
                Published(keys.PERFORMANCE_UPDATE, self._wrap("performance_update", self._perf(at), at))
            )
        return published

    def _security_message(self, kind: str, at: datetime) -> dict[str, Any]:
        builders = {
            "event": self._event,
            "detection.new": self._detection_new,
            "camera_status": self._camera_status,
            "alert_created": self._alert_created,
            "service_status": self._service_status,
        }
        return builders[kind](at)

    def _event(self, at: datetime) -> dict[str, Any]:
        self.next_event_id += 1
        score = min(100, int(self.rng.betavariate(1.6, 3.2) * 101))
        level = risk_level(score)
        camera = self.rng.choice(CAMERAS)
        data = {
            "id": self.next_event_id,
            "event_id": self.next_event_id,
            "batch_id": batch_id(self.rng),
            "camera_id": camera,
            "risk_score": score,
            "risk_level": level,
            "summary": self.rng.choice(SUMMARIES[level]).format(camera=camera.replace("_", " ")),
            "started_at": local_naive(at - timedelta(seconds=self.rng.randint(30, 90))).isoformat(
                timespec="seconds"
            ),
        }
        return {"type": "event", "data": data}

    def _detection_new(self, at: datetime) -> dict[str, Any]:
        data = {
            "detection_id": self.next_detection_id,
            "batch_id": batch_id(self.rng),
            "camera_id": self.rng.choice(CAMERAS),
            "label": self.rng.choice(LABELS),
            "confidence": round(self.rng.uniform(0.45, 0.98), 2),
            "timestamp": iso(at),
        }
        return {"type": "detection.new", "data": data, "timestamp": iso(at)}

    def _camera_status(self, at: datetime) -> dict[str, Any]:
        camera = self.rng.choice(CAMERAS)
        status, previous = self.rng.choice(
            (("offline", "online"), ("online", "offline"), ("error", "online"))
        )
        data = {
            "camera_id": camera,
            "camera_name": camera.replace("_", " ").title(),
            "status": status,
            "previous_status": previous,
            "changed_at": iso(at),
            "reason": {"offline": "No uploads for 300 s", "error": "FTP upload rejected"}.get(status),
        }
        return {"type": "camera_status", "data": data}

    def _alert_created(self, at: datetime) -> dict[str, Any]:
        data = {
            "id": uuid4(self.rng),
            "event_id": self.next_event_id,
            "rule_id": uuid4(self.rng),
            "severity": self.rng.choice(("high", "critical")),
            "status": "pending",
            "dedup_key": f"{self.rng.choice(CAMERAS)}:person",
            "created_at": iso(at),
        }
        return {"type": "alert_created", "data": data}

    def _service_status(self, at: datetime) -> dict[str, Any]:
        category = self.rng.choice(tuple(SERVICE_CATEGORIES))
        name = self.rng.choice(SERVICE_CATEGORIES[category])
        status = self.rng.choice(("running", "unhealthy", "starting"))
        data = {
            "name": name,
            "display_name": name.replace("-", " ").title(),
            "category": category,
            "status": status,
            "enabled": True,
            "container_id": f"{self.rng.getrandbits(48):012x}",
            "image": f"ghcr.io/hsi/{name}:latest",
            "failure_count": 0 if status == "running" else self.rng.randint(1, 3),
            "restart_count": self.rng.randint(0, 6),
            "last_restart_at": iso(at - timedelta(minutes=self.rng.randint(1, 600))),
            "uptime_seconds": self.rng.randint(5, 90_000) if status == "running" else None,
        }
        return {"type": "service_status", "data": data, "message": f"Service {name} is {status}"}

    # --- system_status / performance_update (SystemBroadcaster wrappers) ---

    def _wrap(self, kind: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
        payload = {"type": kind, "data": data, "timestamp": iso(at)}
        return {"_origin_instance": self.instance_id, "payload": payload}

    def _gpu(self) -> dict[str, Any]:
        return {
            "utilization": round(self.rng.uniform(35, 97), 1),
            "memory_used": self.rng.randint(14_000, 23_500),
            "memory_total": 24_576,
            "temperature": self.rng.randint(52, 81),
            "inference_fps": round(self.rng.uniform(4, 18), 1),
        }

    def _status(self, depths: Depths) -> dict[str, Any]:
        health = "degraded" if depths.detection > self.depth_band[1] or depths.dlq > 100 else "healthy"
        return {
            "gpu": self._gpu(),
            "cameras": {"active": len(CAMERAS) - 1, "total": len(CAMERAS)},
            "queue": {"pending": depths.detection, "processing": depths.analysis},
            "health": health,
            "ai": {"status": "healthy", "rtdetr": "healthy", "nemotron": "healthy"},
        }

    def _perf(self, at: datetime) -> dict[str, Any]:
        return {
            "timestamp": iso(at),
            "gpu": self._gpu(),
            "host": {
                "cpu_percent": round(self.rng.uniform(8, 65), 1),
                "ram_used_gb": round(self.rng.uniform(9, 14), 1),
                "ram_total_gb": 32.0,
            },
            "inference": {
                "detector_latency_ms": {
                    "avg": round(self.rng.uniform(80, 160), 1),
                    "p95": 240.0,
                    "p99": 410.0,
                },
                "nemotron_latency_ms": {"avg": round(self.rng.uniform(28_000, 45_000)), "p95": 61_000.0},
            },
            "databases": {"redis": {"connected_clients": self.rng.randint(8, 30), "hit_ratio": 0.97}},
            "alerts": [],
        }
