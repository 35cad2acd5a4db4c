"""Streams are trimmed, not refused: flag the groups HSI's XADD MAXLEN is about to, or did, trim past.

Each test drives a real stream the way HSI does (XADD MAXLEN, XREADGROUP, XACK) and reads the
verdict from the inventory, the queue list, the item browser and the API.
"""

from __future__ import annotations

import html
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from queues import inventory, streams
from tests.conftest import logged_in
from tests.test_streams import fill

STREAM, DLQ, GROUP = "detections:stream", "detections:stream:dlq", "detection-workers"
MAX = 10


@pytest.fixture
def max_size(settings) -> int:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": MAX}
    return MAX


def produce(client: redis.Redis, count: int, key: str = STREAM) -> None:
    """HSI's producer: XADD with MAXLEN (exact here, so the numbers are exact)."""
    for n in range(count):
        client.xadd(key, {"camera_id": "porch", "detection_id": str(n)}, maxlen=MAX, approximate=False)


def consume(client: redis.Redis, count: int, ack: bool = True) -> list[bytes]:
    """HSI's worker: XREADGROUP ``>`` then (unless it dies first) XACK."""
    reply: list = client.xreadgroup(GROUP, "worker-1", {STREAM: ">"}, count=count)  # type: ignore[assignment]
    ids = [entry_id for entry_id, _ in reply[0][1]] if reply else []
    if ack and ids:
        client.xack(STREAM, GROUP, *ids)
    return ids


def caught_up_at_maxlen(client: redis.Redis) -> None:
    """HSI's steady state: the stream at MAXLEN (older entries trimmed), its group processed them all."""
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    produce(client, 25)
    consume(client, 100)


def group_of(info: inventory.QueueInfo) -> dict:
    return next(g for g in info.groups if g["name"] == GROUP)


def test_a_stream_at_maxlen_with_its_group_caught_up_is_fine(
    redis_client: redis.Redis, max_size: int
) -> None:
    caught_up_at_maxlen(redis_client)
    info = inventory.describe(redis_client, STREAM)
    assert (info.length, info.level, info.alert) == (MAX, "ok", "")
    assert (
        group_of(info).items()
        >= {"behind": 0, "trimmed_unread": 0, "pending_trimmed": False, "level": "ok"}.items()
    )
    rows: Any = redis_client.xrange(STREAM, count=1)
    first = rows[0][0].decode()
    expected_age = time.time() - int(first.split("-")[0]) / 1000
    assert info.oldest_age_seconds is not None and abs(info.oldest_age_seconds - expected_age) < 5


def test_a_group_80_percent_behind_is_falling_behind(redis_client: redis.Redis, max_size: int) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, 7)
    consume(redis_client, 2, ack=False)
    assert inventory.describe(redis_client, STREAM).level == "ok"  # 2 pending + 5 unread: 70%
    produce(redis_client, 1)
    info = inventory.describe(redis_client, STREAM)
    assert (info.level, group_of(info)["behind"]) == ("filling", 8)
    assert info.alert.startswith(f"Falling behind: group {GROUP} has 8 entries it has not processed, 80%")


def test_stopped_consumers_at_maxlen_mean_the_next_xadd_trims_unread_entries(
    redis_client: redis.Redis, max_size: int
) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, MAX)  # every entry unread, and the stream at MAXLEN
    info = inventory.describe(redis_client, STREAM)
    assert (info.level, group_of(info)["trimmed_unread"]) == ("full", 0)
    assert info.alert.startswith(
        f"Trimming unprocessed entries (10 of MAXLEN 10): group {GROUP} is 10 behind"
    )
    assert inventory.alerts([info]) == [info]


def test_entries_trimmed_before_the_group_read_them_are_counted_as_lost(
    redis_client: redis.Redis, max_size: int
) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, 4)
    consume(redis_client, 4)  # the group has read (and acknowledged) 4 of 4
    produce(redis_client, 13)  # 13 more while the workers are down: 3 are trimmed unread
    info = inventory.describe(redis_client, STREAM)
    group = group_of(info)
    assert (group["lag"], info.length, group["trimmed_unread"], group["pending_trimmed"]) == (
        13,
        10,
        3,
        False,
    )
    assert info.level == "full"
    assert info.alert.startswith(
        f"Losing entries of group {GROUP}: HSI's XADD MAXLEN trimmed 3 entries it had not read."
    )


def test_a_pending_entry_trimmed_before_its_ack_is_lost_and_one_at_the_head_is_next(
    redis_client: redis.Redis, max_size: int
) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, MAX)
    consume(redis_client, 1, ack=False)  # a worker took the oldest entry and hangs
    consume(redis_client, MAX)  # the others are processed
    info = inventory.describe(redis_client, STREAM)
    assert (group_of(info)["behind"], group_of(info)["lag"]) == (1, 0)
    assert info.level == "full" and "HSI's next XADD trims an entry it has not processed" in info.alert
    produce(redis_client, 1)
    info = inventory.describe(redis_client, STREAM)
    assert group_of(info)["pending_trimmed"] is True and info.level == "full"
    assert "entries it had read but not acknowledged (its oldest pending entry is gone)" in info.alert


def test_a_stream_dlq_is_flagged_by_length_since_a_failure_at_maxlen_trims_the_oldest(
    redis_client: redis.Redis, viewer_client: Client, max_size: int
) -> None:
    produce(redis_client, 7, key=DLQ)
    assert inventory.describe(redis_client, DLQ).level == "ok"
    produce(redis_client, 1, key=DLQ)
    filling = inventory.describe(redis_client, DLQ)
    assert filling.level == "filling" and filling.alert.startswith("Filling up (8 of 10)")
    listing = viewer_client.get(reverse("admin:queue_list")).content.decode()
    assert "8 of MAXLEN 10 · filling up" in listing and "falling behind" not in listing
    produce(redis_client, 5, key=DLQ)
    full = inventory.describe(redis_client, DLQ)
    assert full.level == "full"
    assert full.alert.startswith("Full (10 of 10): every new failure makes HSI's XADD MAXLEN trim the oldest")


def test_queue_list_item_browser_and_api_show_the_trimming(
    redis_client: redis.Redis, viewer_client: Client, max_size: int
) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, 4)
    consume(redis_client, 2, ack=False)
    produce(redis_client, 11)  # 2 pending trimmed, and 13 unread of which 3 trimmed
    listing = viewer_client.get(reverse("admin:queue_list")).content.decode()
    row = listing[listing.index(f'<tr data-key="{STREAM}"') :]
    row = row[: row.index("</tr>")]
    assert 'class="queues-full"' in row and "10 of MAXLEN 10 · losing entries" in row
    assert 'data-testid="trimmed-unread"' in row and "3 trimmed unread" in row
    assert 'data-testid="pending-trimmed"' in row
    assert f"Losing entries of group {GROUP}" in listing[: listing.index('data-testid="queue-list"')]
    items = html.unescape(viewer_client.get(reverse("admin:queue_items", args=[STREAM])).content.decode())
    assert (
        f"Losing entries of group {GROUP}: HSI's XADD MAXLEN trimmed 3 entries it had not read and" in items
    )
    api = {q["key"]: q for q in viewer_client.get("/api/queues/").json()["queues"]}[STREAM]
    assert (api["level"], api["length"], api["max_size"]) == ("full", 10, 10)
    assert api["groups"][0]["trimmed_unread"] == 3 and api["groups"][0]["pending_trimmed"] is True
    assert api["oldest_age_seconds"] is not None and "first_id" not in api


def test_dlq_list_prints_the_stream_alert_on_stderr(redis_client: redis.Redis, max_size: int) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, 8)
    out, err = io.StringIO(), io.StringIO()
    call_command("dlq", "list", stdout=out, stderr=err)
    assert re.search(rf"^{STREAM} +queue +stream +8 +- +-$", out.getvalue(), re.MULTILINE)
    assert f"{STREAM}: Falling behind: group {GROUP} has 8 entries it has not processed" in err.getvalue()


def test_the_openapi_schema_describes_every_group_field_the_api_sends(
    redis_client: redis.Redis, viewer_client: Client, max_size: int, tmp_path: Path
) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, 3)
    consume(redis_client, 1, ack=False)
    schema = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--format", "openapi-json", "--file", str(schema))
    components = json.loads(schema.read_text())["components"]["schemas"]
    api = {q["key"]: q for q in viewer_client.get("/api/queues/").json()["queues"]}[STREAM]
    [group] = api["groups"]
    described = components["StreamGroup"]
    assert set(described["required"]) <= set(group) == set(described["properties"])
    assert set(group["consumer_details"][0]) == set(components["Consumer"]["properties"])
    assert (group["lag"], group["behind"], group["level"]) == (2, 3, "ok")


# --- Room for a retry: what HSI's trimming leaves of the entries its groups have not processed ---


def retried(client: redis.Redis, count: int) -> list[str]:
    return streams.retry(client, DLQ, fill(client, count)).statuses


def test_a_stream_at_maxlen_whose_group_keeps_up_takes_retries(
    redis_client: redis.Redis, max_size: int
) -> None:
    """HSI's stream sits at MAXLEN for good once full: refusing retries there would refuse them forever."""
    caught_up_at_maxlen(redis_client)
    assert inventory.stream_room(redis_client, STREAM, 100) == MAX
    assert retried(redis_client, 3) == ["ok"] * 3
    assert redis_client.xlen(STREAM) == MAX + 3, "the console trims nothing itself"
    produce(redis_client, 1)  # HSI's next XADD trims only entries the group processed
    assert group_of(inventory.describe(redis_client, STREAM))["trimmed_unread"] == 0
    assert [fields[b"camera_id"] for _, fields in consume_fields(redis_client)] == [b"porch"] * 4


def consume_fields(client: redis.Redis) -> list:
    reply: Any = client.xreadgroup(GROUP, "worker-1", {STREAM: ">"})
    return reply[0][1] if reply else []


def test_unread_entries_leave_room_for_maxlen_minus_lag(redis_client: redis.Redis, max_size: int) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, 10)
    consume(redis_client, 3)  # lag 7
    assert retried(redis_client, 5) == ["ok", "ok", "ok", "full", "full"]
    info = inventory.describe(redis_client, STREAM)
    assert redis_client.xlen(DLQ) == 2 and (group_of(info)["lag"], info.length) == (10, 13)
    assert info.level == "full", "the stream is over MAXLEN, so HSI's next XADD trims an unread entry"


def test_a_pending_entry_near_the_head_limits_the_room(redis_client: redis.Redis, max_size: int) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, MAX)
    consume(redis_client, 4)
    consume(redis_client, 1, ack=False)  # the 5th oldest is pending: 4 entries before it
    consume(redis_client, MAX)
    assert inventory.stream_room(redis_client, STREAM, MAX) == 4
    assert retried(redis_client, 6) == ["ok"] * 4 + ["full"] * 2
    redis_client.xgroup_create(STREAM, "stuck", id="0")
    redis_client.xreadgroup("stuck", "w", {STREAM: ">"}, count=1)  # holds the oldest entry
    assert inventory.stream_room(redis_client, STREAM, MAX) == 0
    assert retried(redis_client, 1) == ["full"]


def test_retry_all_keeps_going_past_the_lookahead_while_pending_entries_are_recent(
    redis_client: redis.Redis, settings
) -> None:
    """Under load some entries are always pending near the tail; the console's own retries pile
    up after them as unread entries. The room follows: MAXLEN - (those + lag), exactly."""
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 1500}
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    pipe = redis_client.pipeline(transaction=False)
    for _ in range(1510):  # HSI's steady state: at MAXLEN, and processed…
        pipe.xadd(STREAM, {"camera_id": "porch"}, maxlen=1500, approximate=False)
    pipe.execute()
    consume(redis_client, 1500)
    redis_client.xadd(STREAM, {"camera_id": "porch"}, maxlen=1500, approximate=False)
    consume(redis_client, 1, ack=False)  # …but the newest entry, in flight
    pipe = redis_client.pipeline(transaction=False)
    for n in range(2000):
        pipe.xadd(DLQ, {"camera_id": "porch", "n": str(n), "dlq_reason": "max_delivery_exceeded"})
    pipe.execute()
    outcome, _, _ = streams.sweep(redis_client, DLQ, streams.retry_entries, budget_seconds=60)
    assert (outcome.done, outcome.full) == (1499, True), "1,499 unread + the pending one = MAXLEN"
    assert group_of(inventory.describe(redis_client, STREAM))["lag"] == 1499


def test_a_pending_entry_far_back_is_placed_from_the_head(redis_client: redis.Redis, settings) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 1000}
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    pipe = redis_client.pipeline(transaction=False)
    for n in range(1000):
        pipe.xadd(STREAM, {"n": str(n)})
    pipe.execute()
    consume(redis_client, 100)
    consume(redis_client, 1, ack=False)  # stuck: 100 entries before it, 899 after
    consume(redis_client, 1000)
    assert inventory.stream_room(redis_client, STREAM, 600) == 100, "it survives 100 more entries"
    assert inventory.stream_room(redis_client, STREAM, 50) == 50


def test_without_groups_or_a_known_lag_every_entry_counts(redis_client: redis.Redis, max_size: int) -> None:
    produce(redis_client, 6)
    assert inventory.stream_room(redis_client, STREAM, MAX) == 4, "no group: nobody processes them yet"
    redis_client.xgroup_create(STREAM, GROUP, id="0")
    entries: Any = redis_client.xrange(STREAM)
    middle = entries[3][0]
    redis_client.xdel(STREAM, middle)  # Redis can no longer tell the group's lag
    assert group_of(inventory.describe(redis_client, STREAM))["lag"] is None
    assert inventory.stream_room(redis_client, STREAM, MAX) == 5


def test_restoring_jobs_to_a_stream_follows_the_same_room(redis_client: redis.Redis, max_size: int) -> None:
    caught_up_at_maxlen(redis_client)
    produce(redis_client, 2)  # lag 2: room 8
    entries = [((b"camera_id", b"porch"), (b"n", str(n).encode())) for n in range(9)]
    assert streams.push_entries(redis_client, STREAM, entries, MAX) == 8


def test_confirm_page_states_the_streams_room(
    redis_client: redis.Redis, operator: User, max_size: int
) -> None:
    redis_client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
    produce(redis_client, 12)
    consume(redis_client, 6)  # lag 4 in a stream over MAXLEN: room 6
    ids = fill(redis_client, 8)
    operator_client = logged_in(operator)
    page = operator_client.get(reverse("admin:stream_selected", args=[DLQ, "retry"]), {"id": ids})
    assert (
        f"{STREAM} can take 6 more entries before HSI's XADD MAXLEN 10 would trim one its consumer groups "
        "have not processed, so it stops after 6."
    ) in page.content.decode()
    assert ">Yes, retry up to 6 of 8 entries</button>" in page.content.decode()
    redis_client.xgroup_create(STREAM, "stuck", id="0")
    redis_client.xreadgroup("stuck", "w", {STREAM: ">"}, count=1)  # the next entry trimmed is pending
    full = operator_client.get(reverse("admin:stream_selected", args=[DLQ, "retry"]), {"id": ids})
    assert f"{STREAM} cannot take more now" in full.content.decode()
