"""Entries of many megabytes: a page reads only its share of them, actions still move them whole.

A list entry cannot be read in part, so ``peek.lua`` cuts each entry over ``dlq.READ_WHOLE`` bytes
inside Redis and sends its size, head and end. What each test measures could fail: the bytes
Redis sends a page (``total_net_output_bytes``), the memory its Lua keeps afterwards, what a page
says of a cut entry, and what an action moves.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import tracemalloc
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import zstandard
from django.contrib.auth.models import User
from django.template.defaultfilters import filesizeformat

from console.models import ArchivedItem
from queues import actions, archive, dlq, inventory, scripts
from queues.codec import decode_head, leading_fields
from tests.conftest import logged_in
from tests.factories import failure
from tests.redis_server import RedisServer
from tests.test_queue_pages import post, url

DLQ, TARGET = "dlq:detection_queue", "detection_queue"
MB = 1024 * 1024


def large(n: int, *, size: int = 5 * MB, field: str = "response_body") -> bytes:
    """A plain-JSON DLQ entry of about ``size`` bytes: the usual fields first, one huge one last."""
    entry = {
        "original_job": {"camera_id": f"cam{n}", "file_path": f"/export/cam{n}/{n}.jpg", "n": n},
        "error": f"Detector answered 500 for frame {n}",
        "error_type": "HTTPStatusError",
        "attempt_count": 3,
        "first_failed_at": "2026-11-30T10:00:00+00:00",
        "last_failed_at": f"2026-11-30T10:{n % 60:02d}:00+00:00",
        "queue_name": "detection_queue",
        field: f"<html>{n}" + "x" * size,
    }
    return json.dumps(entry).encode()


def sent_by(client: redis.Redis, work: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes Redis sent to all its clients while ``work`` ran, and what it returned."""
    before = int(client.info("stats")["total_net_output_bytes"])
    result = work()
    return int(client.info("stats")["total_net_output_bytes"]) - before, result


def text_of(response: Any) -> str:
    return " ".join(unescape(response.content.decode()).split())


def test_a_page_gets_the_head_size_and_id_of_large_entries_not_their_bytes(redis_client: redis.Redis) -> None:
    raws = [large(n, size=300_000) for n in range(20)]
    small = b'{"original_job": {"camera_id": "porch"}}'
    redis_client.rpush(DLQ, small, *raws)
    sent, page = sent_by(redis_client, lambda: dlq.page(redis_client, DLQ, 0, 21))
    assert sent < 2 * MB, f"{sent:,} bytes for a page of 20 entries of 300 KB"
    assert page.total == 21 and [e.index for e in page.entries] == list(range(21))
    assert page.entries[0].cut is None and page.entries[0].raw == small
    for entry, raw in zip(page.entries[1:], raws, strict=True):
        assert entry.cut == dlq.Cut(len(raw), raw[-dlq.READ_TAIL :])
        assert entry.raw == raw[: dlq.READ_WHOLE]
        assert entry.id == dlq.fingerprint(raw), "the id a page gives is the whole entry's"
        assert entry.decoded.size == len(raw)
    assert len({e.id for e in page.entries}) == 21
    newest = dlq.page(redis_client, DLQ, 0, 21, newest_first=True).entries
    assert [(e.index, e.id) for e in newest] == [(e.index, e.id) for e in reversed(page.entries)]


def test_a_page_of_entries_of_megabytes_stops_reading_at_its_budget(
    redis_client: redis.Redis, operator: User
) -> None:
    """Every byte read inside Redis costs it time, so one read stops after READ_BUDGET bytes (one
    entry at least); the page says so and continues from there, and a filter reads on through."""
    raws = [large(n) for n in range(20)]
    redis_client.rpush(DLQ, *raws)
    first = dlq.page(redis_client, DLQ, 0, 20)
    read = len(first.entries)
    assert 1 <= read <= 3 and first.unread == 20 - read
    assert sum(e.cut.size for e in first.entries if e.cut) <= dlq.READ_BUDGET + 5 * MB
    newest = dlq.page(redis_client, DLQ, 0, 20, newest_first=True).entries
    assert [e.index for e in newest] == list(range(19, 19 - len(newest), -1)), "read from the newest"

    client = logged_in(operator)
    response = client.get(url("queue_items", DLQ), {"size": 20})
    html = text_of(response)
    assert f"This page read {read} of its 20 entries" in html and "at most 8 MB" in html
    link = re.search(
        rf'href="(\?[^"]*offset={read}[^"]*)"[^>]*>Read the next entries', response.content.decode()
    )
    assert link is not None
    pager_next = re.search(r'href="(\?[^"]*)" rel="next"', response.content.decode())
    assert pager_next is not None and f"offset={read}" in pager_next.group(1), "next skips no entry"
    following = text_of(client.get(url("queue_items", DLQ) + unescape(link.group(1))))
    assert f"Detector answered 500 for frame {read}" in following

    found = text_of(client.get(url("queue_items", DLQ), {"camera": "cam17", "size": "100"}))
    assert "Detector answered 500 for frame 17" in found and "frame 16" not in found


def retry_selected(client: redis.Redis) -> object:
    page = dlq.page(client, DLQ)
    return dlq.retry(client, DLQ, dlq.resolve(client, DLQ, [(e.index, e.id) for e in page.entries]))


LARGE_ACTIONS = {  # each empties a DLQ of one 40 MB entry, through a different script
    "retry selected (move.lua)": retry_selected,
    "retry-all (retry_run.lua)": lambda client: dlq.retry_all(client, DLQ),
    "delete-all (rotate.lua)": lambda client: dlq.sweep(client, DLQ, dlq.delete_window, dlq.delete_keep()),
}


@pytest.mark.parametrize("action", LARGE_ACTIONS)
def test_redis_lua_keeps_nothing_of_an_entry_an_action_moved(redis_client: redis.Redis, action: str) -> None:
    """An action reads a large entry whole and is sent it whole (to compare): Redis kept it in ARGV
    until the next call, and in Lua's memory until the collector got to it (after every selected
    retry of a 40 MB entry, after a third of retry-alls and delete-alls). Each call that was given or
    read a megabyte or more now lets it go before it returns."""
    redis_client.rpush("dlq:small", *[failure(n, trace=n % 3 == 0) for n in range(2000)])
    mix = random.Random(11)
    for i in range(6):
        for _ in range(mix.randint(0, 30)):
            dlq.page(redis_client, "dlq:small", offset=mix.randint(0, 1900), limit=mix.randint(1, 100))
        redis_client.delete(TARGET)
        redis_client.rpush(DLQ, large(i, size=40 * MB))
        before = int(redis_client.info("memory")["used_memory_lua"])
        LARGE_ACTIONS[action](redis_client)
        assert redis_client.llen(DLQ) == 0
        grown = int(redis_client.info("memory")["used_memory_lua"]) - before
        assert grown < 4 * MB, f"round {i}: Redis's Lua still holds {grown:,} bytes after {action} of 40 MB"


def test_entries_that_differ_only_past_the_head_have_different_ids(redis_client: redis.Redis) -> None:
    one, other = large(1), bytearray(large(1))
    other[len(other) // 2] = ord("y")  # same size, same head, same end
    redis_client.rpush(DLQ, one, bytes(other))
    first, second = dlq.page(redis_client, DLQ).entries
    assert first.id == second.id, "a page cannot tell them apart: it reads neither's middle"
    picked = dlq.resolve(redis_client, DLQ, [(1, second.id)])
    assert [e.raw for e in picked] in ([one], [bytes(other)]) and picked[0].cut is None


def test_redis_lua_keeps_nothing_of_what_a_page_read(redis_client: redis.Redis) -> None:
    """Lua frees what a call read when its collector gets to it, which depends on what ran before:
    between pages of a 40 MB entry, pages of small entries (a fixed pseudo-random mix) take it
    through many states. Before the call collected itself, one such page in 14 left the entry in
    Lua's memory (21 of 300 in a probe)."""
    redis_client.rpush(DLQ, large(1, size=40 * MB))
    redis_client.rpush("dlq:small", *[failure(n, trace=n % 3 == 0) for n in range(2000)])
    dlq.page(redis_client, DLQ)  # loads the script
    mix = random.Random(7)
    for i in range(40):
        for _ in range(mix.randint(0, 30)):
            dlq.page(redis_client, "dlq:small", offset=mix.randint(0, 1900), limit=mix.randint(1, 100))
        before = int(redis_client.info("memory")["used_memory_lua"])
        assert dlq.page(redis_client, DLQ).entries[0].cut is not None
        grown = int(redis_client.info("memory")["used_memory_lua"]) - before
        assert grown < 4 * MB, (
            f"page {i}: Redis's Lua still holds {grown:,} bytes after reading a 40 MB entry"
        )


def test_the_dlq_page_shows_what_precedes_the_cut_and_says_how_much_was_read(
    redis_client: redis.Redis, operator: User
) -> None:
    raws = [large(n, size=600_000) for n in range(12)]
    redis_client.rpush(DLQ, *raws)
    client = logged_in(operator)
    sent, response = sent_by(redis_client, lambda: client.get(url("queue_items", DLQ), {"size": 100}))
    assert response.status_code == 200
    assert sent < 2 * MB, f"{sent:,} bytes read from Redis for a page of 12 entries of 600 KB"
    assert len(response.content) < 500_000
    html = text_of(response)
    for n in range(12):
        assert f"Detector answered 500 for frame {n}" in html and f"cam{n}" in html
    assert html.count("too large to read whole here") == 12
    assert f"only the first 65,536 of {len(raws[0]):,} bytes were read" in html
    assert "<html>0" not in response.content.decode(), "the value is escaped"
    assert " ".join(filesizeformat(len(raws[0])).split()) in html, "the size column shows the stored size"


def test_the_api_gives_the_size_and_id_of_a_cut_entry_and_no_partial_payload(
    redis_client: redis.Redis, operator: User
) -> None:
    raw = large(7)
    redis_client.rpush(DLQ, raw)
    body = logged_in(operator).get("/api/queues/dlq%3Adetection_queue/items/").json()
    (item,) = body["items"]
    assert item["id"] == dlq.fingerprint(raw) and item["size"] == len(raw)
    assert item["payload"] is None and item["encoding"] == ["cut"]
    assert item["error"].startswith("too large to read whole here (only the first 65,536 of")


def test_the_entry_page_of_a_large_entry_is_bounded_and_shows_its_facts(
    redis_client: redis.Redis, operator: User
) -> None:
    raw = large(3, field="stack_trace")
    redis_client.rpush(DLQ, raw)
    entry = dlq.page(redis_client, DLQ).entries[0]
    sent, response = sent_by(
        redis_client, lambda: logged_in(operator).get(url("queue_entry", DLQ, 0, entry.id))
    )
    assert response.status_code == 200 and sent < MB
    html = text_of(response)
    assert "Detector answered 500 for frame 3" in html and "/export/cam3/3.jpg" in html
    assert f"{len(raw):,} bytes stored" in html or f"{len(raw)} bytes stored" in html
    assert "only the first 65,536" in html


def test_retry_and_delete_of_selected_large_entries_move_them_whole(
    redis_client: redis.Redis, operator: User
) -> None:
    raws = [large(n, size=3 * MB) for n in range(3)]
    redis_client.rpush(DLQ, *raws)
    client = logged_in(operator)
    page = dlq.page(redis_client, DLQ).entries
    response = post(client, url("queue_selected", DLQ, "retry"), ref=[page[0].ref, page[2].ref])
    assert response.status_code == 302
    jobs = [json.loads(job) for job in redis_client.lrange(TARGET, 0, -1)]
    assert [job["n"] for job in jobs] == [0, 2]
    assert redis_client.lrange(DLQ, 0, -1) == [raws[1]]

    post(client, url("queue_selected", DLQ, "delete"), ref=dlq.page(redis_client, DLQ).entries[0].ref)
    assert redis_client.llen(DLQ) == 0
    assert bytes(ArchivedItem.objects.get().raw) == raws[1], "the archive keeps the whole entry"


def peak_of(work: Callable[[], Any]) -> tuple[int, Any]:
    """The most memory Python held while ``work`` ran (``tracemalloc``), and what it returned."""
    tracemalloc.start()
    try:
        result = work()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("verb", ["retry", "delete"])
@pytest.mark.django_db
def test_selected_large_entries_are_held_whole_a_few_megabytes_at_a_time(
    redis_client: redis.Redis, verb: str
) -> None:
    """A selection is resolved as pages read it (cut) and read whole run by run just before it
    moves, so an action holds a few megabytes, not the whole selection; the entries of later runs
    moved up as earlier runs removed entries ahead of them, and each is still found."""
    raws = [large(n, size=3 * MB) for n in range(24)]
    redis_client.rpush(DLQ, *raws)
    shown: list[dlq.Entry] = []
    while len(shown) < 24:  # a page reads 8 MB: the next one goes on from there
        shown += dlq.page(redis_client, DLQ, len(shown), 24 - len(shown)).entries
    refs = [e.ref for e in shown if e.index % 2 == 0]
    assert len(refs) == 12 and all(e.cut for e in shown)
    peak, (outcome, _) = peak_of(
        lambda: actions.act_on_selected(redis_client, DLQ, refs, verb=verb, request=None)
    )
    assert outcome.done == 12 and outcome.skipped_count == 0, outcome.as_dict()
    assert peak < 3 * dlq.READ_BUDGET + 8 * MB, f"{peak:,} bytes held for 36 MB of entries selected"
    assert redis_client.lrange(DLQ, 0, -1) == raws[1::2]
    if verb == "retry":
        assert [json.loads(job)["n"] for job in redis_client.lrange(TARGET, 0, -1)] == list(range(0, 24, 2))
    else:
        assert [bytes(row.raw) for row in ArchivedItem.objects.order_by("pk")] == raws[::2]


def test_edit_and_retry_of_a_large_entry_edits_its_job_or_says_why_not(
    redis_client: redis.Redis, operator: User
) -> None:
    """The edit page reads the entry as pages do: a job that ends before the cut is edited and
    retried (the retry reads the entry whole); one that does not gets a sentence, not a 404."""
    small_job = large(1)
    huge_job = json.dumps(
        {"original_job": {"camera_id": "cam2", "blob": "y" * 100_000}, "error": "x"}
    ).encode()
    redis_client.rpush(DLQ, small_job, huge_job)
    first, second = dlq.page(redis_client, DLQ).entries
    client = logged_in(operator)
    page = client.get(url("queue_edit", DLQ, first.index, first.id))
    assert page.status_code == 200 and "/export/cam1/1.jpg" in text_of(page)
    refused = client.get(url("queue_edit", DLQ, second.index, second.id))
    assert refused.status_code == 409
    assert "This entry has no job the console can edit: too large to read whole here" in text_of(refused)
    assert "no longer in" not in text_of(refused)

    edited = {
        **json.loads(small_job)["original_job"],
        "camera_id": "porch",
        "timestamp": "2026-11-30T10:00:00",
    }
    outcome, errors = actions.edit_and_retry(redis_client, DLQ, first.ref, json.dumps(edited), request=None)
    assert errors == [] and outcome is not None and outcome.done == 1, errors
    assert [json.loads(job) for job in redis_client.lrange(TARGET, 0, -1)] == [edited]
    assert redis_client.lrange(DLQ, 0, -1) == [huge_job], "the whole entry was compared and removed"


def test_a_cut_entry_that_moved_since_the_page_is_found_near_and_one_replaced_is_left(
    redis_client: redis.Redis,
) -> None:
    raw = large(1)
    redis_client.rpush(DLQ, raw)
    (entry,) = dlq.page(redis_client, DLQ).entries
    redis_client.lpush(DLQ, b"pushed in front")  # the index the page saw now holds another entry
    (whole,) = dlq.read_whole(redis_client, DLQ, [entry])
    assert (whole.raw, whole.cut, whole.index) == (raw, None, 0), "found near, read whole, hint kept"
    outcome = dlq.retry(redis_client, DLQ, [entry])
    assert outcome.done == 1 and redis_client.lrange(DLQ, 0, -1) == [b"pushed in front"]
    assert json.loads(redis_client.lindex(TARGET, 0) or b"")["camera_id"] == "cam1"

    redis_client.rpush(DLQ, raw)
    (entry,) = dlq.page(redis_client, DLQ, 1, 1).entries
    redis_client.lset(DLQ, 1, cast(Any, large(2)))  # gone: another entry where it was
    assert dlq.read_whole(redis_client, DLQ, [entry]) == []
    outcome = dlq.retry(redis_client, DLQ, [entry])
    assert (outcome.done, outcome.skipped_count, redis_client.llen(TARGET)) == (0, 1, 1)


def test_filters_and_the_breakdown_read_the_fields_before_the_cut(
    redis_client: redis.Redis, operator: User
) -> None:
    redis_client.rpush(DLQ, *[large(n, size=MB) for n in range(6)])
    client = logged_in(operator)
    sent, response = sent_by(redis_client, lambda: client.get(url("queue_items", DLQ), {"camera": "cam4"}))
    html = text_of(response)
    assert response.status_code == 200 and sent < MB
    assert "Detector answered 500 for frame 4" in html and "frame 3" not in html
    breakdown = client.get(url("queue_breakdown", DLQ))
    assert breakdown.status_code == 200 and "HTTPStatusError" in text_of(breakdown)


def test_the_queue_list_ages_a_large_head_entry_without_reading_it(
    redis_client: redis.Redis, operator: User
) -> None:
    redis_client.rpush(DLQ, large(1, size=20 * MB))
    sent, queues = sent_by(
        redis_client, lambda: inventory.measure(redis_client, inventory.discover(redis_client).found)
    )
    row = next(q for q in queues if q.key == DLQ)
    assert sent < MB and row.length == 1
    assert row.oldest_age_seconds is not None, "first_failed_at precedes the cut"
    response = logged_in(operator).get(url("queue_list"))
    assert response.status_code == 200 and DLQ in response.content.decode()


def test_a_large_zstd_entry_is_listed_with_why_it_is_not_decoded(
    redis_client: redis.Redis, operator: User
) -> None:
    text = json.dumps({"original_job": {"camera_id": "porch"}, "noise": os.urandom(MB).hex()}).encode()
    raw = b"Z:" + base64.b64encode(zstandard.ZstdCompressor().compress(text))
    assert len(raw) > dlq.READ_WHOLE
    redis_client.rpush(DLQ, raw)
    html = text_of(logged_in(operator).get(url("queue_items", DLQ)))
    assert "Z: zstd, which cannot be decompressed from a part" in html


def script_calls(client: redis.Redis) -> int:
    stats: Any = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "evalsha_ro"))


def test_retry_all_of_large_entries_moves_each_whole_a_few_megabytes_per_call(
    redis_client: redis.Redis,
) -> None:
    """retry_run.lua reads its run with read_range, so a call stops after READ_BUDGET bytes: a DLQ of
    large entries takes many calls, none reading them all at once (one read 530 MB and held Redis
    for 3.3 s), and every job arrives once, whole."""
    raws = [large(n, size=3 * MB) for n in range(12)] + [large(n, size=10) for n in range(12, 20)]
    redis_client.rpush(DLQ, *raws)
    calls = script_calls(redis_client)
    outcome, _ = dlq.retry_all(redis_client, DLQ, budget_seconds=60)
    assert outcome.done == 20 and not redis_client.exists(DLQ)
    assert [json.loads(job)["n"] for job in redis_client.lrange(TARGET, 0, -1)] == list(range(20))
    assert script_calls(redis_client) - calls >= 12 * 3 * MB // dlq.READ_BUDGET
    kept = outcome.moved  # for the audit: each entry's id, and no more of a large one than a page reads
    assert [e.id for e in kept] == [dlq.fingerprint(raw) for raw in raws]
    assert sum(len(e.raw) for e in kept) < 20 * dlq.READ_WHOLE


def test_lua_reads_list_entries_with_the_sizes_python_cuts_at() -> None:
    lib = (Path(scripts.__file__).parent / "lua" / "lib.lua").read_text()
    assert re.search(rf"^local LARGE_ENTRY = {dlq.READ_WHOLE} ", lib, re.M)
    assert re.search(rf"^local CUT_TAIL = {dlq.READ_TAIL} ", lib, re.M)


def test_delete_all_of_large_entries_archives_each_whole_a_few_megabytes_per_call(
    redis_client: redis.Redis, db: None
) -> None:
    """Python's windows (delete, filtered actions, Z: entries) are read by peek.lua without a cut:
    whole entries, a few megabytes per window, not BATCH_SIZE entries whatever they weigh."""
    raws = [large(n, size=3 * MB) for n in range(8)]
    redis_client.rpush(DLQ, *raws)

    def archived(client: redis.Redis, key: str, window: dlq.Window) -> tuple[int, dlq.Outcome]:
        sizes.append(sum(len(entry.raw) for entry, _ in window))
        return archive.archive_and_rotate(client, key, window, "tester")

    sizes: list[int] = []
    outcome, _ = dlq.sweep(redis_client, DLQ, archived, dlq.delete_keep(), budget_seconds=60)
    assert outcome.done == 8 and not redis_client.exists(DLQ)
    assert [bytes(row.raw) for row in ArchivedItem.objects.order_by("id")] == raws
    assert len(sizes) >= 3 and max(sizes) <= dlq.READ_BUDGET + 3 * MB + 1000


def test_putting_back_large_entries_moves_them_in_order_a_few_per_call(redis_client: redis.Redis) -> None:
    raws = [large(n, size=3 * MB) for n in range(6)]
    redis_client.rpush(DLQ, b"kept", *raws)
    assert 1 <= scripts.put_back(redis_client, DLQ, 7) < 7, "the first call stops at its budget"
    redis_client.delete(DLQ)
    redis_client.rpush(DLQ, *raws, b"kept")
    outcome, position = dlq.put_back(redis_client, DLQ, start=1, unexamined=6)
    assert (outcome.put_back, position) == (6, 7)
    assert redis_client.lrange(DLQ, 0, -1) == [b"kept", *raws]


# --- Reading the head of a value ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ('{"a": 1, "b": "two", "c": [1, {"d": null}], "e": 12', {"a": 1, "b": "two", "c": [1, {"d": None}]}),
        ('{"a": 1, "b": 12}', {"a": 1, "b": 12}),
        (' { "a" : "x\\"y" ,"b": tru', {"a": 'x"y'}),
        ('{"a": "unterminated', {}),
        ('{"a": 1 "b": 2}', {}),
        ("[1, 2, 3]", None),
        ("plain text", None),
        ('{"deep": ' + "[" * 100_000, {}),
    ],
)
def test_leading_fields_keeps_members_that_end_before_the_cut(
    text: str, fields: dict[str, Any] | None
) -> None:
    assert leading_fields(text) == fields


def test_a_character_split_by_the_cut_is_left_out_and_invalid_utf8_is_not_parsed() -> None:
    head = '{"error": "caméra", "x": "é'.encode()[:-1]  # cut inside the last é
    decoded = decode_head(head, 10 * MB)
    assert decoded.value == {"error": "caméra"} and decoded.size == 10 * MB
    assert decoded.display().endswith(
        f"… only the first {len(head):,} of {10 * MB:,} bytes were read; the fields before the cut are "
        "shown (1 of them)"
    )
    binary = decode_head(b'{"a": 1, "b": "\xff\xfe', 10 * MB)
    assert binary.value is None and re.match(r"^7b 22 61", binary.display())


def test_a_large_entry_that_moved_is_found_by_lpos_not_read_in_blocks(redis_client: redis.Redis) -> None:
    raws = [large(n, size=2 * MB) for n in range(6)]
    redis_client.rpush(DLQ, *raws)
    redis_client.lpush(DLQ, b"one", b"two")  # every entry two places further than the hint says
    before = redis_client.info("commandstats")
    statuses = scripts.move_entries(redis_client, DLQ, TARGET, [scripts.Move(3, raws[3], b"job 3")])
    after = redis_client.info("commandstats")
    assert statuses == ["ok"] and redis_client.lrange(TARGET, 0, -1) == [b"job 3"]
    assert redis_client.lrange(DLQ, 0, -1) == [b"two", b"one", *raws[:3], *raws[4:]]
    calls = {name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"] for name in after}
    assert calls.get("cmdstat_lpos") == 1 and not calls.get("cmdstat_lrange"), calls


def test_a_small_entry_that_moved_among_large_ones_is_found_without_reading_them_all(
    start_server: Callable[..., RedisServer],
) -> None:
    """``move.lua`` looks for a small entry that left its hint in blocks of 250 neighbours; blocks of
    entries of megabytes are read only up to READ_BUDGET bytes, then LPOS finds it in place. Redis's
    own memory peak shows what the call read: a fresh server, so no earlier test's peak hides it."""
    client = start_server().client()
    small = failure(7)
    for n in range(40):  # 80 MB around it, one command each (a command's arguments count to the peak)
        client.rpush(DLQ, large(n, size=2 * MB))
        if n == 19:
            client.rpush(DLQ, small)
    client.lpop(DLQ, 3)  # it is at 17 now; the page saw it at 20
    peak = client.info("memory")["used_memory_peak"]
    assert scripts.move_entries(client, DLQ, TARGET, [scripts.Move(20, small, b"job 7")]) == ["ok"]
    rise = client.info("memory")["used_memory_peak"] - peak
    assert client.lrange(TARGET, 0, -1) == [b"job 7"] and client.lpos(DLQ, cast(Any, small)) is None
    assert client.llen(DLQ) == 37
    assert rise < 3 * dlq.READ_BUDGET, (
        f"the call took Redis {rise:,} bytes over its peak for 80 MB of neighbours"
    )
