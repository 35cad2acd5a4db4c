"""A realistic HSI keyspace for development, demos and tests (data contract §3-§12, both layouts).

``build_demo_world`` plans every write first, then in one MULTI/EXEC deletes exactly the keys it is
about to write and writes them again, so a second run leaves the same keyspace. The payload
builders (``detection_payload``, ``analysis_payload``, ``job_failure``) are shared with the simulator.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from queues import keys
from queues.codec import encode_payload

CAMERAS = ("front_door", "driveway", "garage_side", "backyard", "porch", "side_gate")
DETECTION_QUEUE, ANALYSIS_QUEUE = keys.QUEUE_NAMES
DETECTIONS_STREAM, ANALYSIS_STREAM = keys.STREAM_NAMES
DELETE_CHUNK = 500


# --- Small helpers -------------------------------------------------------------------------------


def hex_digits(rng: random.Random, count: int) -> str:
    return f"{rng.getrandbits(4 * count):0{count}x}"


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def batch_id(rng: random.Random) -> str:
    return f"batch-{hex_digits(rng, 8)}"


def iso(at: datetime) -> str:
    """ISO-8601 UTC with offset, as HSI writes DLQ, job and orchestrator timestamps."""
    return at.astimezone(UTC).isoformat()


def local_naive(at: datetime) -> datetime:
    """Local naive time, as the file watcher's ``datetime.now()``."""
    return at.astimezone().replace(tzinfo=None)


def epoch_text(at: datetime) -> str:
    """An epoch float as ``str(time.time())`` writes it (batch keys, rate limits)."""
    return str(round(at.timestamp(), 6))


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


# --- Queue items ---------------------------------------------------------------------------------


def detection_payload(rng: random.Random, camera: str, at: datetime) -> dict[str, Any]:
    """A ``DetectionQueuePayload`` as the FileWatcher enqueues it (§3.3)."""
    local = local_naive(at)
    return {
        "camera_id": camera,
        "file_path": f"/export/foscam/{camera}/MDAlarm_{local:%Y%m%d-%H%M%S}.jpg",
        "timestamp": local.isoformat(),
        "media_type": "image",
        "file_hash": hex_digits(rng, 64),
        "pipeline_start_time": iso(at - timedelta(milliseconds=rng.randint(5, 40))),
    }


def analysis_payload(
    rng: random.Random, camera: str, at: datetime, detection_ids: list[int]
) -> dict[str, Any]:
    """An ``AnalysisQueuePayload`` as the BatchAggregator enqueues it (§3.3)."""
    return {
        "batch_id": batch_id(rng),
        "camera_id": camera,
        "detection_ids": detection_ids,
        "timestamp": round(at.timestamp(), 2),
        "pipeline_start_time": iso(at - timedelta(seconds=rng.uniform(30, 90))),
    }


# --- Retry-DLQ entries (JobFailure, §4.2) ---------------------------------------------------------

SITE = "/usr/local/lib/python3.14/site-packages"
CHAINED = "\nThe above exception was the direct cause of the following exception:\n\n"
WORKER_FRAMES = """\
Traceback (most recent call last):
  File "/app/backend/services/pipeline_workers.py", line 412, in _process_detection
    result = await self._retry_handler.with_retry(self._detect, payload)
  File "/app/backend/services/retry_handler.py", line 228, in with_retry
    return await operation(*args, **kwargs)
  File "/app/backend/services/pipeline_workers.py", line 468, in _detect
    detections = await self._detector.detect_objects(file_path, camera_id, session)
"""
CONNECT_TRACE = f"""\
Traceback (most recent call last):
  File "{SITE}/httpx/_transports/default.py", line 101, in map_httpcore_exceptions
    yield
  File "{SITE}/httpx/_transports/default.py", line 394, in handle_async_request
    resp = await self._pool.handle_async_request(req)
  File "{SITE}/httpcore/_async/connection_pool.py", line 256, in handle_async_request
    raise exc from None
  File "{SITE}/httpcore/_async/connection.py", line 124, in _connect
    stream = await self._network_backend.connect_tcp(**kwargs)
  File "{SITE}/httpcore/_backends/anyio.py", line 113, in connect_tcp
    with map_exceptions(exc_map):
httpx.ConnectError: All connection attempts failed
{CHAINED}{WORKER_FRAMES}\
  File "/app/backend/services/detector_client.py", line 301, in detect_objects
    response = await self._send_detection_request(image_data, file_path)
  File "/app/backend/services/detector_client.py", line 371, in _send_detection_request
    raise DetectorUnavailableError(f"Detector unavailable: {{type(exc).__name__}}") from exc
backend.services.detector_client.DetectorUnavailableError: Detector unavailable: ConnectError
"""
HTTP_503 = (
    "Server error '503 Service Unavailable' for url 'http://ai-detector:8090/detect'\n"
    "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503"
)
HTTP_503_TRACE = f"""\
{WORKER_FRAMES}\
  File "/app/backend/services/detector_client.py", line 301, in detect_objects
    response = await self._send_detection_request(image_data, file_path)
  File "/app/backend/services/detector_client.py", line 377, in _send_detection_request
    response.raise_for_status()
  File "{SITE}/httpx/_models.py", line 829, in raise_for_status
    raise HTTPStatusError(message, request=request, response=self)
httpx.HTTPStatusError: {HTTP_503}
"""
TIMEOUT_TRACE = f"""\
Traceback (most recent call last):
  File "/app/backend/services/detector_client.py", line 358, in _send_detection_request
    response = await self._http_client.post(self._detect_url, files=files)
  File "{SITE}/httpx/_client.py", line 1859, in post
    return await self.request(
  File "{SITE}/anyio/streams/tls.py", line 204, in receive
    data = await self._call_sslobject_method(self._ssl_object.read, max_bytes)
asyncio.exceptions.CancelledError
{CHAINED}{WORKER_FRAMES}\
  File "/app/backend/services/detector_client.py", line 301, in detect_objects
    response = await self._send_detection_request(image_data, file_path)
  File "/app/backend/services/detector_client.py", line 355, in _send_detection_request
    async with asyncio.timeout(self._timeout):
  File "/usr/local/lib/python3.14/asyncio/timeouts.py", line 116, in __aexit__
    raise TimeoutError from exc_val
TimeoutError: Detection request timed out after 30.0s
"""
TRUNCATED_JPEG_TRACE = f"""\
Traceback (most recent call last):
  File "/app/backend/services/detector_client.py", line 209, in _load_image
    image.load()
  File "{SITE}/PIL/ImageFile.py", line 298, in load
    raise OSError(msg)
OSError: image file is truncated (37 bytes not processed)
{CHAINED}{WORKER_FRAMES}\
  File "/app/backend/services/detector_client.py", line 288, in detect_objects
    image_data = await self._load_image(file_path)
  File "/app/backend/services/detector_client.py", line 214, in _load_image
    raise ValueError(f"Invalid image: {{reason}}") from exc
ValueError: Invalid image: truncated JPEG
"""
ANALYZER_TRACE = f"""\
Traceback (most recent call last):
  File "{SITE}/httpx/_transports/default.py", line 118, in map_httpcore_exceptions
    raise mapped_exc(message) from exc
httpx.ReadTimeout: timed out
{CHAINED}Traceback (most recent call last):
  File "/app/backend/services/pipeline_workers.py", line 655, in _process_batch
    event = await self._analyzer.analyze_batch(batch_id, camera_id, detection_ids)
  File "/app/backend/services/nemotron_analyzer.py", line 611, in _call_llm
    raise AnalyzerUnavailableError(f"Nemotron analysis failed: {{type(exc).__name__}}") from exc
backend.services.nemotron_analyzer.AnalyzerUnavailableError: Nemotron analysis failed: ReadTimeout
"""


@dataclass(frozen=True)
class FailureKind:
    """One way a job fails: what RetryHandler records about the last attempt."""

    error_type: str
    error: str
    stack_trace: str
    http_status: int | None = None
    response_body: str | None = None


MODEL_LOADING = '{"detail":"Model not ready: YOLO26 weights still loading (GPU memory 23.1/24.0 GiB)"}'
FAILURE_KINDS = (
    FailureKind("DetectorUnavailableError", "Detector unavailable: ConnectError", CONNECT_TRACE),
    FailureKind("HTTPStatusError", HTTP_503, HTTP_503_TRACE, 503, MODEL_LOADING),
    FailureKind("TimeoutError", "Detection request timed out after 30.0s", TIMEOUT_TRACE),
    FailureKind("ValueError", "Invalid image: truncated JPEG", TRUNCATED_JPEG_TRACE),
)
FAILURE_WEIGHTS = (40, 25, 20, 15)
ANALYZER_FAILURE = FailureKind(
    "AnalyzerUnavailableError", "Nemotron analysis failed: ReadTimeout", ANALYZER_TRACE
)


def job_failure(
    rng: random.Random,
    original_job: dict[str, Any],
    failed_at: datetime,
    *,
    queue: str = DETECTION_QUEUE,
    old_format: bool = False,
    kind: FailureKind | None = None,
) -> dict[str, Any]:
    """A JobFailure as RetryHandler writes it; ``old_format`` keeps only the six required fields."""
    kind = kind or rng.choices(FAILURE_KINDS, FAILURE_WEIGHTS)[0]
    delays = [round(base * (1 + rng.uniform(0, 0.25)), 2) for base in (1.0, 2.0)]
    last = failed_at + timedelta(seconds=sum(delays) + rng.uniform(0.2, 1.5))
    entry: dict[str, Any] = {
        "original_job": original_job,
        "error": kind.error,
        "attempt_count": 3,
        "first_failed_at": iso(failed_at),
        "last_failed_at": iso(last),
        "queue_name": queue,
    }
    if old_format:
        return entry
    return entry | {
        "error_type": kind.error_type,
        "stack_trace": kind.stack_trace,
        "http_status": kind.http_status,
        "response_body": kind.response_body,
        "retry_delays": delays,
        "context": {
            "detection_queue_depth": rng.randint(0, 140),
            "analysis_queue_depth": rng.randint(0, 6),
            "dlq_circuit_breaker_state": rng.choices(("closed", "half_open"), (9, 1))[0],
        },
    }


def overflow_wrapper(queue: str, stored: bytes) -> dict[str, Any]:
    """The §4.3 wrapper: ``data`` is the raw stored string (maybe ``Z:``-compressed)."""
    return {
        "original_queue": queue,
        "data": stored.decode(),
        "reason": "queue_overflow",
        "overflow_policy": "dlq",
    }


# --- The plan: every write, and so every key, known before anything is sent ---------------------


@dataclass
class Plan:
    """Redis commands to run in order, and the keys they write."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    written: dict[str, None] = field(default_factory=dict)  # an ordered set

    def call(self, key: str, method: str, *args: Any, **kwargs: Any) -> None:
        self.written[key] = None
        self.calls.append((method, args, kwargs))

    def expire(self, key: str, ttl: int | None) -> None:
        if ttl:
            self.calls.append(("expire", (key, ttl), {}))

    def set(self, key: str, value: str | bytes, ttl: int | None = None) -> None:
        self.call(key, "set", key, value, ex=ttl)

    def rpush(self, key: str, values: list[Any], ttl: int | None = None) -> None:
        self.call(key, "rpush", key, *values)
        self.expire(key, ttl)

    def zadd(self, key: str, mapping: dict[str, float], ttl: int | None = None) -> None:
        self.call(key, "zadd", key, mapping)
        self.expire(key, ttl)

    def counts(self) -> dict[str, int]:
        return dict(Counter(keys.classify(key).name for key in self.written))

    def apply(self, client: redis.Redis) -> None:
        """Delete the planned keys, then write them, in one MULTI/EXEC."""
        names = list(self.written)
        with client.pipeline(transaction=True) as pipe:
            for start in range(0, len(names), DELETE_CHUNK):
                pipe.delete(*names[start : start + DELETE_CHUNK])
            for method, args, kwargs in self.calls:
                getattr(pipe, method)(*args, **kwargs)
            pipe.execute()


@dataclass
class World:
    """The state shared by the builders: randomness, the clock and the plan."""

    rng: random.Random
    now: datetime
    plan: Plan = field(default_factory=Plan)
    last_detection_id: int = 48_200
    recent_detections: list[dict[str, Any]] = field(default_factory=list)

    def ago(self, **delta: float) -> datetime:
        return self.now - timedelta(**delta)

    def detection_ids(self, count: int) -> list[int]:
        first = self.last_detection_id + 1
        self.last_detection_id += count + self.rng.randint(0, 3)
        return list(range(first, first + count))

    def detection(self, at: datetime) -> dict[str, Any]:
        return detection_payload(self.rng, self.rng.choice(CAMERAS), at)

    def analysis(self, at: datetime, size: int) -> dict[str, Any]:
        return analysis_payload(self.rng, self.rng.choice(CAMERAS), at, self.detection_ids(size))


# --- Builders, one per family --------------------------------------------------------------------


def _work_queues(world: World) -> None:
    detections = [world.detection(world.ago(seconds=600 - 15 * i)) for i in range(40)]
    world.recent_detections = detections
    world.plan.rpush(keys.queue_key(DETECTION_QUEUE), [encode_payload(item) for item in detections])
    batches = [world.analysis(world.ago(seconds=480 - 40 * i), world.rng.randint(1, 8)) for i in range(12)]
    world.plan.rpush(keys.queue_key(ANALYSIS_QUEUE), [encode_payload(item) for item in batches])


def _documented_layout(world: World) -> None:
    """``hsi:queue:*``: what the operator guide documents and QueueStatusService reads (§3.5)."""
    items = [world.detection(world.ago(seconds=90 - 15 * i)) for i in range(5)]
    world.plan.rpush(keys.queue_key(DETECTION_QUEUE, documented=True), [encode_payload(i) for i in items])
    times = [world.ago(hours=30 - 9 * i) for i in range(3)]
    failures = [job_failure(world.rng, world.detection(at), at) for at in times]
    world.plan.rpush(keys.dlq_key(DETECTION_QUEUE, documented=True), [encode_payload(f) for f in failures])


MALFORMED_DLQ_ENTRIES = {  # position: raw value; what JobFailure.from_dict cannot read
    17: b"not json {",
    41: b'{"error": "Detector unavailable: ConnectError", "attempt_count": 3, "last_failed_at": null}',
}


def _retry_dlqs(world: World) -> None:
    """60 JobFailures over two days (1 in 5 in the old six-field format) and 2 malformed entries."""
    rng = world.rng
    times = sorted(world.ago(seconds=rng.uniform(300, 48 * 3600)) for _ in range(60))
    failures = [
        job_failure(rng, world.detection(at), at, old_format=i % 5 == 2) for i, at in enumerate(times)
    ]
    entries = [encode_payload(failure) for failure in failures]
    for position, raw in MALFORMED_DLQ_ENTRIES.items():
        entries.insert(position, raw)
    world.plan.rpush(keys.dlq_key(DETECTION_QUEUE), entries)
    times = [world.ago(hours=20 - 6 * i) for i in range(3)]
    analysis = [
        job_failure(rng, world.analysis(at, 4), at, queue=ANALYSIS_QUEUE, kind=ANALYZER_FAILURE)
        for at in times
    ]
    world.plan.rpush(keys.dlq_key(ANALYSIS_QUEUE), [encode_payload(entry) for entry in analysis])


def _overflow_dlqs(world: World) -> None:
    batches = [world.analysis(world.ago(hours=5, minutes=i), world.rng.randint(2, 9)) for i in range(4)]
    started = world.ago(hours=5, minutes=6)
    large = world.analysis(started + timedelta(seconds=88), 500) | {
        "started_at": round(started.timestamp(), 2),
        "ended_at": round(started.timestamp() + 88, 2),
        "reason": "max_size",
    }
    wrappers = [overflow_wrapper(ANALYSIS_QUEUE, encode_payload(item)) for item in (large, *batches)]
    world.plan.rpush(keys.overflow_dlq_key(ANALYSIS_QUEUE), [json.dumps(w) for w in wrappers])
    items = [world.detection(world.ago(hours=7, seconds=3 * i)) for i in range(3)]
    wrappers = [overflow_wrapper(DETECTION_QUEUE, encode_payload(item)) for item in items]
    world.plan.rpush(keys.overflow_dlq_key(DETECTION_QUEUE), [json.dumps(w) for w in wrappers])


def _stream_id(at: datetime) -> str:
    return f"{int(at.timestamp() * 1000)}-0"


def _detection_fields(world: World, at: datetime) -> dict[str, str]:
    payload = world.detection(at)
    return {
        "camera_id": payload["camera_id"],
        "detection_id": str(world.detection_ids(1)[0]),
        "file_path": payload["file_path"],
        "timestamp": payload["timestamp"],
        "confidence": f"{world.rng.uniform(0.45, 0.98):.2f}",
        "object_type": world.rng.choice(("person", "person", "car", "truck", "dog", "bicycle")),
        "media_type": "image",
    }


def _add_entries(world: World, stream: str, entries: list[tuple[datetime, dict[str, str]]]) -> list[str]:
    ids = [_stream_id(at) for at, _ in entries]
    for entry_id, (_, fields) in zip(ids, entries, strict=True):
        world.plan.call(stream, "xadd", stream, fields, id=entry_id, maxlen=10_000, approximate=True)
    return ids


def _consume(world: World, stream: str, reads: tuple[tuple[str, int], ...], acked: list[str]) -> None:
    """Create the group at id 0, deliver entries to consumers (pending), then XACK some."""
    group = keys.STREAM_GROUPS[stream]
    world.plan.call(stream, "xgroup_create", stream, group, id="0", mkstream=True)
    for consumer, count in reads:
        world.plan.call(stream, "xreadgroup", group, consumer, {stream: ">"}, count=count)
    world.plan.call(stream, "xack", stream, group, *acked)


def _detection_streams(world: World) -> None:
    entries = [
        (world.ago(seconds=400 - 20 * i), _detection_fields(world, world.ago(seconds=401 - 20 * i)))
        for i in range(20)
    ]
    ids = _add_entries(world, DETECTIONS_STREAM, entries)
    _consume(world, DETECTIONS_STREAM, (("worker-1", 10), ("worker-2", 3)), ids[:6])
    dead = []
    for hours in (26, 14, 9, 2):
        fields = _detection_fields(world, world.ago(hours=hours, minutes=3))
        fields |= {
            "original_message_id": _stream_id(world.ago(hours=hours, minutes=3)),
            "dlq_reason": "max_delivery_exceeded",
            "dlq_timestamp": epoch_text(world.ago(hours=hours)),
            "delivery_count": "4",
        }
        dead.append((world.ago(hours=hours), fields))
    _add_entries(world, keys.stream_dlq_key(DETECTIONS_STREAM), dead)


def _analysis_stream(world: World) -> None:
    entries = []
    for i in range(4):
        payload = world.analysis(world.ago(seconds=240 - 45 * i), world.rng.randint(2, 6))
        fields = {name: str(payload[name]) for name in ("batch_id", "camera_id", "pipeline_start_time")}
        entries.append(
            (
                world.ago(seconds=240 - 45 * i),
                fields | {"detection_ids": json.dumps(payload["detection_ids"])},
            )
        )
    ids = _add_entries(world, ANALYSIS_STREAM, entries)
    _consume(world, ANALYSIS_STREAM, (("worker-1", 2),), ids[:1])


# --- Jobs (§5) -----------------------------------------------------------------------------------


def job_record(world: World, job_type: str, status: str, created: datetime, **fields: Any) -> dict[str, Any]:
    """A JobTracker record; ``fields`` override progress/message/started_at/completed_at/result/error."""
    record: dict[str, Any] = {
        "job_id": uuid4(world.rng),
        "job_type": job_type,
        "status": status,
        "progress": 0,
        "message": "Queued",
        "created_at": iso(created),
        "started_at": None if status in ("queued", "pending") else iso(created + timedelta(seconds=0.4)),
        "completed_at": None,
        "result": None,
        "error": None,
    }
    return record | fields


def _finished(created: datetime, seconds: float, **fields: Any) -> dict[str, Any]:
    return {"completed_at": iso(created + timedelta(seconds=seconds)), **fields}


IMPORT_ERROR = "CSV row 14: invalid camera_id 'Front Door'"
CLEANUP_RESULT = {"deleted_events": 1243, "deleted_files": 512, "freed_bytes": 734_003_200}
TRACKER_JOBS: tuple[tuple[str, str, float, int, str, dict[str, Any]], ...] = (
    # job_type, status, minutes ago, progress, message, {finished after (s), result, error}
    ("export", "pending", 1, 0, "Queued", {}),
    ("export", "running", 4, 40, "Exported 400/1000 events", {}),
    ("backup", "running", 12, 70, "Archived 7/10 tables", {}),
    ("batch_audit", "running", 8, 30, "Aborting: User requested", {}),
    ("cleanup", "completed", 25, 100, "Completed successfully", {"after": 142, "result": CLEANUP_RESULT}),
    ("import", "failed", 40, 10, f"Failed: {IMPORT_ERROR}", {"after": 3, "error": IMPORT_ERROR}),
    (
        "export",
        "failed",
        18,
        20,
        "Job cancelled by user request",
        {"after": 65, "error": "Cancelled by user"},
    ),
    ("backup", "running", 3 * 1440 + 250, 20, "Archived 2/10 tables", {}),  # orphaned by a restart
)


def _tracker_records(world: World) -> list[dict[str, Any]]:
    records = []
    for job_type, status, minutes, progress, message, end in TRACKER_JOBS:
        created = world.ago(minutes=minutes)
        record = job_record(world, job_type, status, created, progress=progress, message=message)
        if end:
            record |= _finished(created, end["after"], result=end.get("result"), error=end.get("error"))
        records.append(record)
    return records


def _ttl_left(world: World, record: dict[str, Any], ttl: int = 3600) -> int | None:
    if not record["completed_at"]:
        return None
    elapsed = (world.now - datetime.fromisoformat(record["completed_at"])).total_seconds()
    return max(60, int(ttl - elapsed))


def _tracker_jobs(world: World) -> None:
    """JobTracker ``job:{id}``; no TTL while active (the stale backup), 3600 s once finished."""
    for record in _tracker_records(world):
        world.plan.set(keys.job_key(record["job_id"]), json.dumps(record), _ttl_left(world, record))


STATUS_JOBS = (  # job_type, status, minutes ago
    ("export", "queued", 0.5), ("cleanup", "pending", 2), ("export", "running", 6),
    ("batch_audit", "running", 15), ("backup", "completed", 30), ("import", "failed", 45),
    ("export", "cancelled", 20), ("cleanup", "completed", 55),
)  # fmt: skip
STATUS_MESSAGES = {
    "queued": ("Waiting for a worker", None),
    "pending": ("Queued", None),
    "running": ("Processing", None),
    "completed": ("Completed successfully", None),
    "failed": ("Failed: Disk quota exceeded", "Disk quota exceeded"),
    "cancelled": ("Cancelled by user", "Cancelled by user"),
}


def _status_records(world: World) -> list[dict[str, Any]]:
    """JobStatusService records: every status, with ``extra``."""
    records = []
    for job_type, status, minutes in STATUS_JOBS:
        created = world.ago(minutes=minutes)
        message, error = STATUS_MESSAGES[status]
        record = job_record(
            world, job_type, status, created, message=message, error=error, extra={"source": "api"}
        )
        if status in ("completed", "failed", "cancelled"):
            done = status == "completed"
            record |= _finished(
                created, 90, progress=100 if done else 35, result={"rows": 1874} if done else None
            )
        elif status == "running":
            record["progress"] = world.rng.randint(10, 90)
        records.append(record)
    return records


def _status_jobs(world: World) -> None:
    """JobStatusService ``job:{id}:status`` plus the three index zsets, one with an expired member."""
    active, completed, created = {}, {}, {}
    for record in _status_records(world):
        job_id = record["job_id"]
        world.plan.set(keys.job_status_key(job_id), json.dumps(record), _ttl_left(world, record))
        created[job_id] = datetime.fromisoformat(record["created_at"]).timestamp()
        if record["status"] == "running":
            active[job_id] = datetime.fromisoformat(record["started_at"]).timestamp()
        elif record["completed_at"]:
            completed[job_id] = datetime.fromisoformat(record["completed_at"]).timestamp()
    created[uuid4(world.rng)] = world.ago(hours=3).timestamp()
    world.plan.zadd(keys.JOB_STATUS_LIST, created)
    world.plan.zadd(keys.JOBS_ACTIVE, active)
    world.plan.zadd(keys.JOBS_COMPLETED, completed)


# --- Orchestrator (§6) ---------------------------------------------------------------------------

SERVICE_CATEGORIES = {
    "infrastructure": ("postgres", "redis", "frontend"),
    "ai": ("ai-detector", "ai-llm", "ai-florence", "ai-clip", "ai-enrichment"),
    "monitoring": (
        "prometheus",
        "grafana",
        "alertmanager",
        "redis-exporter",
        "json-exporter",
        "blackbox-exporter",
        "jaeger",
    ),
}
SERVICES = tuple(name for names in SERVICE_CATEGORIES.values() for name in names)
UNUSUAL_SERVICES = {  # name: (status, enabled, failure_count, restart_count)
    "ai-florence": ("disabled", False, 7, 5),
    "ai-llm": ("unhealthy", True, 3, 37),
    "ai-clip": ("starting", True, 1, 2),
    "jaeger": ("stopped", True, 0, 1),
    "json-exporter": ("not_found", True, 0, 0),
}


def _service_state(world: World, name: str) -> dict[str, Any]:
    rng = world.rng
    status, enabled, failures, restarts = UNUSUAL_SERVICES.get(name, ("running", True, 0, rng.randint(0, 3)))
    restarted = world.ago(minutes=2 if status == "starting" else rng.randint(30, 9000)) if restarts else None
    failed = (
        restarted - timedelta(seconds=rng.uniform(20, 40))
        if restarted and (failures or restarts > 2)
        else None
    )
    return {
        "enabled": enabled,
        "failure_count": failures,
        "last_failure_at": iso(failed) if failed else None,
        "last_restart_at": iso(restarted) if restarted else None,
        "restart_count": restarts,
        "status": status,
    }


def _orchestrator(world: World) -> None:
    for name in SERVICES:
        world.plan.set(keys.orchestrator_state_key(name), json.dumps(_service_state(world, name)))


# --- Batches, batch events, dedupe, idempotency (§7-§9) ------------------------------------------


def _open_batch(world: World, camera: str, *, legacy: bool = False, closing: bool = False) -> str:
    """One open batch; ``legacy`` = 32-hex id, JSON-quoted values and a JSON-list ``:detections``."""
    rng = world.rng
    bid = uuid4(rng).replace("-", "") if legacy else batch_id(rng)
    started = world.ago(seconds=rng.uniform(20, 80))
    values = {
        "camera_id": camera,
        "started_at": epoch_text(started),
        "last_activity": epoch_text(world.ago(seconds=rng.uniform(1, 15))),
        "pipeline_start_time": iso(started),
    }
    quote = json.dumps if legacy else str
    world.plan.set(keys.batch_current_key(camera), quote(bid), 3600)
    for name, value in values.items():
        world.plan.set(keys.batch_field_key(bid, name), quote(value), 3600)
    detections = [str(i) for i in world.detection_ids(rng.randint(3, 9))]
    if legacy:
        world.plan.set(keys.batch_field_key(bid, "detections"), json.dumps(detections), 3600)
    else:
        world.plan.rpush(keys.batch_field_key(bid, "detections"), detections, 3600)
    if closing:
        world.plan.set(keys.batch_field_key(bid, "closing"), "1", 300)
    return bid


def _batches(world: World) -> None:
    _open_batch(world, "front_door")
    _open_batch(world, "driveway", closing=True)
    _open_batch(world, "garage_side", legacy=True)
    for i in range(5):
        event_id = str(9100 + 7 * i + world.rng.randint(0, 6))
        world.plan.set(keys.batch_event_key(batch_id(world.rng)), json.dumps(event_id), 3600 - 400 * i)


def _dedupe(world: World) -> None:
    for payload in world.recent_detections[-15:]:
        world.plan.set(
            keys.dedupe_key(payload["file_hash"]),
            json.dumps(payload["file_path"]),
            world.rng.randint(30, 300),
        )
    orphan = world.detection(world.ago(hours=6))
    world.plan.set(keys.dedupe_key(orphan["file_hash"]), json.dumps(orphan["file_path"]))


def _idempotency(world: World) -> None:
    requests = (
        (
            "export-20260212-a1",
            "POST",
            "/api/events/export",
            '{"format":"csv","camera_id":"front_door"}',
            202,
        ),
        ("ack-alert-7f3c", "POST", "/api/alerts/7f3c/acknowledge", "{}", 200),
    )
    for key, method, path, body, status in requests:
        content = (
            {"job_id": uuid4(world.rng), "status": "pending"} if status == 202 else {"status": "acknowledged"}
        )
        value = {
            "status_code": status,
            "content": json.dumps(content),
            "media_type": "application/json",
            "fingerprint": hashlib.sha256(f"{method}:{path}:{body}".encode()).hexdigest(),
        }
        world.plan.set(keys.idempotency_key(key), json.dumps(value), 86_400 - world.rng.randint(60, 7200))


# --- Embeddings, telemetry, caches, rate limits, HyperLogLogs (§10-§12) --------------------------

PERSON_ATTRIBUTES = (
    {"clothing": "dark hoodie"},
    {"clothing": "red jacket", "carrying": "backpack"},
    {"clothing": "hi-vis vest"},
)
VEHICLE_ATTRIBUTES = (
    {"color": "silver", "type": "sedan"},
    {"color": "white", "type": "van", "plate_partial": "7KX"},
)


def _entity(world: World, entity_type: str, at: datetime, attributes: dict[str, str]) -> dict[str, Any]:
    return {
        "entity_type": entity_type,
        "embedding": [round(world.rng.gauss(0, 0.05), 4) for _ in range(768)],
        "camera_id": world.rng.choice(CAMERAS),
        "timestamp": iso(at),
        "detection_id": str(world.detection_ids(1)[0]),
        "attributes": attributes,
    }


def _embeddings(world: World) -> None:
    """Double-encoded JSON (``json.dumps`` of a JSON string), as RedisClient.set writes it."""
    for days_ago, persons, vehicles in ((1, 2, 1), (0, 3, 2)):
        at = world.ago(days=days_ago, hours=1)
        value = {
            "persons": [_entity(world, "person", at, PERSON_ATTRIBUTES[i]) for i in range(persons)],
            "vehicles": [_entity(world, "vehicle", at, VEHICLE_ATTRIBUTES[i]) for i in range(vehicles)],
        }
        day = f"{world.ago(days=days_ago).astimezone():%Y-%m-%d}"
        world.plan.set(
            keys.embeddings_key(day), json.dumps(json.dumps(value)), 86_400 - 3600 * (1 + 9 * days_ago)
        )


TELEMETRY_LOGNORMAL = {
    "watch": (2.5, 0.5),
    "detect": (5.3, 0.4),
    "batch": (10.9, 0.3),
    "analyze": (10.6, 0.35),
}


def _telemetry(world: World) -> None:
    for stage, (mu, sigma) in TELEMETRY_LOGNORMAL.items():
        samples = [json.dumps(round(world.rng.lognormvariate(mu, sigma), 2)) for _ in range(200)]
        world.plan.rpush(keys.telemetry_key(stage), samples, 3600)


def _cache_values(world: World) -> dict[str, tuple[Any, int]]:
    cameras = [
        {
            "id": cam,
            "name": cam.replace("_", " ").title(),
            "folder_path": f"/export/foscam/{cam}",
            "status": "offline" if cam == "side_gate" else "online",
            "last_seen_at": iso(world.ago(seconds=9 * i)),
        }
        for i, cam in enumerate(CAMERAS)
    ]
    status = {
        "status": "degraded",
        "services": {"database": "healthy", "redis": "healthy", "ai": "degraded"},
        "timestamp": iso(world.now),
    }
    return {keys.cache_key("cameras:list"): (cameras, 240), keys.cache_key("system:status"): (status, 45)}


def _caches(world: World) -> None:
    for key, (value, ttl) in _cache_values(world).items():
        world.plan.set(key, json.dumps(value), ttl)
    day, yesterday = f"{world.now:%Y-%m-%d}", f"{world.ago(days=1):%Y-%m-%d}"
    stats_key = keys.cache_key(f"stats:events:{yesterday}:{day}:all", prefixed=False)
    stats = {
        "total_events": 214,
        "events_by_risk_level": {"low": 161, "medium": 38, "high": 12, "critical": 3},
        "events_by_camera": [{"camera_id": cam, "event_count": 60 - 9 * i} for i, cam in enumerate(CAMERAS)],
    }
    world.plan.set(stats_key, json.dumps(stats), 360)
    world.plan.set(keys.cache_fresh_until_key(stats_key), epoch_text(world.now + timedelta(seconds=240)), 360)
    world.plan.set(keys.cache_refreshing_key(stats_key), "1", 42)


RATE_LIMIT_CLIENTS = (
    ("default", "192.168.1.24", 12),
    ("media", "192.168.1.31", 38),
    ("search", "10.0.0.7", 4),
    ("default", "203.0.113.9", 84),
)


def _rate_limits(world: World) -> None:
    """Sliding-window zsets; 203.0.113.9 is over the default tier's 60 + 10 per minute."""
    for tier, client_ip, requests in RATE_LIMIT_CLIENTS:
        stamps = {epoch_text(world.ago(seconds=world.rng.uniform(0, 59))) for _ in range(requests)}
        world.plan.zadd(keys.rate_limit_key(tier, client_ip), {stamp: float(stamp) for stamp in stamps}, 70)


def _hyperloglogs(world: World) -> None:
    day = f"{world.now:%Y-%m-%d}"
    counters = {
        "unique_files": [hex_digits(world.rng, 16) for _ in range(300)],
        "unique_clients": [f"192.168.1.{world.rng.randint(2, 254)}" for _ in range(25)],
        "active_cameras": list(CAMERAS),
    }
    for metric, members in counters.items():
        key = keys.hll_key(metric, day)
        world.plan.call(key, "pfadd", key, *members)
        world.plan.expire(key, 86_400)


BUILDERS = (
    _work_queues,
    _documented_layout,
    _retry_dlqs,
    _overflow_dlqs,
    _detection_streams,
    _analysis_stream,
    _tracker_jobs,
    _status_jobs,
    _orchestrator,
    _batches,
    _dedupe,
    _idempotency,
    _embeddings,
    _telemetry,
    _caches,
    _rate_limits,
    _hyperloglogs,
)


def build_demo_world(client: redis.Redis, *, now: datetime | None = None, seed: int = 7) -> dict[str, int]:
    """Write the demo keyspace; returns the number of keys written per key family."""
    world = World(random.Random(seed), _utc(now))
    for build in BUILDERS:
        build(world)
    world.plan.apply(client)
    return world.plan.counts()


def holds_hsi_keys(client: redis.Redis, *, scan_limit: int = 10_000) -> bool:
    """True when any key outside the console's own namespace exists (a bounded SCAN)."""
    for seen, key in enumerate(client.scan_iter(count=1000)):
        if not key.decode(errors="replace").startswith(keys.CONSOLE_PREFIX):
            return True
        if seen >= scan_limit:
            break
    return False
