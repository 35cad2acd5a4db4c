"""The HSI simulator against a real private Redis: message envelopes, queue movement, the command."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
import redis
from django.core.management import CommandError, call_command

from console.redis import RedisConfig
from queues.codec import decode
from queues.demo import build_demo_world
from queues.simulator import Published, Simulator, risk_level
from tests.redis_server import RedisServer, free_port

CHANNELS = ("security_events", "system_status", "performance_update")
SECURITY_TYPES = {"event", "detection.new", "camera_status", "alert_created", "service_status"}
EVENT_FIELDS = {
    "id",
    "event_id",
    "batch_id",
    "camera_id",
    "risk_score",
    "risk_level",
    "summary",
    "started_at",
}
CAMERA_IDS = {"front_door", "driveway", "garage_side", "backyard", "porch", "side_gate"}
START = datetime(2026, 2, 12, 8, 0, tzinfo=UTC).timestamp()


def expected_level(score: int) -> str:
    if score >= 85:
        return "critical"
    if score >= 60:
        return "high"
    return "medium" if score >= 30 else "low"


class FakeClock:
    """Advances ``tick`` seconds per reading: one reading per step."""

    def __init__(self, tick: float = 0.5) -> None:
        self.now, self.tick = START, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


@pytest.fixture
def subscriber(redis_client: redis.Redis) -> Iterator[redis.client.PubSub]:
    pubsub = redis_client.pubsub()
    pubsub.subscribe(*CHANNELS)
    confirmed = 0
    while confirmed < len(CHANNELS):
        message = pubsub.get_message(timeout=2)
        assert message is not None, "subscription was not confirmed"
        confirmed += message["type"] == "subscribe"
    yield pubsub
    pubsub.close()


def receive(pubsub: redis.client.PubSub, count: int, settle: float = 0.3) -> list[tuple[str, Any]]:
    """``count`` messages (waiting up to 5 s), plus any that arrive within ``settle`` s after them."""
    received: list[tuple[str, Any]] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=settle if len(received) >= count else 0.5)
        if message is None and len(received) >= count:
            break
        if message and message["type"] == "message":
            received.append((message["channel"].decode(), json.loads(message["data"])))
    return received


def run(simulator: Simulator, steps: int) -> list[Published]:
    return [item for _ in range(steps) for item in simulator.step()]


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (29, "low"),
        (30, "medium"),
        (59, "medium"),
        (60, "high"),
        (84, "high"),
        (85, "critical"),
        (100, "critical"),
    ],
)
def test_risk_level_bands(score: int, level: str):
    assert risk_level(score) == level


def test_subscribers_receive_exactly_what_step_returned(
    redis_client: redis.Redis, subscriber: redis.client.PubSub
):
    published = run(Simulator(redis_client, random.Random(3), clock=FakeClock()), 40)
    received = receive(subscriber, len(published))
    assert received == [(item.channel, item.message) for item in published]
    assert Counter(channel for channel, _ in received) == {
        "security_events": 40,
        "system_status": 4,
        "performance_update": 4,
    }


def check_security_message(message: dict[str, Any]) -> None:
    assert message["type"] in SECURITY_TYPES and isinstance(message["data"], dict)
    assert set(message) <= {"type", "data", "timestamp", "message"}
    if message["type"] != "event":
        return
    data = message["data"]
    assert set(data) == EVENT_FIELDS and data["id"] == data["event_id"]
    assert 0 <= data["risk_score"] <= 100 and data["risk_level"] == expected_level(data["risk_score"])
    assert re.fullmatch(r"batch-[0-9a-f]{8}", data["batch_id"]) and data["camera_id"] in CAMERA_IDS
    assert datetime.fromisoformat(data["started_at"]).tzinfo is None and data["summary"]


def check_wrapper(message: dict[str, Any], kind: str, instance: str) -> dict[str, Any]:
    assert set(message) == {"_origin_instance", "payload"} and message["_origin_instance"] == instance
    assert uuid.UUID(instance).version == 4
    payload = message["payload"]
    assert payload["type"] == kind and isinstance(payload["data"], dict)
    assert datetime.fromisoformat(payload["timestamp"]).tzinfo is not None
    return dict(payload["data"])


def test_messages_follow_the_hsi_envelopes(redis_client: redis.Redis, subscriber: redis.client.PubSub):
    simulator = Simulator(redis_client, random.Random(11), clock=FakeClock(tick=1))
    published = run(simulator, 200)
    received = receive(subscriber, len(published))
    assert len(received) == len(published) == 200 + 2 * 40
    for channel, message in received:
        if channel == "security_events":
            check_security_message(message)
        elif channel == "system_status":
            data = check_wrapper(message, "system_status", simulator.instance_id)
            assert {"gpu", "cameras", "queue", "health", "ai"} <= set(data)
            assert data["health"] in ("healthy", "degraded", "unhealthy")
        else:
            data = check_wrapper(message, "performance_update", simulator.instance_id)
            assert {"gpu", "host", "inference"} <= set(data)
    types = Counter(message["type"] for channel, message in received if channel == "security_events")
    assert set(types) == SECURITY_TYPES and types.most_common(1)[0][0] == "event"
    levels = {message["data"]["risk_level"] for _, message in received if message.get("type") == "event"}
    assert {"low", "medium", "high"} <= levels


def test_system_status_reports_the_real_queue_depths(redis_client: redis.Redis):
    simulator = Simulator(redis_client, random.Random(5), clock=FakeClock(tick=2.5))
    reports = 0
    for _ in range(60):
        for item in simulator.step():
            if item.channel == "system_status":
                queue = item.message["payload"]["data"]["queue"]
                assert queue == {
                    "pending": redis_client.llen("detection_queue"),
                    "processing": redis_client.llen("analysis_queue"),
                }
                reports += 1
    assert reports == 30


def test_queue_depths_stay_bounded_and_items_decode(redis_client: redis.Redis):
    simulator = Simulator(redis_client, random.Random(7), clock=FakeClock(), depth_band=(20, 60))
    depths = []
    for _ in range(400):
        simulator.step()
        depths.append((redis_client.llen("detection_queue"), redis_client.llen("analysis_queue")))
    detection = [d for d, _ in depths[40:]]
    assert min(detection) >= 18 and max(detection) <= 62
    assert max(a for _, a in depths) <= 11 and any(a > 0 for _, a in depths)
    items = [decode(raw) for raw in redis_client.lrange("detection_queue", 0, -1)]
    assert all(item.kind == "json" and item.value["camera_id"] in CAMERA_IDS for item in items)
    failures = [decode(raw) for raw in redis_client.lrange("dlq:detection_queue", 0, -1)]
    assert failures and all(isinstance(f.value["original_job"], dict) for f in failures)
    assert {f.kind for f in failures} == {"zstd"}


def test_deep_queues_drain_back_into_the_band(redis_client: redis.Redis):
    redis_client.rpush("detection_queue", *[b"{}"] * 90)
    redis_client.rpush("analysis_queue", *[b"{}"] * 10)
    simulator = Simulator(redis_client, random.Random(8), clock=FakeClock(), depth_band=(20, 60))
    depths = []
    for _ in range(120):
        simulator.step()
        depths.append((redis_client.llen("detection_queue"), redis_client.llen("analysis_queue")))
    assert max(d for d, _ in depths) <= 90 and depths[-1][0] <= 62
    assert max(a for _, a in depths) <= 10 and depths[-1][1] < 10


def test_workers_pop_from_the_head(redis_client: redis.Redis):
    build_demo_world(redis_client)
    oldest = set(redis_client.lrange("detection_queue", 0, -1))
    simulator = Simulator(redis_client, random.Random(2), clock=FakeClock())
    run(simulator, 80)
    remaining = redis_client.lrange("detection_queue", 0, -1)
    assert remaining and not oldest & set(remaining)


def test_dlq_growth_stops_at_the_cap(redis_client: redis.Redis):
    simulator = Simulator(redis_client, random.Random(4), clock=FakeClock(), dlq_cap=2)
    run(simulator, 300)
    assert redis_client.llen("dlq:detection_queue") == 2


# --- manage.py simulate_hsi ---


@pytest.fixture
def dev_mode(settings: Any) -> None:
    settings.DEBUG = True


def simulate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("simulate_hsi", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.usefixtures("dev_mode")
def test_command_publishes_count_events(
    redis_server: RedisServer,
    point_at: Callable[..., RedisConfig],
    redis_client: redis.Redis,
    subscriber: redis.client.PubSub,
):
    point_at(redis_server)
    out, err = simulate("--count", "5", "--rate", "50", "--seed", "1")
    received = receive(subscriber, 7)
    assert Counter(channel for channel, _ in received) == {
        "security_events": 5,
        "system_status": 1,
        "performance_update": 1,
    }
    assert out.splitlines() == [
        f"Simulating HSI on {redis_server.url} at 50 events/s (Ctrl-C stops it).",
        "Simulator stopped after 5 events.",
    ]
    assert err == "" and redis_client.llen("detection_queue") >= 5


def test_command_refuses_without_debug_unless_forced(
    redis_server: RedisServer, redis_client: redis.Redis, point_at: Callable[..., RedisConfig], settings: Any
):
    settings.DEBUG = False
    point_at(redis_server)
    with pytest.raises(CommandError, match=r"runs only with DJANGO_DEBUG=true, or with --force"):
        simulate("--count", "3", "--rate", "100")
    assert redis_client.dbsize() == 0
    out, _ = simulate("--count", "3", "--rate", "100", "--force")
    assert out.endswith("Simulator stopped after 3 events.\n") and redis_client.llen("detection_queue") >= 3


@pytest.mark.usefixtures("dev_mode")
def test_command_rejects_a_rate_of_zero():
    with pytest.raises(CommandError, match="--rate must be"):
        simulate("--rate", "0", "--count", "1")


@pytest.mark.usefixtures("dev_mode")
def test_command_keeps_trying_while_redis_is_down_and_stops_at_the_deadline(
    point_at: Callable[..., RedisConfig],
):
    point_at(url=f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    out, err = simulate("--duration", "1.5")
    assert 1.4 <= time.monotonic() - started < 4
    assert re.fullmatch(r"Connection refused by 127\.0\.0\.1:\d+: .+ Retrying every 1 s\.\n", err)
    assert out.endswith("Simulator stopped after 0 events.\n")


@pytest.mark.usefixtures("dev_mode")
def test_command_stops_with_a_sentence_when_redis_wants_a_password(
    start_server: Callable[..., RedisServer], point_at: Callable[..., RedisConfig]
):
    point_at(start_server(password="pw-" + "x" * 12))
    with pytest.raises(CommandError, match=r"^Redis requires a password but none was sent \(NOAUTH\)"):
        simulate("--count", "3")


@pytest.mark.usefixtures("dev_mode")
def test_command_survives_a_redis_restart(
    start_server: Callable[..., RedisServer], point_at: Callable[..., RedisConfig]
):
    server = start_server()
    point_at(server)
    result: dict[str, tuple[str, str]] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("io", simulate("--rate", "20", "--duration", "4"))
    )
    thread.start()
    time.sleep(0.8)
    server.kill()
    time.sleep(1.2)
    server.start()
    thread.join(timeout=15)
    out, err = result["io"]
    assert len(err.strip().splitlines()) == 1 and "Retrying every 1 s." in err
    assert "Redis is reachable again: simulation resumed." in out
    with server.client() as direct:
        assert direct.llen("detection_queue") > 0  # written after the restart: the old data died with it
