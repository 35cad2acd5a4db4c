"""The Keys section on a real private Redis: each family in both encodings, bad values, bounds, actions."""

from __future__ import annotations

import json
import re
import time
from io import StringIO
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from console.models import AuditEntry
from queues import keys, keyspace
from queues.keyspace import embeddings as keyspace_embeddings
from tests.conftest import logged_in
from tests.pages import KEY_PAGES

pytestmark = pytest.mark.django_db

SHA_A, SHA_B = "a" * 64, "b" * 64


@pytest.fixture
def operator_client(operator: User) -> Client:
    return logged_in(operator)


def page(client: Client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def vector(seed: int) -> list[float]:
    return [round(seed + i / 1000, 4) for i in range(768)]


def entity(kind: str, n: int) -> dict[str, Any]:
    return {
        "entity_type": kind,
        "embedding": vector(n),
        "camera_id": "driveway",
        "timestamp": "2026-02-12T07:15:04.100000+00:00",
        "detection_id": str(48000 + n),
        "attributes": {"clothing": "dark hoodie"},
    }


# --- Open batches ---------------------------------------------------------------------------------


def seed_batches(r: redis.Redis) -> float:
    now = time.time()
    # Newer layout: raw values, detections as a Redis list.
    r.set("batch:front:current", "b-new", ex=3600)
    r.set("batch:b-new:camera_id", "front")
    r.set("batch:b-new:started_at", str(now - 20))
    r.set("batch:b-new:last_activity", str(now - 5))
    r.set("batch:b-new:pipeline_start_time", "2026-02-12T08:00:00+00:00")
    r.rpush("batch:b-new:detections", "1", "2", "3")
    # Older layout: JSON-quoted values, detections as a JSON string list, closing.
    r.set("batch:back:current", json.dumps("b-old"), ex=3600)
    r.set("batch:b-old:camera_id", json.dumps("back"))
    r.set("batch:b-old:started_at", json.dumps(str(now - 100)))
    r.set("batch:b-old:last_activity", json.dumps(str(now - 2)))
    r.set("batch:b-old:detections", json.dumps(["7", "8"]))
    r.set("batch:b-old:closing", "1", ex=300)
    # Bad values.
    r.set("batch:porch:current", "b-bad")
    r.set("batch:b-bad:started_at", "yesterday")
    r.hset("batch:b-bad:detections", "x", "y")
    r.set("batch:garage:current", json.dumps({"not": "an id"}))
    r.rpush("batch:weird:current", "a list, not a string")
    return now


def test_batches_both_encodings_and_bad_values(redis_client: redis.Redis) -> None:
    seed_batches(redis_client)
    rows, found = keyspace.open_batches(redis_client)
    by_camera = {b.camera: b for b in rows}
    assert found.complete and len(rows) == 5
    new, old = by_camera["front"], by_camera["back"]
    assert (new.batch_id, new.detections, new.encoding, new.closing) == ("b-new", 3, "Redis list", False)
    assert new.close_text.startswith("in ") and "30 s idle" in new.close_text
    assert (old.batch_id, old.detections, old.encoding, old.closing) == ("b-old", 2, "JSON string list", True)
    assert old.close_text.startswith("due now (90 s window")
    assert not new.problem and not old.problem
    assert "started_at: not a number" in by_camera["porch"].problem
    assert "unexpected Redis type hash" in by_camera["porch"].problem
    assert "not a plain string" in by_camera["garage"].problem
    assert "not a string key" in by_camera["weird"].problem


def test_batch_at_500_detections_is_due(redis_client: redis.Redis) -> None:
    redis_client.set("batch:full:current", "b-full")
    redis_client.set("batch:b-full:started_at", str(time.time()))
    redis_client.rpush("batch:b-full:detections", *[str(i) for i in range(500)])
    (row,), _ = keyspace.open_batches(redis_client)
    assert row.close_text.startswith("due now (500 detections reached")


def test_batches_page(viewer_client: Client, redis_client: redis.Redis) -> None:
    seed_batches(redis_client)
    html = page(viewer_client, "/keys/batches/")
    assert "Redis list" in html and "JSON string list" in html
    assert 'data-camera="porch"' in html and "started_at: not a number" in html


# --- Dedupe --------------------------------------------------------------------------------------


def seed_dedupe(r: redis.Redis) -> None:
    r.set(f"dedupe:{SHA_A}", json.dumps("/export/foscam/front/a.jpg"), ex=300)  # JSON-quoted
    r.set(f"dedupe:{SHA_B}", "/export/foscam/back/b.jpg")  # raw, no TTL
    r.set("dedupe:not-a-hash", b"\xff\xfe{")
    r.sadd("dedupe:" + "c" * 64, "a set")


def test_dedupe_rows_lookup_and_bad_values(redis_client: redis.Redis) -> None:
    seed_dedupe(redis_client)
    rows, _ = keyspace.dedupe_entries(redis_client)
    by_sha = {r.sha256: r for r in rows}
    assert by_sha[SHA_A].path == "/export/foscam/front/a.jpg" and by_sha[SHA_A].ttl.endswith(" s")
    assert by_sha[SHA_B].path == "/export/foscam/back/b.jpg" and by_sha[SHA_B].ttl == "no TTL"
    assert by_sha["not-a-hash"].problem.startswith("not a plain string")
    assert by_sha["c" * 64].problem == "not a string key"
    assert [r.sha256 for r in keyspace.dedupe_entries(redis_client, SHA_B.upper())[0]] == [SHA_B]
    found, _ = keyspace.dedupe_entries(redis_client, "/export/foscam/front/a.jpg")
    assert [r.sha256 for r in found] == [SHA_A]


def test_dedupe_page_counts_and_lookup(viewer_client: Client, redis_client: redis.Redis) -> None:
    seed_dedupe(redis_client)
    assert "4 entries." in page(viewer_client, "/keys/dedupe/")
    html = page(viewer_client, "/keys/dedupe/?q=/export/foscam/back/b.jpg")
    assert "1 entry matching" in html and SHA_B in html and SHA_A not in html
    assert "Clear…" not in html  # viewers get no action buttons


def test_operator_clears_one_dedupe_entry(operator_client: Client, redis_client: redis.Redis) -> None:
    seed_dedupe(redis_client)
    url = f"/keys/dedupe/clear/?sha256={SHA_A}"
    html = page(operator_client, url)
    assert "/export/foscam/front/a.jpg" in html and redis_client.exists(f"dedupe:{SHA_A}")
    response = operator_client.post("/keys/dedupe/clear/", {"sha256": SHA_A, "nonce": "n1"})
    assert response.status_code == 302 and not redis_client.exists(f"dedupe:{SHA_A}")
    entry = AuditEntry.objects.get(action="clear_dedupe")
    assert (entry.key, entry.count, entry.username) == (f"dedupe:{SHA_A}", 1, "otto")
    assert entry.detail["file_path"] == "/export/foscam/front/a.jpg"
    assert redis_client.exists(f"dedupe:{SHA_B}")


def test_dedupe_clear_refusals(operator_client: Client, redis_client: redis.Redis) -> None:
    seed_dedupe(redis_client)
    assert "64 hexadecimal" in page(operator_client, "/keys/dedupe/clear/?sha256=xyz", 400)
    assert "no dedupe entry" in page(operator_client, "/keys/dedupe/clear/?sha256=" + "d" * 64, 404)
    assert not AuditEntry.objects.exists()


def test_viewer_may_not_clear_dedupe(viewer_client: Client, redis_client: redis.Redis) -> None:
    seed_dedupe(redis_client)
    assert viewer_client.get(f"/keys/dedupe/clear/?sha256={SHA_A}").status_code == 403
    assert viewer_client.post("/keys/dedupe/clear/", {"sha256": SHA_A}).status_code == 403
    assert redis_client.exists(f"dedupe:{SHA_A}") and not AuditEntry.objects.exists()


# --- Cache ----------------------------------------------------------------------------------------


def seed_cache(r: redis.Redis) -> None:
    r.set("hsi:cache:cameras:list", json.dumps([{"id": "front"}]), ex=300)
    r.set("hsi:cache:cameras:list:fresh_until", str(time.time() + 120), ex=300)
    r.set("hsi:cache:cameras:list:refreshing", "1", ex=60)
    r.set("cache:stats:events:none:none:all", json.dumps(json.dumps({"total": 3})), ex=600)  # double
    r.hset("cache:hsi:cache:odd", "a", "b")
    r.set("cache:broken:fresh_until", "soon")  # a side key whose main key is gone: its own row


def test_cache_rows(redis_client: redis.Redis) -> None:
    seed_cache(redis_client)
    rows, _ = keyspace.cache_entries(redis_client)
    by_key = {r.key: r for r in rows}
    assert "hsi:cache:cameras:list:fresh_until" not in by_key
    listed = by_key["hsi:cache:cameras:list"]
    assert listed.fresh_until.startswith("fresh for") and listed.refreshing.startswith("refresh lock held")
    assert listed.size and listed.size > 0 and listed.ttl.endswith(" s")
    assert by_key["cache:hsi:cache:odd"].type == "hash"
    assert "cache:broken:fresh_until" in by_key


def test_cache_page(viewer_client: Client, redis_client: redis.Redis) -> None:
    seed_cache(redis_client)
    html = page(viewer_client, "/keys/cache/")
    assert "hsi:cache:cameras:list" in html and "cache:stats:events:none:none:all" in html
    assert "Invalidate…" not in html


def test_operator_invalidates_one_cache_key(operator_client: Client, redis_client: redis.Redis) -> None:
    seed_cache(redis_client)
    assert "side keys" in page(operator_client, "/keys/cache/invalidate/?key=hsi:cache:cameras:list")
    assert redis_client.exists("hsi:cache:cameras:list")
    response = operator_client.post(
        "/keys/cache/invalidate/", {"key": "hsi:cache:cameras:list", "nonce": "c1"}
    )
    assert response.status_code == 302
    assert not redis_client.exists(
        "hsi:cache:cameras:list", "hsi:cache:cameras:list:fresh_until", "hsi:cache:cameras:list:refreshing"
    )
    entry = AuditEntry.objects.get(action="invalidate_cache")
    assert (entry.key, entry.count) == ("hsi:cache:cameras:list", 3)
    assert redis_client.exists("cache:stats:events:none:none:all")


def test_prefix_invalidation_is_bounded(
    operator_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "CACHE_INVALIDATE_LIMIT": 10}
    for n in range(30):
        redis_client.set(f"hsi:cache:cameras:{n}", "{}", ex=300)
    redis_client.set("hsi:cache:system:status", "{}")
    html = page(operator_client, "/keys/cache/invalidate/?prefix=hsi:cache:cameras:")
    assert "Invalidate 10 (at most 10 per request; more remain) cache keys" in html
    assert len(redis_client.keys("hsi:cache:cameras:*")) == 30  # nothing changed on GET
    operator_client.post("/keys/cache/invalidate/", {"prefix": "hsi:cache:cameras:", "nonce": "p1"})
    assert len(redis_client.keys("hsi:cache:cameras:*")) == 20
    entry = AuditEntry.objects.get(action="invalidate_cache_prefix")
    assert (entry.key, entry.count, entry.detail["complete"]) == ("hsi:cache:cameras:", 10, False)
    # The same form submitted again does nothing twice.
    operator_client.post("/keys/cache/invalidate/", {"prefix": "hsi:cache:cameras:", "nonce": "p1"})
    assert len(redis_client.keys("hsi:cache:cameras:*")) == 20
    assert redis_client.exists("hsi:cache:system:status")


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("prefix=job:", "starts with hsi:cache: or cache:"),
        ("prefix=cache:", "longer than"),
        ("key=hsi:cache:nope&prefix=hsi:cache:", "either one cache key or one prefix"),
        ("", "either one cache key or one prefix"),
        ("key=hsi:cache:gone", "hsi:cache:gone does not exist"),
    ],
)
def test_cache_invalidation_refusals(
    operator_client: Client, redis_client: redis.Redis, query: str, sentence: str
) -> None:
    redis_client.set("job:1", "{}")
    status = 404 if "does not exist" in sentence else 400
    assert sentence in page(operator_client, f"/keys/cache/invalidate/?{query}", status)
    assert redis_client.exists("job:1") and not AuditEntry.objects.exists()


def test_viewer_may_not_invalidate_cache(viewer_client: Client, redis_client: redis.Redis) -> None:
    seed_cache(redis_client)
    assert viewer_client.get("/keys/cache/invalidate/?key=hsi:cache:cameras:list").status_code == 403
    response = viewer_client.post("/keys/cache/invalidate/", {"prefix": "hsi:cache:cameras:"})
    assert response.status_code == 403
    assert redis_client.exists("hsi:cache:cameras:list") and not AuditEntry.objects.exists()


# --- Entity embeddings ------------------------------------------------------------------------------


def seed_embeddings(r: redis.Redis) -> None:
    value = {"persons": [entity("person", 1), entity("person", 2)], "vehicles": [entity("vehicle", 3)]}
    r.set("entity_embeddings:2026-02-12", json.dumps(value), ex=86400)  # raw JSON
    r.set("entity_embeddings:2026-02-11", json.dumps(json.dumps(value)), ex=3600)  # double-encoded
    r.set("entity_embeddings:2026-02-10", "not json {")
    r.set("entity_embeddings:2026-02-09", json.dumps({"persons": "many", "vehicles": [{"embedding": "x"}]}))
    r.rpush("entity_embeddings:2026-02-08", "a list")


def test_embedding_days_both_encodings_and_bad_values(redis_client: redis.Redis) -> None:
    seed_embeddings(redis_client)
    rows, _ = keyspace.embedding_days(redis_client)
    by_day = {d.day: d for d in rows}
    assert [d.day for d in rows] == sorted(by_day, reverse=True)
    for day in ("2026-02-12", "2026-02-11"):
        assert (by_day[day].persons, by_day[day].vehicles, by_day[day].problem) == (2, 1, "")
    assert by_day["2026-02-11"].encoding == "double-json → json"
    assert by_day["2026-02-10"].problem.startswith("not a JSON object (text")
    assert by_day["2026-02-09"].problem == "persons is not a list" and by_day["2026-02-09"].vehicles == 1
    assert by_day["2026-02-08"].problem == "not a string key"


def test_the_list_does_not_read_a_large_day_but_its_page_does(
    viewer_client: Client, redis_client: redis.Redis
) -> None:
    persons = [entity("person", n) for n in range(60)]  # 768-dim vectors: ~400 KiB as JSON
    redis_client.set("entity_embeddings:2026-02-13", json.dumps({"persons": persons, "vehicles": []}))
    size = redis_client.strlen("entity_embeddings:2026-02-13")
    assert size > keyspace_embeddings.LIST_MAX_BYTES
    rows, _ = keyspace.embedding_days(redis_client)
    (row,) = rows
    assert (row.persons, row.vehicles, row.problem) == (None, None, "")
    assert row.note == f"{size:,} bytes: too large to count here; open the day"
    redis_client.config_set("slowlog-max-len", 10_000)
    redis_client.config_set("slowlog-log-slower-than", 0)
    redis_client.slowlog_reset()
    html = page(viewer_client, "/keys/embeddings/")
    logged = [entry["command"] for entry in redis_client.slowlog_get(10_000)]
    redis_client.config_set("slowlog-log-slower-than", 10000)
    redis_client.config_set("slowlog-max-len", 128)
    on_day = [c.split(b" ")[0].upper() for c in logged if b"entity_embeddings:2026-02-13" in c]
    assert b"STRLEN" in on_day and b"GET" not in on_day  # the list never GETs the large value
    assert "too large to count here; open the day" in html
    day = page(viewer_client, "/keys/embeddings/2026-02-13/")
    assert "60 persons, 0 vehicles" in day


def test_embedding_day_page_never_shows_whole_vectors(
    viewer_client: Client, redis_client: redis.Redis
) -> None:
    seed_embeddings(redis_client)
    assert "2026-02-11" in page(viewer_client, "/keys/embeddings/")
    html = page(viewer_client, "/keys/embeddings/2026-02-11/")
    assert "768 dimensions: [1.0, 1.001, 1.002, 1.003, …]" in html
    assert "1.004" not in html and "2 persons, 1 vehicles" in html
    bad = page(viewer_client, "/keys/embeddings/2026-02-09/")
    assert "no embedding list" in bad and "persons is not a list" in bad
    assert "not a day" in page(viewer_client, "/keys/embeddings/yesterday/", 400)
    assert "no embeddings for 2020-01-01" in page(viewer_client, "/keys/embeddings/2020-01-01/", 404)


# --- Rate limits ----------------------------------------------------------------------------------


def seed_rate_limits(r: redis.Redis) -> None:
    now = time.time()
    r.zadd("rate_limit:default:10.0.0.1", {str(now - i / 10): now - i / 10 for i in range(75)})
    r.expire("rate_limit:default:10.0.0.1", 70)
    recent = {str(now - i): now - i for i in range(5)}
    old = {str(now - 100 - i): now - 100 - i for i in range(50)}
    r.zadd("rate_limit:search:10.0.0.2", {**recent, **old})
    r.zadd("rate_limit:default:::1", {str(now): now})
    r.set("rate_limit:weird:1.2.3.4", "12")


def test_rate_windows(redis_client: redis.Redis) -> None:
    seed_rate_limits(redis_client)
    rows, _ = keyspace.rate_windows(redis_client)
    by_key = {r.key: r for r in rows}
    hammering = by_key["rate_limit:default:10.0.0.1"]
    assert (hammering.requests, hammering.limit, hammering.blocked) == (75, 70, True)
    search = by_key["rate_limit:search:10.0.0.2"]
    assert (search.requests, search.limit, search.blocked) == (5, 40, False)
    assert by_key["rate_limit:default:::1"].client == "::1"
    weird = by_key["rate_limit:weird:1.2.3.4"]
    assert weird.problem == "not a sorted set; unknown tier 'weird'" and not weird.blocked


def test_operator_resets_a_client(operator_client: Client, redis_client: redis.Redis) -> None:
    seed_rate_limits(redis_client)
    html = page(operator_client, "/keys/rate-limits/")
    assert "blocked" in html and "Reset…" in html
    key = "rate_limit:default:10.0.0.1"
    assert "a blocked client is let through" in page(operator_client, f"/keys/rate-limits/reset/?key={key}")
    assert redis_client.exists(key)
    assert operator_client.post("/keys/rate-limits/reset/", {"key": key, "nonce": "r1"}).status_code == 302
    assert not redis_client.exists(key) and redis_client.exists("rate_limit:search:10.0.0.2")
    entry = AuditEntry.objects.get(action="reset_rate_limit")
    assert (entry.key, entry.count, entry.username) == (key, 1, "otto")
    assert "does not exist" in page(operator_client, f"/keys/rate-limits/reset/?key={key}", 404)
    assert "Name a rate-limit" in page(operator_client, "/keys/rate-limits/reset/?key=dedupe:x", 400)


def test_viewer_may_not_reset_a_client(viewer_client: Client, redis_client: redis.Redis) -> None:
    seed_rate_limits(redis_client)
    key = "rate_limit:default:10.0.0.1"
    assert "Reset…" not in page(viewer_client, "/keys/rate-limits/")
    assert viewer_client.get(f"/keys/rate-limits/reset/?key={key}").status_code == 403
    assert viewer_client.post("/keys/rate-limits/reset/", {"key": key}).status_code == 403
    assert redis_client.zcard(key) == 75 and not AuditEntry.objects.exists()


# --- Idempotency, telemetry, HyperLogLogs -----------------------------------------------------------


def test_idempotency_keys(viewer_client: Client, redis_client: redis.Redis) -> None:
    body = {"status_code": 201, "content": "{}", "media_type": "application/json", "fingerprint": "f" * 64}
    redis_client.set("idempotency:abc-1", json.dumps(body), ex=86400)
    redis_client.set("batch_event:b-old", json.dumps("evt-1"), ex=3600)  # JSON-quoted
    redis_client.set("batch_event:b-new", "evt-2")  # raw
    redis_client.set("idempotency:bad", "nope")
    redis_client.set("idempotency:partial", json.dumps({"content": "x"}))
    rows, _ = keyspace.idempotency_keys(redis_client)
    by_key = {r.key: r for r in rows}
    assert by_key["idempotency:abc-1"].summary.startswith("status 201, application/json")
    assert by_key["batch_event:b-old"].summary == "event evt-1"
    assert by_key["batch_event:b-new"].summary == "event evt-2"
    assert by_key["idempotency:bad"].problem == "not a JSON object"
    assert by_key["idempotency:partial"].problem == "missing status_code, fingerprint"
    assert "missing status_code, fingerprint" in page(viewer_client, "/keys/idempotency/")


def test_telemetry_percentiles(viewer_client: Client, redis_client: redis.Redis) -> None:
    redis_client.rpush("telemetry:latency:detect", *[str(n) for n in range(100, 0, -1)])
    redis_client.rpush("telemetry:latency:watch", json.dumps("12.5"), "abc", "7")
    redis_client.set("telemetry:latency:batch", "5")
    rows, _ = keyspace.latencies(redis_client)
    by_stage = {r.stage: r for r in rows}
    detect = by_stage["detect"]
    assert (detect.samples, detect.p50, detect.p95, detect.p99) == (100, 50, 95, 99)
    assert (by_stage["watch"].samples, by_stage["watch"].p99) == (2, 12.5)
    assert by_stage["watch"].problem == "1 entry is not numbers (skipped)"
    assert by_stage["batch"].problem == "not a list"
    html = page(viewer_client, "/keys/telemetry/")
    assert 'data-stage="detect"' in html and "95.0" in html


def test_hyperloglogs(viewer_client: Client, redis_client: redis.Redis) -> None:
    redis_client.pfadd("hll:cameras:2026-02-12", "front", "back", "porch")
    redis_client.set("hll:bad", "not an hll")
    rows, _ = keyspace.hyperloglogs(redis_client)
    by_key = {r.key: r for r in rows}
    assert by_key["hll:cameras:2026-02-12"].count == 3
    assert (by_key["hll:bad"].count, by_key["hll:bad"].problem) == (None, "not a HyperLogLog")
    assert "not a HyperLogLog" in page(viewer_client, "/keys/hll/")


# --- Bounds and robustness --------------------------------------------------------------------------


def test_bounded_scan_says_it_was_cut(
    viewer_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "KEYS_PAGE_ROWS": 10, "SCAN_COUNT": 5}
    for n in range(60):
        redis_client.set(f"dedupe:{n:064x}", f"/export/{n}.jpg", ex=300)
    rows, found = keyspace.dedupe_entries(redis_client)
    assert len(rows) == 10 and not found.complete
    html = page(viewer_client, "/keys/dedupe/")
    assert 'data-testid="scan-note"' in html and "Partial: scanned" in html
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "KEYS_PAGE_ROWS": 500}
    assert 'data-testid="scan-note"' not in page(viewer_client, "/keys/dedupe/")


def test_a_cut_page_continues_where_its_scan_stopped(
    viewer_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    """Following "Continue scanning" from page to page shows every key once."""
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "KEYS_PAGE_ROWS": 40, "SCAN_COUNT": 20}
    every = {f"{n:064x}" for n in range(300)}
    redis_client.mset({f"dedupe:{sha}": "/export/a.jpg" for sha in every})
    redis_client.mset({f"other:{n}": "x" for n in range(300)})
    shown: list[str] = []
    path, pages = "/keys/dedupe/", 0
    while path:
        html = page(viewer_client, path)
        shown += re.findall(r"<code>([0-9a-f]{64})</code>", html)
        more = re.search(
            r'<a href="\?at=([0-9]+-[0-9]+(?:-[0-9a-f]{16})?)" data-testid="scan-continue">', html
        )
        path = f"/keys/dedupe/?at={more[1]}" if more else ""
        pages += 1
        assert pages < 40, "it ends"
    assert sorted(shown) == sorted(every) and pages > 3, "each key once, over several pages"
    assert "The rest of the keys" in html and "Back to the start" in html
    bad = page(viewer_client, "/keys/dedupe/?at=0-99999999999999999999")  # beyond Redis's cursors
    assert "Partial: scanned" in bad and "Back to the start" not in bad, "a bad at: from the start"


def test_scan_budget_stops_on_a_big_keyspace(redis_client: redis.Redis, settings: Any) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "SCAN_LIMIT": 100, "SCAN_COUNT": 50}
    redis_client.mset({f"other:{n}": "x" for n in range(2000)})
    redis_client.set("hll:one", "x")
    found = keyspace.scan(redis_client, ["hll:*"])
    assert not found.complete and found.examined == 100 and "scanned 100 keys" in found.note


PAGES = KEY_PAGES


def test_wrong_types_everywhere_never_500(operator_client: Client, redis_client: redis.Redis) -> None:
    r = redis_client
    r.hset("batch:x:current", "a", "b")
    r.set("batch:y:current", b"\x00\xff binary")
    r.set("batch:b:started_at", "1")
    r.set("batch:z:current", "b")
    r.rpush("dedupe:" + "e" * 64, "x")
    r.xadd("hsi:cache:stream", {"a": "b"})
    r.set("hsi:cache:x:fresh_until", "<script>")
    r.set("hsi:cache:x", "y")
    r.sadd("entity_embeddings:2026-01-01", "x")
    r.set("entity_embeddings:2026-01-02", b"Z:not-base64!!")
    r.set("entity_embeddings:2026-01-03", "[1, 2]")
    r.hset("rate_limit:default:1.1.1.1", "a", "b")
    r.set("rate_limit:x", "y")
    r.rpush("idempotency:l", "x")
    r.set("batch_event:x", json.dumps({"id": 1}))
    r.hset("telemetry:latency:analyze", "a", "b")
    r.rpush("hll:l", "x")
    for path in PAGES:
        page(operator_client, path)
    assert "not a number: &#x27;&lt;script&gt;&#x27;" in page(operator_client, "/keys/cache/")
    assert "not a plain string" in page(operator_client, "/keys/batches/")
    assert "not a JSON object" in page(operator_client, "/keys/embeddings/")
    page(operator_client, "/keys/embeddings/2026-01-03/")


def test_keys_index_counts_families(viewer_client: Client, redis_client: redis.Redis) -> None:
    redis_client.set("idempotency:a", "{}")
    redis_client.set("batch_event:b", "e")
    redis_client.pfadd("hll:x", "1")
    html = page(viewer_client, "/keys/")
    table = html.split('data-testid="key-sections"')[1]
    row = table.split(">Idempotency keys</a>")[1].split("</tr>")[0]
    assert ">2</td>" in row and 'href="/keys/hll/"' in html


def test_keys_pages_need_a_role(client: Client, roleless: User, redis_client: redis.Redis) -> None:
    assert client.get("/keys/").status_code == 302  # to the login page
    assert logged_in(roleless).get("/keys/dedupe/").status_code == 302


def test_demo_world_renders_every_page(
    operator_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    settings.DEBUG = True
    call_command("load_demo_world", stdout=StringIO())
    batches = page(operator_client, "/keys/batches/")
    assert "Redis list" in batches and "JSON string list" in batches and "closing" in batches
    for path in PAGES:
        html = page(operator_client, path)
        assert "colspan" not in html.split("<tbody>")[1].split("</tbody>")[0], path  # no "No …" row
    days, _ = keyspace.embedding_days(redis_client)
    assert days and all(d.encoding == "double-json → json" and not d.problem for d in days)
    page(operator_client, f"/keys/embeddings/{days[0].day}/")


def test_actions_need_csrf(operator: User, redis_client: redis.Redis) -> None:
    seed_rate_limits(redis_client)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    response = strict.post("/keys/rate-limits/reset/", {"key": "rate_limit:default:10.0.0.1"})
    assert response.status_code == 403
    assert redis_client.exists("rate_limit:default:10.0.0.1") and not AuditEntry.objects.exists()


def test_wildcard_part_of_key_names() -> None:
    assert keys.wildcard_part("batch:front:current", keys.BATCH_CURRENT_PATTERN) == "front"
    assert keys.wildcard_part("telemetry:latency:detect", keys.TELEMETRY_LATENCY_PATTERN) == "detect"
    assert keys.wildcard_part("batch:current", keys.BATCH_CURRENT_PATTERN) == ""
