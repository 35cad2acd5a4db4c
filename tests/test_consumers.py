"""Stream consumers: XINFO CONSUMERS per group on the stream's page, idle groups flagged on the list."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User

from queues import inventory
from tests.conftest import logged_in
from tests.test_queue_pages import url

pytestmark = pytest.mark.django_db

STREAM = "detections:stream"
IDLE_AFTER = 3  # seconds: CONSUMER_IDLE_SECONDS for these tests (a loaded CI may pause a second)


@pytest.fixture
def workers(redis_client: redis.Redis, settings: Any) -> redis.Redis:
    """Two groups on one stream: ``busy`` keeps reading, every consumer of ``stalled`` went quiet."""
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "CONSUMER_IDLE_SECONDS": IDLE_AFTER}
    for n in range(6):
        redis_client.xadd(STREAM, {"camera_id": "porch", "n": str(n)})
    for group in ("busy", "stalled"):
        redis_client.xgroup_create(STREAM, group, id="0")
    redis_client.xreadgroup("stalled", "old-worker", {STREAM: ">"}, count=4)
    redis_client.xreadgroup("busy", "worker-a", {STREAM: ">"}, count=2)
    time.sleep(IDLE_AFTER + 0.2)
    redis_client.xreadgroup("busy", "worker-a", {STREAM: ">"}, count=1)
    redis_client.xreadgroup("busy", "worker-b", {STREAM: ">"})
    return redis_client


def server_reports_inactive(client: redis.Redis) -> bool:
    version: Any = client.info("server")["redis_version"]
    return tuple(int(part) for part in str(version).split(".")[:2]) >= (7, 2)


def test_groups_carry_their_consumers_with_pending_and_idle(workers: redis.Redis) -> None:
    [info] = [q for q in inventory.list_queues(workers) if q.key == STREAM]
    assert info.length == 6
    groups = {g["name"]: g for g in info.groups}
    busy = {c["name"]: c for c in groups["busy"]["consumer_details"]}
    stalled = {c["name"]: c for c in groups["stalled"]["consumer_details"]}
    assert {name: c["pending"] for name, c in busy.items()} == {"worker-a": 3, "worker-b": 3}
    assert {name: c["pending"] for name, c in stalled.items()} == {"old-worker": 4}
    assert busy["worker-a"]["idle_seconds"] < IDLE_AFTER
    assert stalled["old-worker"]["idle_seconds"] > IDLE_AFTER
    assert (groups["busy"]["idle_consumers"], groups["stalled"]["idle_consumers"]) == (False, True)
    reported = server_reports_inactive(workers)
    assert (stalled["old-worker"]["inactive_seconds"] is not None) == reported


def test_queue_list_flags_the_group_whose_consumers_are_all_idle(workers: redis.Redis, viewer: User) -> None:
    html = logged_in(viewer).get(url("queue_list")).content.decode()
    groups = dict(
        re.findall(r"group <code>([\w-]+)</code>: ([^<]*(?:<span[^>]*>idle consumers</span>)?)</span>", html)
    )
    assert groups["busy"] == "6 pending, lag 0, 2 consumers"
    assert re.fullmatch(
        r'4 pending, lag 2, 1 consumer, <span [^>]*data-testid="idle-consumers"[^>]*>idle consumers</span>',
        groups["stalled"],
    )
    assert html.count('data-testid="idle-consumers"') == 1
    api = logged_in(viewer).get("/api/queues/").json()
    [stream] = [q for q in api["queues"] if q["key"] == STREAM]
    flags = {
        g["name"]: (g["idle_consumers"], [c["name"] for c in g["consumer_details"]]) for g in stream["groups"]
    }
    assert flags == {"busy": (False, ["worker-a", "worker-b"]), "stalled": (True, ["old-worker"])}
    assert f"when every consumer has been idle for more than {IDLE_AFTER}s" in html


def test_stream_page_shows_each_consumer_with_its_idle_time(workers: redis.Redis, viewer: User) -> None:
    html = logged_in(viewer).get(url("queue_items", STREAM)).content.decode()
    rows = re.findall(
        r'<tr data-consumer="([\w-]+/[\w-]+)"( class="queues-warning")?>.*?data-label="Pending">(\d+)</td>'
        r'.*?data-testid="idle">([^<]+)</td>',
        html,
        re.S,
    )
    shown = {who: (bool(warned), pending, idle) for who, warned, pending, idle in rows}
    assert shown.pop("stalled/old-worker")[:2] == (True, "4")
    assert {who: (warned, pending) for who, (warned, pending, _) in shown.items()} == {
        "busy/worker-a": (False, "3"),
        "busy/worker-b": (False, "3"),
    }
    assert all(int(idle.rstrip("s")) < IDLE_AFTER for _, _, idle in shown.values()), shown
    stalled_idle = re.search(r'data-consumer="stalled/old-worker".*?data-testid="idle">(\d+)s<', html, re.S)
    assert stalled_idle and int(stalled_idle.group(1)) >= IDLE_AFTER, "idle for at least the sleep"
    assert '<th scope="col" class="console-num">Idle</th>' in html
    assert "Group <code>stalled</code>: 4 pending" in html and 'data-testid="idle-consumers"' in html


def test_a_group_without_consumers_is_listed_but_not_flagged(
    redis_client: redis.Redis, viewer: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "CONSUMER_IDLE_SECONDS": 0}
    redis_client.xgroup_create(STREAM, "nobody-yet", id="$", mkstream=True)
    [group] = inventory.describe(redis_client, STREAM).groups
    assert group["consumer_details"] == [] and group["idle_consumers"] is False
    html = logged_in(viewer).get(url("queue_items", STREAM)).content.decode()
    assert "no consumers" in html and "idle consumers" not in html
