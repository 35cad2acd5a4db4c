"""The Redis overview page and ``GET /api/overview/`` against a real private Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.test import Client

from queues.server_report import CACHE_KEY, MB, eviction_warning, sizing
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def r(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """The private Redis, with the server settings these tests change put back afterwards."""
    yield redis_client
    redis_client.config_set("maxmemory", 0)
    redis_client.config_set("appendonly", "no")
    redis_client.config_set("maxmemory-policy", "noeviction")
    redis_client.config_set("slowlog-log-slower-than", 10000)
    redis_client.slowlog_reset()


def overview(client: Client) -> str:
    cache.delete(CACHE_KEY)  # not cache.clear(): the console's cache shares this Redis in tests
    response = client.get("/overview/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("policy", "warned"),
    [
        ("allkeys-lru", True),
        ("allkeys-lfu", True),
        ("allkeys-random", True),
        ("noeviction", False),
        ("volatile-lru", False),
        ("volatile-ttl", False),
    ],
)
def test_eviction_warning_with_a_dlq(
    viewer_client: Client, r: redis.Redis, policy: str, warned: bool
) -> None:
    r.rpush("dlq:detection_queue", json.dumps({"error": "x"}))
    r.config_set("maxmemory-policy", policy)
    html = overview(viewer_client)
    assert ('data-testid="eviction-warning"' in html) is warned
    assert f'<td data-testid="policy">{policy}</td>' in html


def test_no_eviction_warning_without_queues(viewer_client: Client, r: redis.Redis) -> None:
    r.set("dedupe:" + "a" * 64, "/x.jpg")
    r.config_set("maxmemory-policy", "allkeys-lru")
    assert 'data-testid="eviction-warning"' not in overview(viewer_client)
    assert eviction_warning("allkeys-lru", 0) == ""
    assert "2 work queues" in eviction_warning("allkeys-lru", 2)


def test_memory_by_family_is_an_estimate_and_largest_keys(viewer_client: Client, r: redis.Redis) -> None:
    big = {"persons": [{"embedding": [0.123456] * 768}] * 40, "vehicles": []}
    r.set("entity_embeddings:2026-02-12", json.dumps(big))
    r.rpush("detection_queue", "{}")
    r.set("dedupe:" + "b" * 64, "/y.jpg")
    html = overview(viewer_client)
    assert "Memory by key family (estimate)" in html and "Estimate: MEMORY USAGE of 3 keys" in html
    largest = html.split('data-testid="largest"')[1]
    assert largest.index("entity_embeddings:2026-02-12") < largest.index("detection_queue")


def test_memory_against_maxmemory_and_aof(viewer_client: Client, r: redis.Redis) -> None:
    r.config_set("maxmemory", 450 * 1024 * 1024)
    r.config_set("appendonly", "yes")
    html = overview(viewer_client)
    used = html.split('data-testid="memory-used"')[1].split("</td>")[0]
    assert "of 450.0\xa0MB" in used and "<meter" in used
    assert "AOF</th><td>on; last rewrite" in html
    r.config_set("appendonly", "no")
    assert "off — a restart loses queued jobs" in overview(viewer_client)


def test_memory_sample_is_bounded(viewer_client: Client, r: redis.Redis, settings: Any) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "MEMORY_SAMPLE": 50}
    r.mset({f"other:{n}": "x" for n in range(500)})
    html = overview(viewer_client)
    assert "Estimate: MEMORY USAGE of 50 keys from a SCAN (a sample of 500)" in html


def test_slowlog_is_escaped(viewer_client: Client, r: redis.Redis) -> None:
    r.config_set("slowlog-log-slower-than", 0)
    r.set("<script>alert(1)</script>", "x")
    r.config_set("slowlog-log-slower-than", 10000)
    html = overview(viewer_client)
    slowlog = html.split('data-testid="slowlog"')[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in slowlog
    assert "<script>alert(1)" not in html


def test_pubsub_listeners(viewer_client: Client, r: redis.Redis) -> None:
    listener = r.pubsub()
    listener.subscribe("security_events")
    listener.get_message(timeout=1)
    try:
        html = overview(viewer_client)
    finally:
        listener.close()
    row = html.split('data-channel="security_events"')[1].split("</tr>")[0]
    assert ">1</td>" in row or ">1 <" in row
    quiet = html.split('data-channel="system_status"')[1].split("</tr>")[0]
    assert "nobody listens" in quiet


def test_api_overview(viewer_client: Client, r: redis.Redis) -> None:
    r.rpush("dlq:detection_queue", "{}")
    r.config_set("maxmemory-policy", "allkeys-lru")
    cache.delete(CACHE_KEY)  # not cache.clear(): the console's cache shares this Redis in tests
    response = viewer_client.get("/api/overview/")
    assert response.status_code == 200
    data = response.json()
    assert data["server"]["maxmemory_policy"] == "allkeys-lru"
    assert "dead-letter queues" in data["eviction_warning"] and data["queue_keys"] == 1
    assert data["memory_estimate"] is True and data["memory_sample"] == 1
    assert {c["name"] for c in data["channels"]} >= {"security_events", "system_status", "performance_update"}
    assert isinstance(data["slowlog"], list) and "expired_keys" in data and "fragmentation_ratio" in data


def test_api_overview_refuses_strangers(client: Client, roleless: Any, r: redis.Redis) -> None:
    assert client.get("/api/overview/").status_code in (401, 403)
    response = logged_in(roleless).get("/api/overview/")
    assert response.status_code == 403 and "view console" in response.json()["detail"]


def test_overview_redis_down_is_a_sentence(viewer_client: Client, point_at: Any) -> None:
    point_at(url="redis://127.0.0.1:1/0")
    cache.delete(CACHE_KEY)  # not cache.clear(): the console's cache shares this Redis in tests
    response = viewer_client.get("/overview/")
    assert response.status_code == 503 and b"Connection refused" in response.content
    api = viewer_client.get("/api/overview/")
    assert api.status_code == 503 and api.json()["error"] == "redis_unavailable"


def test_nav_links(viewer_client: Client, r: redis.Redis) -> None:
    html = overview(viewer_client)
    assert 'href="/keys/"' in html and 'href="/overview/" aria-current="page"' in html


def test_sizing_sentences() -> None:
    above = sizing(340 * MB, 0, 6, True)
    assert above.tier == "Medium" and above.position == "above"
    expected = "Redis uses 340 MB, above the 100\u2013200 MB expected for 6 cameras (Medium)"
    assert above.sentence == expected + "; check the largest keys."
    assert above.maxmemory_note == "No maxmemory limit is set."
    within = sizing(80 * MB, 512 * MB, 3, True)
    assert within.tier == "Small" and within.position == "within" and within.maxmemory_note == ""
    assert within.sentence == "Redis uses 80 MB, within the 50\u2013100 MB expected for 3 cameras (Small)."
    partial = sizing(600 * MB, 256 * MB, 12, False)
    assert partial.tier == "Large" and partial.position == "above"
    assert "for at least 12 cameras" in partial.sentence
    assert (
        partial.maxmemory_note
        == "maxmemory (256 MB) is below the 512 MB the sizing table allows for large deployments."
    )
    assert sizing(150 * MB, 0, 8, True).tier == "Medium"
    nothing = sizing(2 * MB, 0, 0, True)
    assert nothing.position == "unknown" and "No cameras were seen" in nothing.sentence


def test_sizing_counts_cameras_from_batches_and_queues(viewer_client: Client, r: redis.Redis) -> None:
    for camera in ("porch", "garage_side"):
        r.set(f"batch:{camera}:current", f"batch-{camera}", ex=3600)
    for camera in ("porch", "yard", "drive", "gate", "shed"):
        r.rpush("detection_queue", json.dumps({"camera_id": camera, "file_path": f"/x/{camera}.jpg"}))
    r.rpush("analysis_queue", json.dumps({"batch_id": "b", "camera_id": "back_door"}), b"not json")
    html = overview(viewer_client)
    row = html.split('data-testid="sizing"')[1].split("</tr>")[0]
    assert 'data-position="below"' in row  # a test Redis holds a few MB
    assert "7 cameras" in row and ">Medium<" in row and "(5\u20138 cameras)" in row
    assert "below the 100\u2013200 MB expected for 7 cameras (Medium)" in row
    cache.delete(CACHE_KEY)
    data = viewer_client.get("/api/overview/").json()["sizing"]
    assert data["cameras"] == 7 and data["tier"] == "Medium" and data["estimated"] is True
    assert data["expected_low_bytes"] == 100 * MB and data["expected_high_bytes"] == 200 * MB
    assert data["used_bytes"] > 0 and data["position"] == "below"


def test_sizing_without_cameras_says_so(viewer_client: Client, r: redis.Redis) -> None:
    html = overview(viewer_client)
    row = html.split('data-testid="sizing"')[1].split("</tr>")[0]
    assert 'data-position="unknown"' in row and "No cameras were seen" in row
