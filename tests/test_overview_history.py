"""The overview's last-hour charts, drawn from ``console:live:history`` on a real private Redis."""

from __future__ import annotations

import json
import re
import time

import pytest
import redis
from django.test import Client

from queues.server_report import HISTORY_SERIES, SPARK_HEIGHT, SPARK_WIDTH, read_history, sparkline
from realtime.events import HISTORY_KEY, history_maxlen
from tests.test_overview_page import overview, r  # noqa: F401 - ``r`` is a fixture

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>&"q'


def add(client: redis.Redis, at_ms: int, used: int, depths: dict[str, int]) -> None:
    client.xadd(HISTORY_KEY, {"depths": json.dumps(depths), "used_memory": used}, id=f"{at_ms}-0")


def figures(html: str, testid: str) -> list[str]:
    return re.findall(rf'<figure class="console-spark" data-testid="{testid}".*?</figure>', html, re.S)


def point_count(figure: str) -> int:
    points = re.search(r'<polyline class="console-spark-line" points="([^"]*)"', figure)
    assert points is not None
    return len(points.group(1).split())


def test_charts_from_history(viewer_client: Client, r: redis.Redis) -> None:  # noqa: F811
    now = int(time.time() * 1000)
    add(r, now - 2 * 3600_000, 1, {"old": 999})  # older than an hour: not read
    for n in range(10):
        depths = {"detection_queue": n, "dlq:detection_queue": 10 - n, HOSTILE: 5}
        depths |= {f"q{i}": 1 for i in range(10)}  # more series than are charted
        add(r, now - (10 - n) * 60_000, 1_000_000 + n * 1000, depths)
    r.config_set("maxmemory", 10 * 1024 * 1024)
    html = overview(viewer_client)
    assert 'data-testid="history-empty"' not in html
    span = html.split('data-testid="history-span"')[1].split("</p>")[0]
    assert "10 samples" in span and "(9m)" in span
    [memory] = figures(html, "spark-memory")
    assert point_count(memory) == 10
    assert "min 976.6\xa0KB · max 985.4\xa0KB · latest 985.4\xa0KB" in memory
    assert '<line class="console-spark-limit"' in memory and "maxmemory 10.0\xa0MB" in memory
    queues = figures(html, "spark-queue")
    assert len(queues) == HISTORY_SERIES
    assert all(point_count(q) == 10 for q in queues)
    keys = [re.search(r'data-key="([^"]*)"', q).group(1) for q in queues]  # type: ignore[union-attr]
    # The deepest now first: detection_queue (9), the hostile key (5), then the 1s by name; not "old".
    assert keys[0] == "detection_queue" and keys[2:] == ["dlq:detection_queue"] + [f"q{i}" for i in range(5)]
    assert keys[1] == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;q"
    assert "<script>alert" not in html and "old" not in keys
    first = queues[0]
    assert "min 0 · max 9 · latest 9" in first
    assert f'viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}"' in first
    points = re.search(r'points="([^"]*)"', first).group(1).split()  # type: ignore[union-attr]
    assert points[0] == f"0,{SPARK_HEIGHT}" and points[-1] == f"{SPARK_WIDTH},0"
    assert "style=" not in "".join(figures(html, "spark-memory") + queues)


def test_empty_history_is_a_sentence(viewer_client: Client, r: redis.Redis) -> None:  # noqa: F811
    html = overview(viewer_client)
    empty = html.split('data-testid="history-empty"')[1].split("</p>")[0]
    assert "relay has not sampled yet" in empty and "manage.py relay_events" in empty
    assert "<polyline" not in html


def test_read_history_skips_junk_and_handles_one_sample(r: redis.Redis) -> None:  # noqa: F811
    now = int(time.time() * 1000)
    r.xadd(HISTORY_KEY, {"depths": "not json", "used_memory": "1"}, id=f"{now - 2000}-0")
    r.xadd(HISTORY_KEY, {"depths": "[1]", "used_memory": "1"}, id=f"{now - 1500}-0")
    add(r, now - 1000, 500, {"a": 3, "b": True})
    history = read_history(r, 0, now)
    assert history.samples == 1 and history.span_seconds == 0
    assert history.memory is not None and history.memory.points == f"0,{SPARK_HEIGHT // 2}"
    assert [q.label for q in history.queues] == ["a"]
    assert read_history(r, 0, now + 2 * 3600_000).samples == 0


def test_sparkline_scales_memory_from_zero_to_maxmemory() -> None:
    line = sparkline("m", [0, 1000], [50, 100], limit=200)
    assert line.points == f"0,{SPARK_HEIGHT * 3 // 4} {SPARK_WIDTH},{SPARK_HEIGHT // 2}"
    assert line.limit_y == 0.0 and (line.minimum, line.maximum, line.latest) == (50, 100, 100)


def test_history_covers_an_hour() -> None:
    assert history_maxlen(2.0) == 1800 and history_maxlen(0.5) == 7200 and history_maxlen(120) == 60


# --- The queue list's trend: change in length over the last 15 minutes -------------------------------


def test_queue_list_and_api_show_how_much_each_queue_changed(
    viewer_client: Client,
    r: redis.Redis,  # noqa: F811 - fixture
) -> None:
    now = int(time.time() * 1000)
    add(r, now - 20 * 60_000, 1, {"dlq:detection_queue": 1, "detection_queue": 1})  # before the window
    add(r, now - 10 * 60_000, 1, {"dlq:detection_queue": 100, "detection_queue": 50})  # the first in it
    add(r, now - 5 * 60_000, 1, {"dlq:detection_queue": 120, "detection_queue": 40})
    r.rpush("dlq:detection_queue", *[b"{}"] * 130)
    r.rpush("detection_queue", *[b"{}"] * 20)
    r.rpush("analysis_queue", b"{}")  # not in the samples: no trend
    html = viewer_client.get("/queues/").content.decode()
    cells = dict(re.findall(r'<tr data-key="([^"]+)".*?data-testid="change">(.*?)</td>', html, re.S))
    assert re.fullmatch(
        r'<span class="console-warn" title="since 10m ago \(the relay.s sample\)">\+30 in 10m</span>',
        cells["dlq:detection_queue"],
    )
    assert ">-30 in 10m</span>" in cells["detection_queue"] and "console-warn" not in cells["detection_queue"]
    assert ">—</span>" in cells["analysis_queue"]
    queues = {q["key"]: q["change"] for q in viewer_client.get("/api/queues/").json()["queues"]}
    assert (
        queues["dlq:detection_queue"]["entries"] == 30
        and 599 <= queues["dlq:detection_queue"]["seconds"] <= 610
    )
    assert queues["analysis_queue"] is None


def test_no_trend_without_a_sample_of_more_than_a_minute_ago(
    viewer_client: Client,
    r: redis.Redis,  # noqa: F811 - fixture
) -> None:
    r.rpush("dlq:detection_queue", b"{}")
    assert viewer_client.get("/api/queues/").json()["queues"][0]["change"] is None, "no relay: no trend"
    add(r, int(time.time() * 1000) - 20_000, 1, {"dlq:detection_queue": 0})  # 20 s ago: too recent
    assert viewer_client.get("/api/queues/").json()["queues"][0]["change"] is None
    r.xadd(HISTORY_KEY, {"depths": "not json"}, id="*")
    html = viewer_client.get("/queues/").content.decode()
    assert 'data-testid="change"><span class="console-muted"' in html
