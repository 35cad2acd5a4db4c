"""Queue, DLQ and archive pages: roles, confirm → POST → redirect, bounded reads, escaping, audit."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from html import unescape
from io import StringIO
from typing import Any
from urllib.parse import quote

import pytest
import redis
import zstandard
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from console.models import ArchivedItem, AuditEntry
from console.views import CSRF_SENTENCE
from queues import archive, dlq, inventory, views
from queues.codec import decode, encode_payload
from queues.demo import build_demo_world
from queues.overview import redis_overview
from queues.presentation import moment
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db

DLQ, TARGET = "dlq:detection_queue", "detection_queue"
DASH = views.DASH
DUPLICATE = "This action was already submitted; nothing was done twice."


def failure(n: int, *, camera: str = "", error: str = "", **extra: Any) -> bytes:
    entry = {
        "original_job": {"camera_id": camera or f"cam{n % 5}", "file_path": f"/export/cam/{n}.jpg", "n": n},
        "error": error or ("Detection request timed out after 30.0s" if n % 3 == 0 else "Invalid image"),
        "error_type": "TimeoutError" if n % 3 == 0 else "ValueError",
        "attempt_count": 3,
        "first_failed_at": "2026-02-11T22:04:11+00:00",
        "last_failed_at": f"2026-02-11T22:{n % 60:02d}:14+00:00",
        "queue_name": "detection_queue",
        **extra,
    }
    return encode_payload(entry)


def seed(client: redis.Redis, count: int, key: str = DLQ, **options: Any) -> list[bytes]:
    raws = [failure(n, **options) for n in range(count)]
    for start in range(0, count, 1000):
        client.rpush(key, *raws[start : start + 1000])
    return raws


def jobs(client: redis.Redis, key: str = TARGET) -> list[int]:
    return [decode(raw).value["n"] for raw in client.lrange(key, 0, -1)]


def dlq_jobs(client: redis.Redis, key: str = DLQ) -> list[int]:
    return [decode(raw).value["original_job"]["n"] for raw in client.lrange(key, 0, -1)]


def refs(client: redis.Redis, *indexes: int, key: str = DLQ) -> list[str]:
    entries = dlq.page(client, key, 0, 100).entries
    return [entries[i].ref for i in indexes]


def shown_messages(response: Any) -> list[str]:
    """Messages waiting for the next page (earlier unread ones from the same client included)."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def said(verb: str, done: int, key: str = DLQ, **fields: Any) -> str:
    """The service's own summary sentence, which the pages show as their message."""
    target = TARGET if verb == "Retried" and key == DLQ else None
    return dlq.Outcome(key, target, done=done, **fields).summary(verb)


def undo_of(sentence: str) -> str:
    """A delete's message: its sentence, then the link that undoes it (to its archive rows)."""
    deletions = set(ArchivedItem.objects.values_list("deletion", flat=True))
    assert len(deletions) == 1, "one delete action, however many steps, is one deletion"
    link = f'<a href="/archive/?deletion={deletions.pop()}" data-testid="undo">Undo: restore them</a>'
    return f"{sentence} {link}"


def message_levels(response: Any) -> list[str]:
    return [m.level_tag for m in get_messages(response.wsgi_request)]


def snapshot(client: redis.Redis) -> dict[str, Any]:
    keys = sorted(k.decode() for k in client.scan_iter() if not k.startswith(b"console:"))
    state = {key: client.dump(key) for key in keys}
    return {"redis": state, "archive": list(ArchivedItem.objects.values_list("pk", "state"))}


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def entry_url(client: redis.Redis, index: int = 0, key: str = DLQ) -> str:
    entry = dlq.page(client, key, index, 1).entries[0]
    return url("queue_entry", key, entry.index, entry.id)


def archived_row(operator: User, client: redis.Redis) -> ArchivedItem:
    post(logged_in(operator), url("queue_selected", DLQ, "delete"), ref=refs(client, 0))
    return ArchivedItem.objects.get()


def post(client: Client, address: str, **data: Any) -> Any:
    return client.post(address, {"nonce": views.new_nonce(), **data})


# --- Who may see and do what ---------------------------------------------------------------------


@pytest.fixture
def world(redis_client: redis.Redis) -> redis.Redis:
    build_demo_world(redis_client)
    return redis_client


def page_urls(client: redis.Redis, operator: User) -> list[str]:
    row = archived_row(operator, client)
    return [
        url("queue_list"),
        url("queue_items", DLQ),
        url("queue_items", TARGET),
        url("queue_items", "dlq:overflow:analysis_queue"),
        url("queue_items", "detections:stream"),
        entry_url(client),
        entry_url(client, key=TARGET),
        url("archive"),
        url("archive_item", row.pk),
    ]


ACTION_URLS = [
    url("queue_selected", DLQ, "retry"),
    url("queue_selected", DLQ, "delete"),
    url("queue_matching", DLQ, "retry"),
    url("queue_matching", DLQ, "delete"),
    url("archive_restore"),
    url("archive_restore_all"),
]


def test_anonymous_and_roleless_are_sent_to_login(world: redis.Redis, operator: User, roleless: User) -> None:
    pages = page_urls(world, operator)
    for client in (Client(), logged_in(roleless)):
        for target in pages:
            response = client.get(target)
            assert response.status_code == 302 and response["Location"].startswith("/login/"), target
        before = snapshot(world)
        for target in ACTION_URLS:
            response = post(client, target, ref=refs(world, 0), id="1")
            assert response.status_code == 302 and response["Location"].startswith("/login/"), target
        assert snapshot(world) == before


def test_viewer_sees_every_page_without_action_buttons(
    world: redis.Redis, viewer: User, operator: User
) -> None:
    client = logged_in(viewer)
    for target in page_urls(world, operator):
        response = client.get(target)
        assert response.status_code == 200, target
        html = response.content.decode()
        for control in ('name="ref"', "Retry selected", "Delete selected", "Retry all", "Restore to DLQ"):
            assert control not in html, (target, control)
        assert 'name="id"' not in html and "Retry this entry" not in html


def test_viewer_gets_403_on_every_action_and_redis_is_unchanged(world: redis.Redis, viewer: User) -> None:
    client = logged_in(viewer)
    ref = refs(world, 0, 1)
    before = snapshot(world)
    for target in ACTION_URLS:
        assert post(client, target, ref=ref, id="1", to="dlq").status_code == 403, target
        if target != url("archive_restore"):
            assert client.get(target, {"ref": ref}).status_code == 403, target
    assert snapshot(world) == before
    assert not AuditEntry.objects.exists()


def test_operator_sees_action_buttons(world: redis.Redis, operator: User) -> None:
    html = logged_in(operator).get(url("queue_items", DLQ)).content.decode()
    assert html.count('name="ref"') == 50
    for control in ("Retry selected", "Delete selected", "Retry all…", "Delete all…"):
        assert control in html
    work_queue = logged_in(operator).get(url("queue_items", TARGET)).content.decode()
    assert 'name="ref"' not in work_queue and "Retry all" not in work_queue


def test_unknown_keys_and_verbs_are_404(world: redis.Redis, operator: User) -> None:
    client = logged_in(operator)
    for target in (
        url("queue_items", "job:status:list"),
        url("queue_items", "orchestrator:service:redis:state"),
        url("queue_selected", TARGET, "retry"),
        url("queue_selected", DLQ, "explode"),
        url("queue_matching", "detections:stream:dlq", "retry"),
        url("queue_entry", "detections:stream", 0, "abc"),
    ):
        assert client.get(target, {"ref": "0:abc"}).status_code == 404, target


def test_get_pages_refuse_post(world: redis.Redis, operator: User) -> None:
    client = logged_in(operator)
    for target in (url("queue_list"), url("queue_items", DLQ), url("archive")):
        assert post(client, target).status_code == 405


# --- Queue list ----------------------------------------------------------------------------------


def test_queue_list_shows_depths_fill_ages_groups_and_sources(
    redis_client: redis.Redis, viewer: User, settings: Any
) -> None:
    build_demo_world(redis_client)
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 50}
    response = logged_in(viewer).get(url("queue_list"))
    html = response.content.decode()
    assert response.status_code == 200
    rows = {q.key: q for q in response.context["queues"]}
    assert rows[TARGET].length == 40 and rows[TARGET].level == "filling", "40 of 50 is 80%: warned"
    assert rows[DLQ].length == 62 and rows[DLQ].level == "full", "HSI rejects failures at a full DLQ"
    assert rows["analysis_queue"].level == "ok"
    assert re.search(r'<tr data-key="detection_queue" class="queues-warning">', html)
    assert re.search(r'<tr data-key="dlq:detection_queue" class="queues-full">', html)
    assert "80% of 50 · filling up" in html and "124% of 50 · full" in html
    alert = r'<li class="(\w+)" data-key="([^"]+)"><a href="([^"]+)">[^<]+</a>: ([^<]+)(.*?)</li>'
    alerts = re.findall(alert, html)
    assert [(level, key) for level, key, *_ in alerts] == [("error", DLQ), ("warning", TARGET)], "full 1st"
    assert alerts[0][2] == url("queue_items", DLQ)
    why = f'<a href="{url("queue_breakdown", DLQ)}" data-testid="alert-why">Why did they fail?</a>'
    assert (alerts[0][4], alerts[1][4]) == (why, ""), "a DLQ's alert asks why; a work queue's does not"
    assert alerts[0][3].startswith("Full (62 of 50): HSI rejects every new failure")
    overflow = rows["dlq:overflow:analysis_queue"]
    assert overflow.max_size is None and overflow.level == "ok", "HSI appends to an overflow DLQ freely"
    overflow_row = html.split('<tr data-key="dlq:overflow:analysis_queue">')[1].split("</tr>")[0]
    assert "no limit" in overflow_row and "<meter" not in overflow_row
    assert f'href="{url("queue_items", DLQ)}"' in html
    assert "retries to <a" in html and ">detection_queue</a>" in html
    assert "group <code>detection-workers</code>: 7 pending" in html
    assert re.search(r"\d+[dhm]", html), "oldest item ages are humanised"


def big_keyspace(client: redis.Redis, settings: Any, *, keys: int, scan_limit: int) -> None:
    """``keys`` dedupe keys, and a SCAN that looks at ``scan_limit`` of them a time."""
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "SCAN_LIMIT": scan_limit, "SCAN_COUNT": scan_limit}
    pipe = client.pipeline(transaction=False)
    for n in range(keys):
        pipe.set(f"dedupe:{n:064x}", "/export/a.jpg")
    pipe.execute()


def test_hsi_queues_are_listed_whatever_the_keyspace_size(
    redis_client: redis.Redis, viewer: User, settings: Any
) -> None:
    """A bounded SCAN may stop long before it meets a queue: HSI's own names are checked by name."""
    big_keyspace(redis_client, settings, keys=5_000, scan_limit=10)
    redis_client.rpush("hsi:queue:dlq:detection_queue", *[b"{}"] * 10_001)
    redis_client.rpush("dlq:overflow:hsi:queue:analysis_queue", b"{}")
    redis_client.xadd("detections:stream:dlq", {"camera_id": "porch"})
    response = logged_in(viewer).get(url("queue_list"))
    listed = [q.key for q in response.context["queues"]]
    for key in (
        "hsi:queue:dlq:detection_queue",
        "dlq:overflow:hsi:queue:analysis_queue",
        "detections:stream:dlq",
    ):
        assert key in listed, key
    assert "hsi:queue:analysis_queue" not in listed, "names that do not exist are left out"
    html = response.content.decode()
    assert re.search(r'<tr data-key="hsi:queue:dlq:detection_queue" class="queues-full">', html)
    partial = r"it has been through\s+\d+ of 5,00\d keys\s+so far, so one may still be missing"
    assert re.search(partial, html), "5,003 keys and the console's own (cache, session)"
    alerts = [info["key"] for info in redis_overview(redis_client).queue_alerts]
    assert alerts == ["hsi:queue:dlq:detection_queue"], "the dashboard's alerts see it too"


def test_queues_under_other_names_are_found_as_the_scan_goes_on(
    redis_client: redis.Redis, settings: Any
) -> None:
    """Each look resumes the SCAN where the last one stopped: a big keyspace is covered in turns."""
    big_keyspace(redis_client, settings, keys=400, scan_limit=20)
    redis_client.rpush("hsi:queue:thumbnails", b"{}")
    looks = [inventory.discover(redis_client) for _ in range(60)]
    first_complete = next(n for n, look in enumerate(looks) if look.complete)
    assert 10 <= first_complete < 60, "about 400 keys, 20 a look"
    assert [look.examined for look in looks[:3]] == sorted({look.examined for look in looks[:3]}), (
        "it goes on"
    )
    assert "hsi:queue:thumbnails" in looks[-1].found
    redis_client.delete("hsi:queue:thumbnails")
    assert "hsi:queue:thumbnails" not in inventory.discover(redis_client).found, "gone keys are dropped"


# --- Item browser --------------------------------------------------------------------------------


def test_a_dlq_near_or_at_its_max_size_says_what_hsi_does_then(
    world: redis.Redis, viewer: User, settings: Any
) -> None:
    client = logged_in(viewer)
    banner = re.compile(r'<li class="(\w+)" data-key="([^"]+)">([^<]+)</li>')
    assert not banner.search(client.get(url("queue_items", DLQ)).content.decode()), "62 of 10,000"
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 70}
    level, key, sentence = banner.findall(client.get(url("queue_items", DLQ)).content.decode())[0]
    assert (level, key) == ("warning", DLQ) and sentence.startswith("Filling up (62 of 70)")
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 62}
    html = client.get(url("queue_items", DLQ), {"q": "unavailable"}).content.decode()
    level, key, sentence = banner.findall(html)[0]
    assert level == "error" and "HSI rejects every new failure" in sentence, "shown while filtering too"


def test_browser_rows_show_summary_encoding_and_problem(world: redis.Redis, viewer: User) -> None:
    response = logged_in(viewer).get(url("queue_items", DLQ), {"size": "25"})
    html = response.content.decode()
    rows = response.context["listing"].rows
    assert len(rows) == 25 and f"items 1{DASH}25 of 62" in html
    assert any(row.encodings == "zstd → json" for row in rows)
    labels = {name for row in rows for name, _ in row.summary}
    assert {"error_type", "error", "camera_id", "last_failed_at"} <= labels
    assert "not JSON (text)" in html, "the malformed entry at 17 says why"
    assert "zstd → json" in html


def test_deep_offset_paging_is_one_cheap_read(redis_client: redis.Redis, viewer: User) -> None:
    for _ in range(20):
        redis_client.rpush(TARGET, *[b'{"camera_id":"porch","file_path":"/x.jpg"}'] * 50_000)
    client = logged_in(viewer)
    html = client.get(url("queue_items", TARGET), {"offset": "500000"}).content.decode()
    assert f"items 500,001{DASH}500,050 of 1,000,000" in html
    pager = client.get(url("queue_items", TARGET), {"offset": "500000"}).context["listing"].pager
    assert "offset=999950" in pager.last and "offset=500050" in pager.next and "offset=499950" in pager.prev
    newest = client.get(url("queue_items", TARGET), {"order": "newest", "size": "10"}).context["listing"]
    assert [row.entry.index for row in newest.rows] == list(range(999_999, 999_989, -1))


def test_go_to_item_jumps_anywhere_and_keeps_size_and_order(redis_client: redis.Redis, viewer: User) -> None:
    """The pager's box (1-based, as its label) is a GET form that keeps the page's other parameters."""
    redis_client.rpush(TARGET, *[f"item {n}".encode() for n in range(1_000)])
    client = logged_in(viewer)
    response = client.get(url("queue_items", TARGET), {"size": "25", "order": "newest", "offset": "50"})
    html = response.content.decode()
    assert html.count('<form method="get" class="queues-pager-jump">') == 2  # above and below the rows
    assert '<input type="hidden" name="size" value="25">' in html
    assert '<input type="hidden" name="order" value="newest">' in html
    assert '<input type="hidden" name="offset"' not in html
    assert 'name="item" min="1" max="1000" value="51" required' in html
    jump = client.get(url("queue_items", TARGET), {"size": "25", "order": "newest", "item": "700"})
    assert jump.status_code == 302 and jump["Location"] == "?size=25&order=newest&offset=699"
    jumped = client.get(
        url("queue_items", TARGET), {"size": "25", "order": "newest", "item": "700"}, follow=True
    )
    assert f"items 700{DASH}724 of 1,000" in jumped.content.decode()
    assert [row.entry.index for row in jumped.context["listing"].rows][:2] == [300, 299]
    assert "offset=724" in jumped.context["listing"].pager.next, "the page's links go on from there"
    for junk in ("0", "-3", "x", "9" * 20):  # not an item: the first page, as a bad offset is
        response = client.get(url("queue_items", TARGET), {"size": "25", "item": junk}, follow=True)
        assert f"items 1{DASH}25 of 1,000" in response.content.decode()
    redis_client.delete(TARGET)
    redis_client.rpush(TARGET, b"only one")
    assert "queues-pager-jump" not in client.get(url("queue_items", TARGET)).content.decode(), (
        "one page: no box"
    )


def test_filter_scans_at_most_5000_and_continues(redis_client: redis.Redis, viewer: User) -> None:
    raws = [failure(n, camera="porch" if n in (10, 4_999, 5_500) else "garage") for n in range(6_000)]
    redis_client.rpush(DLQ, *raws)
    client = logged_in(viewer)
    first = client.get(url("queue_items", DLQ), {"camera": "porch"})
    listing = first.context["listing"]
    assert [row.entry.index for row in listing.rows] == [10, 4_999]
    assert (
        f"Searched 5,000 of 6,000 (entries 1{DASH}5,000): 2 match; stopped at the search limit."
        in listing.note
    )
    assert "camera=porch" in listing.continue_url and "offset=5000" in listing.continue_url
    html = first.content.decode()
    for where in ("scan-note", "scan-note-end"):  # above the results and below them
        assert f'data-testid="{where}-continue">Continue searching from entry 5,001' in html
    rest = client.get(url("queue_items", DLQ) + listing.continue_url).context["listing"]
    assert [row.entry.index for row in rest.rows] == [5_500] and rest.continue_url == ""


def test_entries_with_impossible_times_still_show(redis_client: redis.Redis, operator: User) -> None:
    """JSON numbers like 1e300 or NaN (Python reads both) as a failure time: shown as they are."""
    raws = [
        b'{"original_job": {"camera_id": "porch"}, "error": "e", "last_failed_at": 1e300}',
        b'{"original_job": {"camera_id": "porch"}, "error": "e", "last_failed_at": NaN}',
        b'{"original_job": {"camera_id": "porch"}, "error": "e", "last_failed_at": "99999-01-01"}',
    ]
    redis_client.rpush(DLQ, *raws)
    client = logged_in(operator)
    entries = dlq.page(redis_client, DLQ).entries
    for page in (
        url("queue_list"),
        url("queue_items", DLQ),
        url("queue_items", DLQ) + "?since=2026-01-01T00:00",
        *(url("queue_entry", DLQ, e.index, e.id) for e in entries),
    ):
        assert client.get(page).status_code == 200, page
    assert "1e+300" in client.get(url("queue_items", DLQ)).content.decode()
    assert client.get(url("queue_items", DLQ), {"since": "2026-01-01T00:00"}).context["listing"].rows == []


def test_a_zstd_bomb_is_listed_with_why_and_stays(redis_client: redis.Redis, operator: User) -> None:
    """A 10 KiB ``Z:`` entry that says "200 MiB of zeros" is refused from its frame header: the
    pages list it with the reason, and a retry leaves it where it is with that reason."""
    bomb = b"Z:" + base64.b64encode(zstandard.ZstdCompressor().compress(bytes(200 * 1024 * 1024)))
    redis_client.rpush(DLQ, failure(1), bomb)
    client = logged_in(operator)
    why = "it would decompress to 209,715,200 bytes, over the 64 MiB the console decodes"
    assert why in client.get(url("queue_items", DLQ)).content.decode()
    assert why in client.get(entry_url(redis_client, 1)).content.decode()
    response = post(client, url("queue_selected", DLQ, "retry"), ref=refs(redis_client, 0, 1))
    assert response.status_code == 302
    assert redis_client.lrange(DLQ, 0, -1) == [bomb] and jobs(redis_client) == [1]
    detail = AuditEntry.objects.get(action="dlq.retry").detail
    assert detail["done"] == 1 and [why in reason for reason in detail["skipped_reasons"]] == [True]


def test_filter_by_error_text_shows_only_matches(world: redis.Redis, viewer: User) -> None:
    listing = logged_in(viewer).get(url("queue_items", DLQ), {"q": "timed out"}).context["listing"]
    assert listing.rows and all("timed out" in dict(row.summary)["error"] for row in listing.rows)


def test_bad_filter_date_is_a_sentence_not_a_500(world: redis.Redis, operator: User) -> None:
    response = logged_in(operator).get(url("queue_items", DLQ), {"since": "yesterday"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "must be a date and time like 2026-02-11T22:04" in html
    assert 'data-testid="filter-error"' in html
    assert "Retry all" not in html, "no bulk button may act on everything while the filter is unreadable"
    confirm = logged_in(operator).get(url("queue_matching", DLQ, "retry"), {"until": "soon"})
    assert confirm.status_code == 302
    assert any("must be a date and time" in m for m in shown_messages(confirm))


STREAM_ROW_ID = r"<td class=\"queues-entry-id\"><a href=\"[^\"]*\"><code>(\d+-\d+)</code>"


def test_stream_page_lists_entries_by_id_with_groups(world: redis.Redis, viewer: User) -> None:
    first = logged_in(viewer).get(url("queue_items", "detections:stream"), {"size": 10})
    html = first.content.decode()
    assert "Stream of 20 entries" in html and "detection-workers" in html
    ids = re.findall(STREAM_ROW_ID, html)
    assert len(ids) == 10 and 'name="id"' not in html, "a viewer gets no checkboxes"
    second = logged_in(viewer).get(url("queue_items", "detections:stream"), {"size": 10, "after": ids[-1]})
    later = re.findall(STREAM_ROW_ID, second.content.decode())
    assert len(later) == 10 and not set(later) & set(ids)


def test_operator_retries_stream_dlq_entries_by_id(world: redis.Redis, operator: User, viewer: User) -> None:
    key = "detections:stream:dlq"
    html = logged_in(operator).get(url("queue_items", key)).content.decode()
    ids = re.findall(r'name="id" value="(\d+-\d+)"', html)
    assert len(ids) == 4
    before = world.xlen("detections:stream")
    action = url("stream_selected", key, "retry")
    refused = logged_in(viewer).post(action, {"id": ids[:2], "nonce": "v"})
    assert refused.status_code == 403 and world.xlen(key) == 4
    confirm = logged_in(operator).get(action, {"id": ids[:2]})
    assert confirm.status_code == 200 and world.xlen(key) == 4  # GET only shows what will happen
    nonce = re.search(r'name="nonce" value="([^"]+)"', confirm.content.decode())
    assert nonce is not None
    done = logged_in(operator).post(action, {"id": ids[:2], "nonce": nonce.group(1)})
    assert done.status_code == 302 and any("Retried 2" in m for m in shown_messages(done))
    assert world.xlen(key) == 2 and world.xlen("detections:stream") == before + 2
    again = logged_in(operator).post(action, {"id": ids[:2], "nonce": nonce.group(1)})
    assert any("already submitted" in m for m in shown_messages(again)) and world.xlen(key) == 2


def test_odd_key_names_round_trip_through_urls(redis_client: redis.Redis, operator: User) -> None:
    key = "dlq:odd key?#%/x"
    redis_client.rpush(key, failure(1))
    link = url("queue_items", key)
    assert quote("odd key?#%") in link
    client = logged_in(operator)
    assert client.get(link).context["listing"].total == 1
    response = post(client, url("queue_selected", key, "retry"), ref=refs(redis_client, 0, key=key))
    assert response.status_code == 302 and redis_client.llen("odd key?#%/x") == 1


# --- Entry detail --------------------------------------------------------------------------------


def test_entry_detail_shows_the_failure(world: redis.Redis, operator: User) -> None:
    response = logged_in(operator).get(entry_url(world, 1))
    html = response.content.decode()
    assert response.status_code == 200
    for text in (
        "error_type",
        "attempt_count",
        "first_failed_at",
        "last_failed_at",
        "camera_id",
        "file_path",
    ):
        assert text in html
    assert "<details" in html and "Stack trace" in html and "Traceback (most recent call last)" in html
    assert "Raw bytes (" in html and "Decoded value" in html
    assert "Retry this entry" in html and "Delete this entry" in html
    facts = dict(response.context["facts"])  # times as the rows show them, then as HSI stored them
    stored = dlq.page(world, DLQ, 1, 1).entries[0].field("first_failed_at")
    assert facts["first_failed_at"] == f"{moment(stored)} ({stored})" and moment(stored).endswith(" UTC")


def test_entry_detail_of_a_vanished_entry_is_a_404_page(world: redis.Redis, operator: User) -> None:
    link = entry_url(world, 3)
    post(logged_in(operator), url("queue_selected", DLQ, "retry"), ref=refs(world, 3))
    response = logged_in(operator).get(link)
    assert response.status_code == 404
    assert "This entry is no longer in dlq:detection_queue (retried or deleted)." in response.content.decode()


def test_hostile_entries_are_escaped_and_big_values_truncated(
    redis_client: redis.Redis, operator: User
) -> None:
    script = "<script>alert(1)</script>"
    redis_client.rpush(
        DLQ,
        script.encode(),
        failure(1, camera=script, error=script),
        b"\xff\xfe\x00<script>",
        failure(2, error="x" * 1_048_576, stack_trace="y" * 1_048_576),
        b"<b>" + b"z" * 1_048_576,
    )
    client = logged_in(operator)
    pages = [client.get(url("queue_items", DLQ))] + [client.get(entry_url(redis_client, i)) for i in range(5)]
    for response in pages:
        html = response.content.decode()
        assert response.status_code == 200
        assert "<script>alert" not in html and "<b>zzz" not in html
        assert len(html) < 200_000, "a 1 MB value is never rendered whole"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0].content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[2].content.decode()
    assert "not JSON (binary: not UTF-8 text)" in pages[3].content.decode()
    assert "shown as hex" in pages[3].content.decode()
    big = pages[4].content.decode()
    assert "truncated" in big and "1,048,576 characters" in big


def test_hostile_key_names_are_escaped(redis_client: redis.Redis, operator: User) -> None:
    key = "dlq:<img src=x onerror=alert(1)>"
    redis_client.rpush(key, failure(1))
    client = logged_in(operator)
    for response in (client.get(url("queue_list")), client.get(url("queue_items", key))):
        html = response.content.decode()
        assert response.status_code == 200
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


# --- Selected retry and delete -------------------------------------------------------------------


def test_retry_selected_confirms_then_moves_exactly_the_checked_entries(
    redis_client: redis.Redis, operator: User
) -> None:
    seed(redis_client, 6)
    client = logged_in(operator)
    chosen = refs(redis_client, 1, 4)
    confirm = client.get(url("queue_selected", DLQ, "retry"), {"ref": chosen, "back": "size=10&offset=0"})
    html = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Retry 2 selected entries of dlq:detection_queue to detection_queue." in html
    assert redis_client.llen(DLQ) == 6, "the confirmation page changes nothing"
    nonce = re.findall(r'name="nonce" value="([0-9a-f]{32})"', html)[0]
    response = client.post(
        url("queue_selected", DLQ, "retry"), {"ref": chosen, "nonce": nonce, "back": "size=10"}
    )
    assert response.status_code == 302 and response["Location"] == url("queue_items", DLQ) + "?size=10"
    assert shown_messages(response) == [said("Retried", 2)]
    assert "Retried 2" in said("Retried", 2) and "to detection_queue" in said("Retried", 2)
    assert jobs(redis_client) == [1, 4] and dlq_jobs(redis_client) == [0, 2, 3, 5]


def test_a_stale_index_still_retries_the_right_entry(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 5)
    chosen = refs(redis_client, 3)
    redis_client.lpush(DLQ, failure(100), failure(101))  # the page the user saw is now off by two
    post(logged_in(operator), url("queue_selected", DLQ, "retry"), ref=chosen)
    assert jobs(redis_client) == [3]
    assert dlq_jobs(redis_client) == [101, 100, 0, 1, 2, 4]


def test_delete_selected_archives_and_reports(redis_client: redis.Redis, operator: User) -> None:
    raws = seed(redis_client, 3)
    response = post(logged_in(operator), url("queue_selected", DLQ, "delete"), ref=refs(redis_client, 0, 2))
    assert shown_messages(response) == [undo_of(said("Deleted", 2))]
    assert dlq_jobs(redis_client) == [1]
    assert sorted(bytes(r) for r in ArchivedItem.objects.values_list("raw", flat=True)) == sorted(
        [raws[0], raws[2]]
    )


def test_selecting_an_entry_someone_else_retried_is_a_warning(
    redis_client: redis.Redis, operator: User
) -> None:
    seed(redis_client, 3)
    chosen = refs(redis_client, 0, 1)
    post(logged_in(operator), url("queue_selected", DLQ, "retry"), ref=chosen[:1])
    response = post(logged_in(operator), url("queue_selected", DLQ, "retry"), ref=chosen)
    skipped = Counter({"not found (already retried or deleted?)": 1})
    assert shown_messages(response) == [said("Retried", 1, skipped=skipped)]
    assert message_levels(response) == ["warning"]


def test_confirming_entries_that_are_all_gone_says_so(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 2)
    chosen = refs(redis_client, 0)
    post(logged_in(operator), url("queue_selected", DLQ, "delete"), ref=chosen)
    response = logged_in(operator).get(url("queue_selected", DLQ, "retry"), {"ref": chosen})
    assert response.status_code == 302
    assert shown_messages(response) == ["None of the selected entries is still in dlq:detection_queue."]


def test_nothing_selected_is_a_warning(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 2)
    response = logged_in(operator).get(url("queue_selected", DLQ, "retry"))
    assert response.status_code == 302 and redis_client.llen(DLQ) == 2
    assert shown_messages(response) == ["Select between 1 and 100 entries first."]


def test_double_submit_with_the_same_nonce_does_nothing_twice(
    redis_client: redis.Redis, operator: User
) -> None:
    seed(redis_client, 4)
    client = logged_in(operator)
    data = {"ref": refs(redis_client, 0), "nonce": views.new_nonce()}
    client.post(url("queue_selected", DLQ, "retry"), data)
    data["ref"] = refs(redis_client, 0)  # even for another entry, the same form cannot act twice
    second = client.post(url("queue_selected", DLQ, "retry"), data)
    assert shown_messages(second)[-1] == DUPLICATE
    assert jobs(redis_client) == [0] and redis_client.llen(DLQ) == 3
    bulk = {"nonce": views.new_nonce(), "start": "0"}
    client.post(url("queue_matching", DLQ, "delete"), bulk)
    assert redis_client.llen(DLQ) == 0
    seed(redis_client, 2)
    again = client.post(url("queue_matching", DLQ, "delete"), bulk)
    assert shown_messages(again)[-1] == DUPLICATE and redis_client.llen(DLQ) == 2
    as_json = client.post(url("queue_matching", DLQ, "delete"), bulk, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 409 and as_json.json()["error"] == DUPLICATE


# --- Bulk actions --------------------------------------------------------------------------------


def test_bulk_confirm_page_counts_and_changes_nothing(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 30)
    client = logged_in(operator)
    everything = client.get(url("queue_matching", DLQ, "retry")).content.decode()
    assert "Retry all 30 entries of dlq:detection_queue to detection_queue." in everything
    matching = client.get(url("queue_matching", DLQ, "delete"), {"q": "timed out"}).content.decode()
    assert "Delete all 10 entries of dlq:detection_queue matching error text or type “timed out”." in matching
    assert 'name="q" value="timed out"' in matching
    moves = "while it runs they move, in order, to its end"  # what it leaves (rotate.lua)
    assert moves in everything and moves in matching
    assert moves not in client.get(url("queue_matching", DLQ, "delete")).content.decode(), "nothing is left"
    assert redis_client.llen(DLQ) == 30 and not AuditEntry.objects.exists()


def test_retry_confirm_pages_say_how_much_room_the_source_has(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 25}
    seed(redis_client, 30)
    redis_client.rpush(TARGET, b"{}", b"{}", b"{}", b"{}", b"{}")
    client = logged_in(operator)
    room = re.compile(r'<p( class="errornote")? data-testid="confirm-room">([^<]+)</p>')
    html = client.get(url("queue_matching", DLQ, "retry")).content.decode()
    assert room.findall(html) == [
        ("", "detection_queue holds 5 of 25 entries: room for 20 more, so it stops after 20.")
    ]
    assert ">Yes, retry up to 20 of 30 entries</button>" in html
    first = dlq.page(redis_client, DLQ).entries[0]
    html = client.get(url("queue_selected", DLQ, "retry"), {"ref": first.ref}).content.decode()
    assert room.findall(html) == [("", "detection_queue holds 5 of 25 entries: room for 20 more.")]
    assert ">Yes, retry 1 entry</button>" in html
    assert not room.search(client.get(url("queue_matching", DLQ, "delete")).content.decode()), "retry only"
    redis_client.rpush(TARGET, *[b"{}"] * 20)
    html = client.get(url("queue_matching", DLQ, "retry")).content.decode()
    [(error, sentence)] = room.findall(html)
    assert error and sentence.startswith("detection_queue is full (25 of 25): nothing can be put there")
    redis_client.rpush("dlq:custom_work", dlq.page(redis_client, DLQ).entries[0].raw)  # a name HSI never uses
    html = client.get(url("queue_matching", "dlq:custom_work", "retry")).content.decode()
    assert room.findall(html) == [("", "custom_work holds 0 of 25 entries: room for 25 more.")]


def test_a_run_asked_to_wait_for_room_stays_on_its_progress_page_when_the_target_fills(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 25}
    seed(redis_client, 30)
    redis_client.rpush(TARGET, *[b"{}"] * 5)
    client = logged_in(operator)
    confirm = client.get(url("queue_matching", DLQ, "retry")).content.decode()
    assert 'data-testid="wait-for-room"><input type="checkbox" name="wait" value="1">' in confirm
    assert "When detection_queue is full, wait for room and go on: all 30" in confirm
    assert (
        'data-testid="wait-for-room"' not in client.get(url("queue_matching", DLQ, "delete")).content.decode()
    )

    waiting = post(client, url("queue_matching", DLQ, "retry"), start="0", wait="1")
    html = unescape(waiting.content.decode())
    assert waiting.status_code == 200, "the progress page, not the outcome"
    assert 'name="wait" value="1" data-bulk-wait checked' in html
    assert "Retried 20 of dlq:detection_queue to detection_queue; stopped: detection_queue is full" in html
    assert (redis_client.llen(TARGET), redis_client.llen(DLQ)) == (25, 10)
    step = client.post(
        url("queue_matching", DLQ, "retry"),
        {
            "start": "0",
            "nonce": views.new_nonce(),
            "wait": "1",
            "tally": waiting.context["state"].tally.dumps(),
        },
        HTTP_ACCEPT="application/json",
    ).json()
    assert (step["finished"], step["room_later"], step["done"]) == (True, True, 20), (
        "full again: bulk.js waits"
    )

    stopped = post(client, url("queue_matching", DLQ, "retry"), start="0")
    assert stopped.status_code == 302, "without wait, a full target ends the run as before"
    redis_client.delete(TARGET)
    done = post(client, url("queue_matching", DLQ, "retry"), start="0", wait="1")
    assert done.status_code == 302 and redis_client.llen(DLQ) == 0, "room enough: it finishes"


@pytest.mark.parametrize("verb", ["delete", "retry"])
def test_a_filtered_run_reaches_every_match_when_another_operator_deletes_what_it_passed(
    redis_client: redis.Redis, operator: User, settings: Any, verb: str
) -> None:
    """Entries a filtered run passes over go to the tail; when someone deletes some of them, the
    DLQ is shorter than the run's position expects, but every match is still reached."""
    seed(redis_client, 700)
    client = logged_in(operator)
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0.001}  # one batch per step
    data = {"start": "0", "nonce": views.new_nonce(), "camera": "cam1"}
    replies: list[dict[str, Any]] = []
    while not (replies and replies[-1]["finished"]):
        response = client.post(url("queue_matching", DLQ, verb), data, HTTP_ACCEPT="application/json")
        replies.append(response.json())
        data |= {name: str(replies[-1][name]) for name in ("start", "nonce", "tally")}
        if len(replies) == 1:  # another operator deletes five entries the run has passed over
            length = redis_client.llen(DLQ)
            assert int(replies[0]["start"]) >= 5, "the run moved entries to the tail"
            tail = dlq.page(redis_client, DLQ, length - 5, 5).entries
            assert all((entry.job or {}).get("camera_id") != "cam1" for entry in tail)
            post(client, url("queue_selected", DLQ, "delete"), ref=[entry.ref for entry in tail])
            assert redis_client.llen(DLQ) == length - 5
        assert len(replies) < 10
    assert replies[-1]["done"] == 140
    left = [json.loads(raw)["original_job"]["camera_id"] for raw in redis_client.lrange(DLQ, 0, -1)]
    assert "cam1" not in left and len(left) == 555


def test_bulk_retry_all_runs_to_the_end_in_json_chunks(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0.001}  # one batch per chunk
    seed(redis_client, 1_500)
    redis_client.rpush(DLQ, b"not json")
    client = logged_in(operator)
    data: dict[str, str] = {"start": "0", "nonce": views.new_nonce()}
    replies: list[dict[str, Any]] = []
    while not (replies and replies[-1]["finished"]):
        response = client.post(url("queue_matching", DLQ, "retry"), data, HTTP_ACCEPT="application/json")
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        reply = response.json()
        replies.append(reply)
        assert reply["nonce"] != data["nonce"]
        data = {"start": str(reply["start"]), "nonce": reply["nonce"], "tally": reply["tally"]}
        assert len(replies) < 20
    assert len(replies) >= 3
    assert [r["handled"] for r in replies] == sorted(r["handled"] for r in replies)
    assert replies[-1]["planned"] == 1_501 and replies[-1]["handled"] == 1_501
    assert replies[-1]["summary"] == said("Retried", 1_500, skipped=Counter({"not JSON (text)": 1}))
    assert sorted(jobs(redis_client)) == list(range(1_500))
    assert redis_client.lrange(DLQ, 0, -1) == [b"not json"]
    audits = AuditEntry.objects.filter(action="dlq.retry_all")
    assert audits.count() == len(replies) and sum(a.count for a in audits) == 1_500


def test_bulk_without_javascript_continues_through_progress_pages(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0.001}
    seed(redis_client, 1_200)
    client = logged_in(operator)
    response = client.post(url("queue_matching", DLQ, "delete"), {"start": "0", "nonce": views.new_nonce()})
    pages = 0
    while response.status_code == 200:
        html = response.content.decode()
        assert "<progress" in html and "queues/js/bulk.js" in html and "<script>" not in html
        fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)
        form = {name: unescape(value) for name, value in fields}
        response = client.post(url("queue_matching", DLQ, "delete"), form)
        pages += 1
    assert pages >= 2 and response.status_code == 302
    assert shown_messages(response) == [undo_of(said("Deleted", 1_200))]
    assert redis_client.llen(DLQ) == 0 and ArchivedItem.objects.filter(state="archived").count() == 1_200


def test_a_stopped_run_without_javascript_can_end_with_the_dlq_in_its_old_order(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    """The progress page of an unfinished filtered retry offers to end it; its steps carry end=1
    until the DLQ is back in order, and the message says what was done and what was put back."""
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0}  # one batch per step
    seed(redis_client, 1_000)
    client = logged_in(operator)
    matching = url("queue_matching", DLQ, "retry")
    response = client.post(matching, {"q": "TimeoutError", "start": "0", "nonce": views.new_nonce()})
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="bulk-end">' in html, "offered, not hidden"
    assert "End here and put the DLQ back in order" in html and 'name="end"' in html
    retried = jobs(redis_client)
    assert retried == list(range(0, 250, 3)), "one step: the first batch"
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    form = {name: unescape(value) for name, value in fields.items()} | {"end": "1"}
    pages = 0
    while True:
        response = client.post(matching, form)
        if response.status_code != 200:
            break
        html = response.content.decode()
        assert 'data-testid="bulk-end"' not in html and '<input type="hidden" name="end" value="1">' in html
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
        form = {name: unescape(value) for name, value in fields.items()}
        pages += 1
    assert response.status_code == 302 and pages == 2, "750 entries put back take three steps of 250"
    put_back = (
        "; ended early: the 750 not examined went back behind the others, so the DLQ is in its old order"
    )
    expected = said("Retried", 84, unmatched=166).removesuffix(".") + put_back + "."
    assert shown_messages(response) == [expected]
    assert jobs(redis_client) == retried, "ending retried nothing"
    assert dlq_jobs(redis_client) == [n for n in range(1_000) if n >= 250 or n % 3]
    trail = AuditEntry.objects.filter(action="dlq.retry_all").order_by("pk")
    assert [a.detail.get("ended", False) for a in trail] == [False, True, True, True]


def test_bulk_retry_matching_moves_only_matches(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 30)
    response = post(
        logged_in(operator), url("queue_matching", DLQ, "retry"), q="TimeoutError", start="0", back="q=x"
    )
    assert response.status_code == 302 and response["Location"] == url("queue_items", DLQ) + "?q=x"
    assert sorted(jobs(redis_client)) == list(range(0, 30, 3))
    assert redis_client.llen(DLQ) == 20


def test_bulk_stops_when_the_target_is_full(redis_client: redis.Redis, operator: User, settings: Any) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 5}
    seed(redis_client, 8)
    response = post(logged_in(operator), url("queue_matching", DLQ, "retry"), start="0")
    assert shown_messages(response) == [said("Retried", 5, full=True, remaining=3)]
    assert message_levels(response) == ["warning"]
    assert redis_client.llen(TARGET) == 5 and redis_client.llen(DLQ) == 3


# --- Archive -------------------------------------------------------------------------------------


def test_archive_lists_filters_and_restores_identical_bytes(
    redis_client: redis.Redis, operator: User
) -> None:
    raws = seed(redis_client, 4)
    client = logged_in(operator)
    post(client, url("queue_selected", DLQ, "delete"), ref=refs(redis_client, 1, 2))
    page = client.get(url("archive"), {"key": DLQ, "state": "archived"})
    assert [row.fingerprint for row in page.context["page"]] == [
        dlq.fingerprint(raws[2]),
        dlq.fingerprint(raws[1]),
    ]
    assert client.get(url("archive"), {"state": "restored"}).context["page"].paginator.count == 0
    html = page.content.decode()
    summaries = re.findall(r'<td class="queues-summary" data-label="Summary">(.*?)</td>', html)
    assert len(summaries) == 2, "what each deleted entry was, as its DLQ page showed it"
    assert re.sub(r"<[^>]+>", " ", summaries[0]).split() == [
        "error_type", *decode(raws[2]).value["error_type"].split(),
        "error", *decode(raws[2]).value["error"].split(),
        "camera_id", decode(raws[2]).value["original_job"]["camera_id"],
        "last_failed_at", *moment(decode(raws[2]).value["last_failed_at"]).split(),
    ]  # fmt: skip
    ids = [str(row.pk) for row in page.context["page"]]
    response = post(client, url("archive_restore"), id=ids, to="dlq", back="state=archived")
    assert response["Location"] == url("archive") + "?state=archived"
    assert shown_messages(response) == ["Restored 2 archived entries to their DLQ."]
    assert sorted(redis_client.lrange(DLQ, 0, -1)) == sorted(raws)
    assert set(ArchivedItem.objects.values_list("state", flat=True)) == {"restored"}
    again = post(client, url("archive_restore"), id=ids, to="dlq")
    assert "2 not restored" in shown_messages(again)[-1] and redis_client.llen(DLQ) == 4


def test_restore_all_puts_a_whole_deletion_back_in_order_in_steps(
    redis_client: redis.Redis, operator: User, viewer: User, settings: Any
) -> None:
    raws = seed(redis_client, 600)
    client = logged_in(operator)
    post(client, url("queue_matching", DLQ, "delete"), start="0")
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0.001}  # one batch per step
    assert redis_client.llen(DLQ) == 0 and ArchivedItem.objects.filter(state="archived").count() == 600
    redis_client.rpush(DLQ, b"arrived meanwhile")
    archive_page = client.get(url("archive"), {"key": DLQ}).content.decode()
    offer = re.search(r'data-testid="restore-all">([^<]+)', archive_page)
    assert offer and " ".join(offer[1].split()) == f"{DLQ}: 600 entries still archived."
    assert "Restore all jobs to detection_queue…" in archive_page
    assert (
        'data-testid="restore-all"'
        not in logged_in(viewer).get(url("archive"), {"key": DLQ}).content.decode()
    )
    confirm = client.get(url("archive_restore_all"), {"key": DLQ, "to": "dlq"}).content.decode()
    assert f"Restore all 600 archived entries of {DLQ} to {DLQ}." in unescape(confirm)
    assert f"{DLQ} holds 1 of 10,000 entries: room for 9,999 more." in confirm
    data: dict[str, str] = {"key": DLQ, "to": "dlq", "start": "0", "nonce": views.new_nonce()}
    replies: list[dict[str, Any]] = []
    while not (replies and replies[-1]["finished"]):
        response = client.post(url("archive_restore_all"), data, HTTP_ACCEPT="application/json")
        assert response.status_code == 200, response.content
        replies.append(response.json())
        data |= {
            "start": str(replies[-1]["start"]),
            "nonce": replies[-1]["nonce"],
            "tally": replies[-1]["tally"],
        }
        assert len(replies) < 10
    assert [r["handled"] for r in replies] == [250, 500, 600] and replies[-1]["planned"] == 600
    assert replies[-1]["summary"] == f"Restored 600 archived entries of {DLQ} to {DLQ}."
    assert redis_client.lrange(DLQ, 0, -1) == [b"arrived meanwhile", *raws], "appended in their old order"
    assert not ArchivedItem.objects.filter(state="archived").exists()
    audits = AuditEntry.objects.filter(action="archive.restore_all")
    assert [a.count for a in audits.order_by("id")] == [250, 250, 100]
    replay = client.post(
        url("archive_restore_all"), data | {"nonce": replies[0]["nonce"]}, HTTP_ACCEPT="application/json"
    )
    assert replay.status_code == 409 and redis_client.llen(DLQ) == 601
    gone = client.get(url("archive_restore_all"), {"key": DLQ})
    assert gone.status_code == 302 and shown_messages(gone) == [f"Nothing of {DLQ} is archived any more."]
    assert client.get(url("archive_restore_all"), {"key": TARGET}).status_code == 404, "not a DLQ"


def test_a_failed_bulk_step_answers_bulk_js_with_a_sentence(
    operator: User, redis_client: redis.Redis, start_server: Any, point_at: Any
) -> None:
    """bulk.js shows a step's refusal as it comes: JSON with a sentence in ``detail``, as the API's."""
    data = {"start": "0", "nonce": views.new_nonce()}
    expired = Client(enforce_csrf_checks=True)
    expired.force_login(operator)
    refused = expired.post(url("queue_matching", DLQ, "delete"), data, HTTP_ACCEPT="application/json")
    assert refused.status_code == 403
    assert refused.json() == {"error": "csrf_failed", "detail": CSRF_SENTENCE}, "the page's sentence"
    server = start_server()
    point_at(server)
    server.kill()
    client = logged_in(operator)
    down = client.post(url("queue_matching", DLQ, "delete"), data, HTTP_ACCEPT="application/json")
    assert down.status_code == 503 and down["Content-Type"] == "application/json"
    assert down.json()["error"] == "redis_unavailable" and "Connection refused" in down.json()["detail"]
    page = client.post(url("queue_matching", DLQ, "delete"), data)  # the same step from a plain form
    assert page.status_code == 503 and page["Content-Type"].startswith("text/html")


def test_undo_restores_exactly_what_one_delete_archived(
    redis_client: redis.Redis, operator: User, viewer: User, admin_user: User, settings: Any
) -> None:
    """A delete of everything matching a filter, in several steps, is one action with one undo;
    another delete of the same DLQ (before and after it) is not touched by that undo."""
    raws = seed(redis_client, 900)
    client = logged_in(operator)
    post(client, url("queue_selected", DLQ, "delete"), ref=refs(redis_client, 0))  # cam0: a separate delete
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0.001}  # one batch per step
    data = {"start": "0", "nonce": views.new_nonce(), "camera": "cam1"}
    replies: list[dict[str, Any]] = []
    while not (replies and replies[-1]["finished"]):
        response = client.post(url("queue_matching", DLQ, "delete"), data, HTTP_ACCEPT="application/json")
        replies.append(response.json())
        data |= {
            "start": str(replies[-1]["start"]),
            "nonce": replies[-1]["nonce"],
            "tally": replies[-1]["tally"],
        }
        assert len(replies) < 20
    assert len(replies) >= 2 and replies[-1]["done"] == 180
    undo = replies[-1]["undo"]
    # A run stopped after any step undoes what it deleted so far: the same link from its first delete on.
    assert {r["undo"] for r in replies if r["done"]} == {undo}
    deletions = ArchivedItem.objects.exclude(fingerprint=dlq.fingerprint(raws[0])).values("deletion")
    assert deletions.distinct().count() == 1, "every step of the delete carries one deletion id"
    assert undo == url("archive") + "?deletion=" + deletions[0]["deletion"]
    post(
        client, url("queue_selected", DLQ, "delete"), ref=refs(redis_client, 0)
    )  # n=2: another delete after it
    left = redis_client.lrange(DLQ, 0, -1)

    page = client.get(undo)
    html = unescape(" ".join(page.content.decode().split()))
    assert page.context["page"].paginator.count == 180
    assert {row.key for row, _ in page.context["items"]} == {DLQ}
    assert f"One delete action: 180 entries of {DLQ} deleted by {operator.username}" in html
    assert "all still archived." in html and f"Restore these 180 to {DLQ}…" in html
    assert "Restore their jobs to detection_queue…" in html
    assert 'data-testid="restore-all"' not in logged_in(viewer).get(undo).content.decode()
    assert logged_in(viewer).get(undo).status_code == 200, "a Viewer sees what a delete took"

    deletion = undo.split("=")[1]
    whole = client.get(url("archive"), {"key": DLQ}).content.decode()  # each row links to its delete
    links = set(re.findall(r'href="\?deletion=([0-9a-f]{32})" data-testid="row-deletion"', whole))
    assert deletion in links and len(links) == 2, (
        "the newest 50 rows: the single delete after it, 49 of its own"
    )
    one = ArchivedItem.objects.filter(deletion=deletion).first()
    assert one is not None
    item = client.get(url("archive_item", one.pk)).content.decode()
    assert f'href="{undo}" data-testid="item-deletion"' in item
    scope = {"key": DLQ, "to": "dlq", "deletion": deletion}
    confirm = unescape(" ".join(client.get(url("archive_restore_all"), scope).content.decode().split()))
    assert f"Undo a delete by {operator.username}" in confirm
    assert f"put its 180 archived entries back into {DLQ}." in confirm
    assert f'name="deletion" value="{deletion}"' in confirm
    assert logged_in(viewer).get(url("archive_restore_all"), scope).status_code == 403
    other = {"key": "dlq:analysis_queue", "to": "dlq", "deletion": deletion}
    assert client.get(url("archive_restore_all"), other).status_code == 404, "that delete was not of it"
    assert client.get(url("archive"), {"deletion": "0" * 32}).status_code == 404

    done = post(client, url("archive_restore_all"), **scope, start="0")
    assert done["Location"] == undo
    assert shown_messages(done)[-1] == f"Restored 180 archived entries of {DLQ} to {DLQ}."
    cam1 = [raw for raw in raws if json.loads(raw)["original_job"]["camera_id"] == "cam1"]
    assert redis_client.lrange(DLQ, 0, -1) == left + cam1, "exactly that delete's entries, in their order"
    assert sorted(
        bytes(r) for r in ArchivedItem.objects.filter(state="archived").values_list("raw", flat=True)
    ) == sorted([raws[0], raws[2]]), "the other two deletes stay archived"
    again = unescape(" ".join(client.get(undo).content.decode().split()))
    assert "every one restored since." in again and 'data-testid="restore-all"' not in again
    restores = AuditEntry.objects.filter(action="archive.restore_all")
    assert [a.detail["deletion"] for a in restores] == [deletion]
    step = AuditEntry.objects.filter(action="dlq.delete_all").last()
    assert step is not None and step.detail["deletion"] == deletion
    audit_page = logged_in(admin_user).get(f"/console/auditentry/{step.pk}/change/").content.decode()
    assert f'<a href="{undo}">In the archive, to look at or restore (undo)</a>' in audit_page


def test_archive_search_finds_every_match_in_bounded_steps_and_restores_only_those(
    redis_client: redis.Redis, operator: User, viewer: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "SEARCH_ROWS", 120)  # each search request reads at most 120 rows
    raws = seed(redis_client, 700)
    redis_client.rpush(DLQ, b"not json", b"<script>alert(1)</script>")
    client = logged_in(operator)
    post(client, url("queue_matching", DLQ, "delete"), start="0")
    wanted = {row.pk for row in ArchivedItem.objects.all() if b'"camera_id": "cam2"' in bytes(row.raw)}
    assert len(wanted) == 140

    seen: list[int] = []
    address = url("archive") + f"?key={quote(DLQ)}&camera=cam2"
    while address:
        page = client.get(address)
        assert page.status_code == 200
        seen += [item.pk for item, _ in page.context["items"]]
        listing = page.context["listing"]
        assert listing.note.startswith("Searched 120 archived entries") or listing.continue_url == ""
        address = url("archive") + listing.continue_url if listing.continue_url else ""
        assert len(seen) <= 140
    assert sorted(seen) == sorted(wanted) and seen == sorted(seen, reverse=True), "each once, newest first"
    html = client.get(url("archive"), {"key": DLQ, "camera": "cam2"}).content.decode()
    assert "Restore all matching to dlq:detection_queue…" in html and 'data-testid="archive-scan"' in html
    assert (
        "Restore all matching"
        not in logged_in(viewer).get(url("archive"), {"key": DLQ, "camera": "cam2"}).content.decode()
    )
    bad = client.get(url("archive"), {"key": DLQ, "since": "yesterday"})
    assert bad.status_code == 302 and "'since' must be a date and time" in shown_messages(bad)[-1]

    scope = {"key": DLQ, "to": "dlq", "camera": "cam2"}
    partial = unescape(" ".join(client.get(url("archive_restore_all"), scope).content.decode().split()))
    assert f"Restore at least 24 archived entries of {DLQ} matching camera “cam2”" in partial
    assert "That many match among the newest 120 archived entries" in partial
    monkeypatch.setattr(archive, "SEARCH_ROWS", 5_000)
    confirm = unescape(" ".join(client.get(url("archive_restore_all"), scope).content.decode().split()))
    assert f"Restore 140 archived entries of {DLQ} matching camera “cam2” to {DLQ}." in confirm
    assert 'name="camera" value="cam2"' in confirm
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0.001}  # one batch per step
    data = {**scope, "start": "0", "nonce": views.new_nonce()}
    replies: list[dict[str, Any]] = []
    while not (replies and replies[-1]["finished"]):
        response = client.post(url("archive_restore_all"), data, HTTP_ACCEPT="application/json")
        replies.append(response.json())
        data |= {name: str(replies[-1][name]) for name in ("start", "nonce", "tally")}
        assert len(replies) < 10
    assert len(replies) >= 2 and replies[-1]["handled"] == replies[-1]["planned"] == 702
    assert replies[-1]["summary"] == (
        f"Restored 140 archived entries of {DLQ} to {DLQ}; 562 left archived (not matching the filter)."
    )
    assert redis_client.lrange(DLQ, 0, -1) == [raw for n, raw in enumerate(raws) if n % 5 == 2]
    assert ArchivedItem.objects.filter(state="archived").count() == 562
    audit = AuditEntry.objects.filter(action="archive.restore_all").last()
    assert audit is not None and audit.detail["filters"] == {"camera": "cam2"}


def test_restore_all_without_javascript_continues_through_progress_pages(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    raws = seed(redis_client, 300)
    client = logged_in(operator)
    post(client, url("queue_matching", DLQ, "delete"), start="0")
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0.001}  # one batch per step
    page = post(client, url("archive_restore_all"), key=DLQ, to="dlq", start="0")
    html = page.content.decode()
    assert page.status_code == 200 and "<progress" in html and "250 of 300 entries dealt with" in html
    assert 'name="key" value="dlq:detection_queue"' in html and 'name="to" value="dlq"' in html
    assert f"Back to the archive of {DLQ}</a>" in html
    state = page.context["state"]
    done = post(
        client, url("archive_restore_all"), key=DLQ, to="dlq", start=state.resume, tally=state.tally.dumps()
    )
    assert shown_messages(done) == [f"Restored 300 archived entries of {DLQ} to {DLQ}."]
    assert redis_client.lrange(DLQ, 0, -1) == raws


def test_restore_all_jobs_to_the_source_stops_when_it_is_full(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 4}
    redis_client.rpush(DLQ, b"not json")  # passed before the stop: counted as not restored
    seed(redis_client, 6)
    client = logged_in(operator)
    post(client, url("queue_matching", DLQ, "delete"), start="0")
    redis_client.rpush(TARGET, b"{}")
    confirm = client.get(url("archive_restore_all"), {"key": DLQ, "to": "source"}).content.decode()
    assert "their jobs to detection_queue" in confirm and "room for 3 more, so it stops after 3." in confirm
    response = post(client, url("archive_restore_all"), key=DLQ, to="source", start="0")
    assert response["Location"] == url("archive") + "?" + f"key={quote(DLQ)}"
    assert shown_messages(response) == [
        f"Restored 3 archived entries of {DLQ} to {TARGET}; stopped: {TARGET} is full (QUEUE_MAX_SIZE 4); "
        f"1 {archive.NOT_RESTORED}; 3 still to restore."
    ]
    assert message_levels(response) == ["warning"]
    pushed = [decode(raw).value["n"] for raw in redis_client.lrange(TARGET, 1, -1)]
    assert pushed == [0, 1, 2] and ArchivedItem.objects.filter(state="archived").count() == 4


def test_archive_restore_job_to_source_queue(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 2)
    row = archived_row(operator, redis_client)
    html = logged_in(operator).get(url("archive_item", row.pk)).content.decode()
    assert "Restore job to source queue" in html and "Decoded value" in html and "original_job" in html
    post(logged_in(operator), url("archive_restore"), id=str(row.pk), to="source")
    assert jobs(redis_client) == [0]


def test_archive_pages_fifty_rows(redis_client: redis.Redis, viewer: User) -> None:
    ArchivedItem.objects.bulk_create(
        ArchivedItem(key=DLQ, raw=b"x", fingerprint=f"{n:020x}", size=1, state="archived") for n in range(120)
    )
    client = logged_in(viewer)
    first = client.get(url("archive"))
    assert len(first.context["page"]) == 50 and f"items 1{DASH}50 of 120" in first.content.decode()
    last = client.get(url("archive") + first.context["pager"].last)
    assert len(last.context["page"]) == 20 and f"items 101{DASH}120 of 120" in last.content.decode()
    assert 'name="page" min="1" max="3" value="3" required' in last.content.decode()  # "Go to page"
    second = client.get(url("archive"), {"page": "2"}).content.decode()
    assert f"items 51{DASH}100 of 120" in second


# --- Audit ---------------------------------------------------------------------------------------


def test_every_mutation_is_audited(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 10)
    client = logged_in(operator)
    post(client, url("queue_selected", DLQ, "retry"), ref=refs(redis_client, 0))
    post(client, url("queue_selected", DLQ, "delete"), ref=refs(redis_client, 0))
    post(client, url("queue_matching", DLQ, "retry"), q="timed out", start="0")
    post(client, url("queue_matching", DLQ, "delete"), start="0")
    post(
        client,
        url("archive_restore"),
        id=[str(pk) for pk in ArchivedItem.objects.values_list("pk", flat=True)],
    )
    audit = list(AuditEntry.objects.order_by("pk").values_list("action", "username", "key", "count"))
    assert audit == [
        ("dlq.retry", "otto", DLQ, 1),
        ("dlq.delete", "otto", DLQ, 1),
        ("dlq.retry_all", "otto", DLQ, 3),
        ("dlq.delete_all", "otto", DLQ, 5),
        ("archive.restore", "otto", "", 6),
    ]
    detail = AuditEntry.objects.get(action="dlq.retry").detail
    assert detail["done"] == 1 and json.dumps(detail)


def test_edit_and_retry_page_previews_rules_and_diff_then_retries(
    operator: User, redis_client: redis.Redis
) -> None:
    job = {"camera_id": "porch", "file_path": "/export/porch/a.jpg", "timestamp": "2026-02-12T07:15:03"}
    failure_entry = {
        "original_job": job,
        "error": "x",
        "attempt_count": 3,
        "first_failed_at": "2026-02-12T07:15:04+00:00",
        "last_failed_at": "2026-02-12T07:15:05+00:00",
        "queue_name": "detection_queue",
    }
    redis_client.rpush("dlq:detection_queue", encode_payload(failure_entry))
    entry = dlq.page(redis_client, "dlq:detection_queue").entries[0]
    url = f"/queues/dlq%3Adetection_queue/entry/{entry.index}/{entry.id}/edit/"
    client = logged_in(operator)
    page = client.get(url)
    assert page.status_code == 200 and "/export/porch/a.jpg" in page.content.decode()
    bad = client.post(url, {"job": json.dumps({**job, "file_path": "../etc/passwd"}), "confirm": "no"})
    assert "absolute path" in bad.content.decode() and redis_client.llen("dlq:detection_queue") == 1
    edited = json.dumps({**job, "camera_id": "garage"})
    preview = client.post(url, {"job": edited, "confirm": "no"})
    assert '+  "camera_id": "garage"' in unescape(preview.content.decode())
    assert redis_client.llen("dlq:detection_queue") == 1, "a preview changes nothing"
    previewed = preview.context["digest"]
    # Changed in the text box after the preview: shown again, not retried.
    unseen = json.dumps({**job, "camera_id": "driveway"})
    again = client.post(url, {"job": unseen, "confirm": "yes", "nonce": "n-0", "previewed": previewed})
    assert again.status_code == 200 and "changed after its preview" in again.content.decode()
    assert '+  "camera_id": "driveway"' in unescape(again.content.decode())
    assert redis_client.llen("dlq:detection_queue") == 1 and not redis_client.exists("detection_queue")
    done = client.post(url, {"job": edited, "confirm": "yes", "nonce": "n-1", "previewed": previewed})
    assert done.status_code == 302
    assert json.loads(redis_client.lindex("detection_queue", 0) or b"") == {**job, "camera_id": "garage"}
    assert redis_client.llen("dlq:detection_queue") == 0


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_an_edited_job_nested_too_deeply_gets_a_sentence(redis_client: redis.Redis, operator: User) -> None:
    """JSON deeper than Python can read (``RecursionError``, not ``ValueError``) is bad JSON like any
    other: the page says so and nothing moves; a deep job Python can read still retries."""
    seed(redis_client, 1)
    client = logged_in(operator)
    entry = dlq.page(redis_client, DLQ).entries[0]
    edit = url("queue_edit", DLQ, entry.index, entry.id)
    base = '{"camera_id": "cam1", "file_path": "/export/cam/1.jpg", "timestamp": "2026-02-12T07:15:03", "x": '
    unreadable = base + nested(200_000) + "}"
    response = client.post(edit, {"job": unreadable, "confirm": "yes", "nonce": views.new_nonce()})
    assert response.status_code == 200
    assert "The job is not valid JSON: it is nested too deeply to read." in response.content.decode()
    assert redis_client.llen(DLQ) == 1 and not redis_client.exists(TARGET)
    readable = base + nested(800) + "}"
    digest = client.post(edit, {"job": readable}).context["digest"]
    done = client.post(
        edit, {"job": readable, "confirm": "yes", "nonce": views.new_nonce(), "previewed": digest}
    )
    assert done.status_code == 302 and decode(redis_client.lindex(TARGET, 0)).value == json.loads(readable)


def test_a_bulk_step_with_a_tally_nested_too_deeply_starts_a_fresh_one(
    redis_client: redis.Redis, operator: User
) -> None:
    seed(redis_client, 3)
    data = {"start": "0", "nonce": views.new_nonce(), "tally": nested(200_000)}
    reply = logged_in(operator).post(
        url("queue_matching", DLQ, "retry"), data, HTTP_ACCEPT="application/json"
    )
    assert reply.status_code == 200 and (reply.json()["finished"], reply.json()["done"]) == (True, 3)


def test_viewer_cannot_edit_and_retry(viewer: User, redis_client: redis.Redis) -> None:
    response = logged_in(viewer).post("/queues/dlq%3Adetection_queue/entry/0/abcd/edit/", {"confirm": "yes"})
    assert response.status_code == 403


def test_a_queue_name_holding_another_type_is_named_not_taken_for_an_outage(
    redis_client: redis.Redis, operator: User
) -> None:
    """HSI writes its queues as lists or streams; a key under such a name holding something else
    makes Redis refuse the console's commands (WRONGTYPE). That is no outage: the list says what the
    key holds, and its pages answer 409 with a sentence, changing nothing."""
    weird, stream = "dlq:weird_queue", "detections:stream:dlq"
    redis_client.set(weird, "not a list")
    redis_client.rpush(stream, b"a list where a stream belongs")
    client = logged_in(operator)
    html = " ".join(unescape(client.get(reverse("admin:queue_list")).content.decode()).split())
    assert "holds a string, not a list: HSI never writes one under this name" in html
    assert "holds a list, not a stream" in html
    row = re.search(rf'<tr data-key="{weird}".*?</tr>', html, re.S)
    assert row is not None and "0% of" not in row.group(0), "no fill for a key that is no list"
    rows = {row["key"]: row for row in client.get("/api/queues/").json()["queues"]}
    assert (rows[weird]["stored_type"], rows[stream]["stored_type"]) == ("string", "list")
    assert rows["dlq:detection_queue"]["stored_type"] is None

    sentence = (
        f"The key {weird} holds another kind of value than HSI writes under its name, so Redis refused "
        f"the command (LLEN {weird}). Redis itself is fine and nothing was changed; "
        f"redis-cli TYPE {weird} says what the key holds."
    )
    for url in (reverse("admin:queue_items", args=[weird]), reverse("admin:queue_breakdown", args=[weird])):
        page = client.get(url)
        assert page.status_code == 409, url
        text = " ".join(unescape(page.content.decode()).split())
        assert text.count("<h1>Key of another type</h1>") == 1 and "Redis unavailable" not in text
        assert 'href="/queues/"' in text and "Back to the queues" in text, "in the console, not a bare page"
        assert "holds another kind of value than HSI writes under its name" in text
    assert sentence in " ".join(
        unescape(client.get(reverse("admin:queue_items", args=[weird])).content.decode()).split()
    )
    api = client.get(f"/api/queues/{quote(weird, safe='')}/items/")
    assert (api.status_code, api.json()) == (409, {"error": "wrong_type", "detail": sentence})
    assert client.get(reverse("admin:queue_items", args=[stream])).status_code == 409
    retry = client.post(
        f"/api/dlq/{quote(weird, safe='')}/retry/", json.dumps({"all": True}), content_type="application/json"
    )
    assert (retry.status_code, retry.json()["error"]) == (409, "wrong_type")
    assert redis_client.get(weird) == b"not a list" and redis_client.lrange(stream, 0, -1) == [
        b"a list where a stream belongs"
    ]
    assert not redis_client.exists("weird_queue")
    with pytest.raises(CommandError, match=r"holds another kind of value than HSI writes under its name"):
        call_command("dlq", "retry", weird, "--all", stdout=StringIO(), stderr=StringIO())
