"""The demo world against a real private Redis: every family, both layouts, the contract's shapes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any, cast

import pytest
import redis
from django.core.management import CommandError, call_command

from console.redis import RedisConfig
from queues import keys
from queues.codec import Decoded, decode
from queues.demo import build_demo_world, holds_hsi_keys
from tests.redis_server import RedisServer, free_port

NOW = datetime(2026, 2, 12, 8, 0, 5, tzinfo=UTC)
CAMERA_IDS = {"front_door", "driveway", "garage_side", "backyard", "porch", "side_gate"}
CONTRACT_SERVICES = {
    "postgres", "redis", "frontend", "ai-detector", "ai-llm", "ai-florence", "ai-clip", "ai-enrichment",
    "prometheus", "grafana", "alertmanager", "redis-exporter", "json-exporter", "blackbox-exporter", "jaeger",
}  # fmt: skip
JOB_FAILURE_FIELDS = {
    "original_job",
    "error",
    "attempt_count",
    "first_failed_at",
    "last_failed_at",
    "queue_name",
}
FILE_PATH = re.compile(r"^/export/foscam/(?P<camera>[a-z_]+)/MDAlarm_\d{8}-\d{6}\.jpg$")


@pytest.fixture
def world(redis_client: redis.Redis) -> dict[str, int]:
    return build_demo_world(redis_client, now=NOW)


def decoded(client: redis.Redis, key: str) -> list[Decoded]:
    return [decode(raw) for raw in client.lrange(key, 0, -1)]


def scan(client: redis.Redis, pattern: str) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter(match=pattern, count=1000))


def value(client: redis.Redis, key: str) -> Any:
    return decode(client.get(key)).value


def members(client: redis.Redis, key: str) -> set[str]:
    return {member.decode() for member in cast(list[bytes], client.zrange(key, 0, -1))}


def scored(client: redis.Redis, key: str) -> list[tuple[bytes, float]]:
    return cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))


def test_counts_are_keys_per_family_and_match_the_keyspace(world: dict[str, int], redis_client: redis.Redis):
    census = Counter(keys.classify(key).name for key in scan(redis_client, "*"))
    assert world == dict(census)
    assert sum(world.values()) == redis_client.dbsize()
    assert "other" not in world
    assert len(world) == 17


def test_work_queues_hold_valid_detection_and_analysis_payloads(
    world: dict[str, int], redis_client: redis.Redis
):
    assert redis_client.type("detection_queue") == b"list"
    detections = [item.value for item in decoded(redis_client, "detection_queue")]
    assert 30 <= len(detections) <= 50
    for item in detections:
        match = FILE_PATH.match(item["file_path"])
        assert match and match["camera"] == item["camera_id"] in CAMERA_IDS
        assert datetime.fromisoformat(item["timestamp"]).tzinfo is None
        assert datetime.fromisoformat(item["pipeline_start_time"]).utcoffset() == timedelta(0)
        assert item["media_type"] == "image" and re.fullmatch(r"[0-9a-f]{64}", item["file_hash"])
    analysis = [item.value for item in decoded(redis_client, "analysis_queue")]
    assert 8 <= len(analysis) <= 16
    for item in analysis:
        assert re.fullmatch(r"batch-[0-9a-f]{8}", item["batch_id"]) and item["camera_id"] in CAMERA_IDS
        assert item["detection_ids"] and all(isinstance(i, int) and i > 0 for i in item["detection_ids"])
        assert isinstance(item["timestamp"], float) and abs(item["timestamp"] - NOW.timestamp()) < 3600


def test_documented_layout_is_written_too(world: dict[str, int], redis_client: redis.Redis):
    documented_queue = keys.queue_key("detection_queue", documented=True)
    documented_dlq = keys.dlq_key("detection_queue", documented=True)
    assert (documented_queue, documented_dlq) == (
        "hsi:queue:detection_queue",
        "hsi:queue:dlq:detection_queue",
    )
    assert redis_client.type(documented_queue) == redis_client.type(documented_dlq) == b"list"
    assert [item.value["camera_id"] in CAMERA_IDS for item in decoded(redis_client, documented_queue)] == [
        True
    ] * 5
    entries = decoded(redis_client, documented_dlq)
    assert len(entries) == 3 and all(entry.value.keys() >= JOB_FAILURE_FIELDS for entry in entries)


def test_every_retry_dlq_entry_is_a_job_failure_except_the_two_malformed(
    world: dict[str, int], redis_client: redis.Redis
):
    entries = decoded(redis_client, "dlq:detection_queue")
    good = [e for e in entries if isinstance(e.value, dict) and "original_job" in e.value]
    bad = [e for e in entries if e not in good]
    assert len(good) == 60
    assert sorted(e.kind for e in bad) == ["json", "text"]
    assert all(
        e.value.keys() >= JOB_FAILURE_FIELDS and e.value["queue_name"] == "detection_queue" for e in good
    )
    failed_at = [datetime.fromisoformat(e.value["first_failed_at"]) for e in good]
    assert NOW - timedelta(hours=48) <= min(failed_at) < NOW - timedelta(hours=24) < max(failed_at) <= NOW
    analysis = decoded(redis_client, "dlq:analysis_queue")
    assert [e.value["queue_name"] for e in analysis] == ["analysis_queue"] * 3
    assert all("batch_id" in e.value["original_job"] for e in analysis)


def test_large_dlq_entries_are_zstd_and_old_ones_plain_json(world: dict[str, int], redis_client: redis.Redis):
    good = [e for e in decoded(redis_client, "dlq:detection_queue") if isinstance(e.value, dict)]
    compressed = [e for e in good if e.kind == "zstd"]
    assert len(compressed) >= 30 and all(e.raw.startswith(b"Z:") for e in compressed)
    assert all("Traceback (most recent call last)" in e.value["stack_trace"] for e in compressed)
    assert {e.value["error_type"] for e in compressed} == {
        "DetectorUnavailableError", "HTTPStatusError", "TimeoutError", "ValueError"
    }  # fmt: skip
    http = [e.value for e in compressed if e.value["error_type"] == "HTTPStatusError"]
    assert all(v["http_status"] == 503 and v["response_body"] for v in http)
    old = [e for e in good if e.kind == "json" and "original_job" in e.value]
    assert 8 <= len(old) <= 16
    assert all(e.value.keys() == JOB_FAILURE_FIELDS and e.size <= 1024 for e in old)


def test_overflow_wrappers_nest_a_stored_string(world: dict[str, int], redis_client: redis.Redis):
    inner_kinds = []
    for queue, length in (("analysis_queue", 5), ("detection_queue", 3)):
        entries = decoded(redis_client, keys.overflow_dlq_key(queue))
        assert len(entries) == length and {e.kind for e in entries} == {"overflow"}
        for entry in entries:
            assert entry.value["original_queue"] == queue and entry.value["reason"] == "queue_overflow"
            assert entry.value["overflow_policy"] == "dlq" and isinstance(entry.value["data"], str)
            assert entry.inner is not None and isinstance(entry.inner.value, dict)
            inner_kinds.append(entry.inner.kind)
    assert "zstd" in inner_kinds and "json" in inner_kinds


def test_streams_have_groups_pending_entries_and_a_dlq(world: dict[str, int], redis_client: redis.Redis):
    assert (
        redis_client.type("detections:stream") == b"stream" and redis_client.xlen("detections:stream") == 20
    )
    [group] = redis_client.xinfo_groups("detections:stream")
    assert group["name"] == b"detection-workers" and group["pending"] > 0 and group["lag"] > 0
    pending = redis_client.xpending("detections:stream", "detection-workers")
    assert b"worker-1" in {consumer["name"] for consumer in pending["consumers"]}
    assert pending["pending"] < group["entries-read"]  # some of what was read was acknowledged
    dead = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_client.xrange("detections:stream:dlq"))
    assert len(dead) == 4
    for _, fields in dead:
        assert fields[b"dlq_reason"] == b"max_delivery_exceeded" and int(fields[b"delivery_count"]) > 3
        assert float(fields[b"dlq_timestamp"]) < NOW.timestamp() and fields[b"original_message_id"]
        assert fields[b"camera_id"].decode() in CAMERA_IDS
    [analysis_group] = redis_client.xinfo_groups("analysis:stream")
    assert analysis_group["name"] == b"analysis-workers" and analysis_group["pending"] >= 1


def tracker_jobs(client: redis.Redis) -> dict[str, dict[str, Any]]:
    names = [k for k in scan(client, "job:*") if k.count(":") == 1 and k != keys.JOB_STATUS_LIST]
    return {name: value(client, name) for name in names}


def test_job_tracker_records_cover_every_status_and_ttl_rule(
    world: dict[str, int], redis_client: redis.Redis
):
    jobs = tracker_jobs(redis_client)
    assert {job["status"] for job in jobs.values()} == {"pending", "running", "completed", "failed"}
    assert {job["job_type"] for job in jobs.values()} <= {
        "export",
        "cleanup",
        "backup",
        "import",
        "batch_audit",
    }
    for key, job in jobs.items():
        ttl = redis_client.ttl(key)
        assert (ttl == -1) if job["status"] in ("pending", "running") else (0 < ttl <= 3600), key
    cancelled = [j for j in jobs.values() if j["error"] == "Cancelled by user"]
    assert [(j["status"], j["message"]) for j in cancelled] == [("failed", "Job cancelled by user request")]
    stale = [j for j in jobs.values() if datetime.fromisoformat(j["created_at"]) < NOW - timedelta(days=1)]
    assert [j["status"] for j in stale] == ["running"]
    assert any(j["status"] == "running" and 0 < j["progress"] < 100 for j in jobs.values())


def test_job_status_service_records_and_indexes(world: dict[str, int], redis_client: redis.Redis):
    records = {k: value(redis_client, k) for k in scan(redis_client, "job:*:status")}
    statuses = {r["status"] for r in records.values()}
    assert statuses == {"queued", "pending", "running", "completed", "failed", "cancelled"}
    ids = {r["job_id"] for r in records.values()}
    listed = members(redis_client, keys.JOB_STATUS_LIST)
    assert ids < listed
    [expired] = listed - ids
    assert not redis_client.exists(keys.job_status_key(expired), keys.job_key(expired))
    assert members(redis_client, keys.JOBS_ACTIVE) == {
        r["job_id"] for r in records.values() if r["status"] == "running"
    }
    finished = {r["job_id"] for r in records.values() if r["status"] in ("completed", "failed", "cancelled")}
    assert members(redis_client, keys.JOBS_COMPLETED) == finished


def test_orchestrator_state_for_every_contract_service(world: dict[str, int], redis_client: redis.Redis):
    states = {name: value(redis_client, keys.orchestrator_state_key(name)) for name in CONTRACT_SERVICES}
    assert all(isinstance(state, dict) for state in states.values())
    statuses = Counter(state["status"] for state in states.values())
    assert set(statuses) == {"running", "starting", "unhealthy", "stopped", "disabled", "not_found"}
    assert statuses["running"] > len(CONTRACT_SERVICES) / 2
    [disabled] = [s for s in states.values() if s["status"] == "disabled"]
    assert disabled["enabled"] is False and disabled["failure_count"] >= 5
    [flapping] = [s for s in states.values() if s["status"] == "unhealthy"]
    assert flapping["restart_count"] >= 10
    assert redis_client.ttl(keys.orchestrator_state_key("redis")) == -1


def test_batches_in_both_encodings(world: dict[str, int], redis_client: redis.Redis):
    currents = scan(redis_client, "batch:*:current")
    assert len(currents) == 3
    encodings = []
    for current in currents:
        batch = str(value(redis_client, current))
        camera = current.split(":")[1]
        assert str(value(redis_client, keys.batch_field_key(batch, "camera_id"))) == camera
        started = float(value(redis_client, keys.batch_field_key(batch, "started_at")))
        last = float(value(redis_client, keys.batch_field_key(batch, "last_activity")))
        assert NOW.timestamp() - 120 < started <= last <= NOW.timestamp()
        detections_key = keys.batch_field_key(batch, "detections")
        encodings.append(redis_client.type(detections_key))
        for key in scan(redis_client, f"batch:{batch}:*"):
            limit = 300 if key.endswith(":closing") else 3600
            assert 0 < redis_client.ttl(key) <= limit, key
    assert sorted(encodings) == [b"list", b"list", b"string"]
    [closing] = scan(redis_client, "batch:*:closing")
    assert redis_client.get(closing) == b"1"
    [legacy] = [c for c in currents if decode(redis_client.get(c)).kind == "json-string"]
    legacy_list = decode(redis_client.get(keys.batch_field_key(value(redis_client, legacy), "detections")))
    assert legacy_list.kind == "json" and all(isinstance(i, str) for i in legacy_list.value)


def test_dedupe_and_batch_events_are_json_quoted(world: dict[str, int], redis_client: redis.Redis):
    dedupe = scan(redis_client, "dedupe:*")
    assert len(dedupe) == 16
    for key in dedupe:
        stored = decode(redis_client.get(key))
        assert stored.kind == "json-string" and FILE_PATH.match(stored.value)
    ttls = sorted(redis_client.ttl(key) for key in dedupe)
    assert ttls[0] == -1 and ttls[1] > 0 and ttls[-1] <= 300
    events = scan(redis_client, "batch_event:*")
    assert len(events) == 5
    assert all(
        decode(redis_client.get(k)).kind == "json-string" and 0 < redis_client.ttl(k) <= 3600 for k in events
    )


def test_idempotency_embeddings_and_telemetry(world: dict[str, int], redis_client: redis.Redis):
    for key in scan(redis_client, "idempotency:*"):
        record = value(redis_client, key)
        assert record["status_code"] in (200, 202) and re.fullmatch(r"[0-9a-f]{64}", record["fingerprint"])
        assert 3600 < redis_client.ttl(key) <= 86_400
    days = [f"{NOW - timedelta(days=d):%Y-%m-%d}" for d in (1, 0)]
    assert scan(redis_client, "entity_embeddings:*") == [keys.embeddings_key(day) for day in days]
    for day in days:
        stored = decode(redis_client.get(keys.embeddings_key(day)))
        entities = [*stored.value["persons"], *stored.value["vehicles"]]
        assert stored.kind == "double-json" and 2 <= len(entities) <= 8
        assert all(len(e["embedding"]) == 768 and e["entity_type"] in ("person", "vehicle") for e in entities)
        assert 0 < redis_client.ttl(keys.embeddings_key(day)) <= 86_400
    for stage in ("watch", "detect", "batch", "analyze"):
        samples = [float(x) for x in redis_client.lrange(keys.telemetry_key(stage), 0, -1)]
        assert (
            len(samples) == 200
            and min(samples) > 0
            and 0 < redis_client.ttl(keys.telemetry_key(stage)) <= 3600
        )


def test_caches_rate_limits_and_hyperloglogs(world: dict[str, int], redis_client: redis.Redis):
    for key in ("hsi:cache:cameras:list", "hsi:cache:system:status"):
        assert isinstance(value(redis_client, key), list | dict) and 0 < redis_client.ttl(key) <= 3600
    [stats] = [k for k in scan(redis_client, "cache:stats:events:*") if k.endswith(":all")]
    assert float(value(redis_client, keys.cache_fresh_until_key(stats))) > NOW.timestamp()
    assert 0 < redis_client.ttl(keys.cache_refreshing_key(stats)) <= 60
    sizes = []
    for key in scan(redis_client, "rate_limit:*"):
        window = scored(redis_client, key)
        assert all(float(member) == score for member, score in window)
        assert all(NOW.timestamp() - 60 <= score <= NOW.timestamp() for _, score in window)
        assert 0 < redis_client.ttl(key) <= 70
        sizes.append(len(window))
    assert max(sizes) >= 70 > min(sizes)
    for key in scan(redis_client, "hll:*"):
        assert redis_client.pfcount(key) > 0 and 0 < redis_client.ttl(key) <= 86_400


def read(client: redis.Redis, key: str) -> Any:
    """A key's whole value; for a stream only its length (entries carry delivery times)."""
    kind = client.type(key)
    if kind == b"string":
        return client.get(key)
    if kind == b"list":
        return client.lrange(key, 0, -1)
    return scored(client, key) if kind == b"zset" else client.xlen(key)


def snapshot(client: redis.Redis) -> dict[str, Any]:
    return {key: read(client, key) for key in scan(client, "*")}


def test_second_run_rewrites_the_same_world(world: dict[str, int], redis_client: redis.Redis):
    before = snapshot(redis_client)
    redis_client.rpush("detection_queue", b"stray item")
    redis_client.set("unrelated:key", b"kept")
    again = build_demo_world(redis_client, now=NOW)
    assert again == world
    after = snapshot(redis_client)
    assert after.pop("unrelated:key") == b"kept"
    assert after == before
    assert redis_client.dbsize() == sum(world.values()) + 1


def test_another_seed_gives_another_world(world: dict[str, int], redis_client: redis.Redis):
    first = set(scan(redis_client, "dedupe:*"))
    build_demo_world(redis_client, now=NOW, seed=8)
    assert set(scan(redis_client, "dedupe:*")) - first


def test_holds_hsi_keys_ignores_the_consoles_own_keys(redis_client: redis.Redis):
    assert not holds_hsi_keys(redis_client)
    redis_client.set(keys.console_key("cache:x"), b"1")
    assert not holds_hsi_keys(redis_client)
    redis_client.rpush("detection_queue", b"{}")
    assert holds_hsi_keys(redis_client)


# --- manage.py load_demo_world ---


@pytest.fixture
def dev_mode(settings: Any) -> None:
    settings.DEBUG = True


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("load_demo_world", *args, stdout=out)
    return out.getvalue()


@pytest.mark.usefixtures("dev_mode")
def test_command_loads_and_prints_the_summary(
    redis_server: RedisServer, redis_client: redis.Redis, point_at: Callable[..., RedisConfig]
):
    point_at(redis_server)
    output = run_command()
    match = re.match(r"Loaded the HSI demo world into (\S+): (\d+) keys \((.+)\)\.$", output.strip())
    assert match, output
    assert match[1] == redis_server.url and int(match[2]) == redis_client.dbsize() > 100
    assert "dlq 3" in match[3] and "overflow_dlq 2" in match[3]


@pytest.mark.usefixtures("dev_mode")
def test_command_masks_the_password(
    start_server: Callable[..., RedisServer], point_at: Callable[..., RedisConfig]
):
    server = start_server(password="pw-" + "s3cr3t" * 3)
    point_at(url=f"redis://:{server.password}@127.0.0.1:{server.port}/0")
    output = run_command()
    assert output.startswith(f"Loaded the HSI demo world into redis://:***@127.0.0.1:{server.port}/0: ")
    assert str(server.password) not in output
    with server.client() as direct:
        assert direct.exists("dlq:detection_queue")


@pytest.mark.usefixtures("dev_mode")
def test_command_explains_an_unreachable_redis(point_at: Callable[..., RedisConfig]):
    point_at(url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(CommandError, match=r"^Connection refused by 127\.0\.0\.1:\d+: is Redis running"):
        run_command()


def test_if_empty_loads_once_and_then_leaves_data_alone(
    redis_server: RedisServer, redis_client: redis.Redis, point_at: Callable[..., RedisConfig]
):
    point_at(redis_server)
    redis_client.set(keys.console_key("cache:session"), b"console only")
    assert run_command("--if-empty").startswith("Loaded the HSI demo world")
    redis_client.delete("analysis_queue")
    output = run_command("--if-empty", "--seed", "9")
    assert output.strip() == f"{redis_server.url} already holds HSI keys: the demo world was not loaded."
    assert not redis_client.exists("analysis_queue")
    assert redis_client.get(keys.console_key("cache:session")) == b"console only"


def test_without_debug_it_replaces_hsi_keys_only_when_forced(
    redis_server: RedisServer, redis_client: redis.Redis, point_at: Callable[..., RedisConfig], settings: Any
):
    settings.DEBUG = False
    point_at(redis_server)
    assert run_command().startswith("Loaded the HSI demo world")  # an empty Redis: nothing to lose
    redis_client.delete("dlq:detection_queue")
    with pytest.raises(CommandError, match=r"already holds HSI keys .+ pass --force to do it\.$"):
        run_command()
    assert not redis_client.exists("dlq:detection_queue")
    assert run_command("--force").startswith("Loaded the HSI demo world")
    assert redis_client.llen("dlq:detection_queue") == 62
