"""Stream DLQs: paging by id and retry back to the stream, atomically, without trimming."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import redis

from queues import streams

DLQ, STREAM = "detections:stream:dlq", "detections:stream"
DLQ_FIELDS = {"dlq_reason": "max_delivery_exceeded", "delivery_count": "3"}


def fill(client: redis.Redis, count: int) -> list[str]:
    ids = []
    for n in range(count):
        fields: dict[Any, Any] = {"camera_id": "porch", "detection_id": str(n), "file_path": f"/x/{n}.jpg"}
        fields |= {"original_message_id": f"{n}-0", **DLQ_FIELDS}
        ids.append(streams.as_text(client.xadd(DLQ, fields)))
    return ids


def stream_fields(client: redis.Redis, key: str) -> list[dict[Any, Any]]:
    entries: Any = client.xrange(key)
    return [dict(fields) for _, fields in entries]


def test_page_by_id_both_directions(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 7)
    first = streams.page(redis_client, DLQ, limit=3)
    assert [e.id for e in first.entries] == ids[:3] and first.total == 7 and first.next_id == ids[2]
    second = streams.page(redis_client, DLQ, after=first.next_id or "-", limit=3)
    assert [e.id for e in second.entries] == ids[3:6]
    newest = streams.page(redis_client, DLQ, limit=2, newest_first=True)
    assert [e.id for e in newest.entries] == [ids[6], ids[5]]
    assert newest.entries[0].job == {"camera_id": "porch", "detection_id": "6", "file_path": "/x/6.jpg"}


def test_retry_moves_original_fields_once(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 3)
    outcome = streams.retry(redis_client, DLQ, [ids[0], ids[2]])
    assert (outcome.done, outcome.target) == (2, STREAM)
    moved = stream_fields(redis_client, STREAM)
    assert [fields[b"detection_id"] for fields in moved] == [b"0", b"2"]
    assert all(b"dlq_reason" not in fields for fields in moved)
    assert redis_client.xlen(DLQ) == 1
    again = streams.retry(redis_client, DLQ, [ids[0]])
    assert again.done == 0 and again.skipped_count == 1 and redis_client.xlen(STREAM) == 2


def test_full_stream_is_not_trimmed(redis_client: redis.Redis, settings) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 2}
    redis_client.xadd(STREAM, {"camera_id": "old"})
    ids = fill(redis_client, 3)
    outcome = streams.retry(redis_client, DLQ, ids)
    assert outcome.done == 1 and outcome.full
    assert redis_client.xlen(STREAM) == 2 and redis_client.xlen(DLQ) == 2


# --- Ids, the archive format, retry-all in resumable chunks --------------------------------------

BINARY = b"\xff\xd8\xff\xe0 not utf-8"


def retry_all(client: redis.Redis, after: str = "-", budget: float = 60.0) -> tuple[Any, str, int]:
    return streams.sweep(client, DLQ, streams.retry_entries, budget_seconds=budget, after=after)


def test_entry_ids_are_checked_against_redis_limits() -> None:
    assert streams.is_entry_id("1700000000000-0") and streams.is_entry_id(f"{2**64 - 1}-{2**64 - 1}")
    for bad in ("99999999999999999999-0", "1-99999999999999999999", "1", "-", "1-0 ", "a-b", ""):
        assert not streams.is_entry_id(bad), bad
    assert streams.entry_ids(["2-0", "junk", "1-0", "2-0", " 3-1 "]) == ["2-0", "1-0", "3-1"]


def test_archive_format_keeps_text_readable_and_binary_exact() -> None:
    text = streams.Stored("5-1", ((b"camera_id", "pörch".encode()), (b"dlq_reason", b"x")))
    record = json.loads(text.archived())
    assert record == {"format": 1, "id": "5-1", "fields": {"camera_id": "pörch", "dlq_reason": "x"}}
    binary = streams.Stored("6-0", ((b"camera_id", b"porch"), (b"thumb", BINARY)))
    record = json.loads(binary.archived())
    assert record["encoding"] == "base64" and base64.b64decode(record["fields"]["dGh1bWI="]) == BINARY
    for entry in (text, binary):
        assert streams.Stored.from_archive(entry.archived()) == entry
    assert binary.job_fields == binary.fields and text.job_fields == ((b"camera_id", "pörch".encode()),)
    for garbage in (b"not json", b"[]", b'{"id": 1, "fields": {}}', b'{"id": "1-0"}'):
        with pytest.raises(ValueError, match="not an archived stream entry"):
            streams.Stored.from_archive(garbage)


def test_read_returns_exact_bytes_of_the_ids_still_there(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 3)
    odd = streams.as_text(redis_client.xadd(DLQ, {"thumb": BINARY, "dlq_reason": "x"}))
    found = streams.read(redis_client, DLQ, [odd, "1-1", ids[1]])
    assert [e.id for e in found] == [odd, ids[1]]
    assert found[0].fields == ((b"thumb", BINARY), (b"dlq_reason", b"x"))


def test_retry_all_runs_in_batches_and_resumes_after_a_full_stream(
    redis_client: redis.Redis, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "BATCH_SIZE", 4)
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 7}
    ids = fill(redis_client, 10)
    outcome, position, kept = retry_all(redis_client)
    assert (outcome.done, outcome.full, position, kept, outcome.remaining) == (7, True, ids[6], 0, 3)
    assert "Retried 7 of detections:stream:dlq to detections:stream; stopped: detections:stream is full" in (
        outcome.summary("Retried")
    )
    assert outcome.summary("Retried").endswith("; 3 not examined yet.")
    assert redis_client.xlen(STREAM) == 7 and redis_client.xlen(DLQ) == 3
    redis_client.delete(STREAM)  # consumers made room
    again, position, kept = retry_all(redis_client, after=position)
    assert (again.done, again.full, position, again.remaining) == (3, False, ids[9], 0)
    numbers = [int(fields[b"detection_id"]) for fields in stream_fields(redis_client, STREAM)]
    assert numbers == [7, 8, 9] and redis_client.xlen(DLQ) == 0


def test_one_batch_per_call_at_least_and_remaining_counts_what_is_after(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "BATCH_SIZE", 3)
    ids = fill(redis_client, 8)
    outcome, position, kept = retry_all(redis_client, budget=0)
    assert (outcome.done, position, kept, outcome.remaining) == (3, ids[2], 0, 5)
    outcome, position, kept = retry_all(redis_client, after=position, budget=0)
    assert (outcome.done, position, outcome.remaining) == (3, ids[5], 2)


def test_entries_without_original_fields_stay_and_are_stepped_over(redis_client: redis.Redis) -> None:
    first = fill(redis_client, 2)
    bare_fields: dict[Any, Any] = dict(DLQ_FIELDS)
    bare = [streams.as_text(redis_client.xadd(DLQ, bare_fields)) for _ in range(2)]
    last = fill(redis_client, 1)
    outcome, position, kept = retry_all(redis_client)
    assert (outcome.done, position, kept, outcome.remaining) == (3, last[0], 2, 0)
    assert dict(outcome.skipped) == {"no original fields to re-add": 2}
    left: Any = redis_client.xrange(DLQ)
    assert [streams.as_text(i) for i, _ in left] == bare and first[0] not in bare


def test_a_second_retry_of_the_same_entries_retries_nothing(redis_client: redis.Redis) -> None:
    fill(redis_client, 5)
    seen = streams.entries_after(redis_client, DLQ, "-", 100)
    first = streams.retry_entries(redis_client, DLQ, seen)
    second = streams.retry_entries(redis_client, DLQ, seen)  # a double submit, or a second tab
    assert (first.done, second.done, second.skipped_count) == (5, 0, 5)
    assert redis_client.xlen(STREAM) == 5


def test_push_entries_adds_fields_with_new_ids_and_stops_when_full(redis_client: redis.Redis) -> None:
    redis_client.xadd(STREAM, {"camera_id": "old"})
    entries = [((b"camera_id", b"a"),), ((b"thumb", BINARY), (b"n", b"2")), ((b"camera_id", b"c"),)]
    assert streams.push_entries(redis_client, STREAM, entries, max_len=3) == 2
    assert stream_fields(redis_client, STREAM)[1:] == [{b"camera_id": b"a"}, {b"thumb": BINARY, b"n": b"2"}]
    assert streams.push_entries(redis_client, STREAM, entries[2:], max_len=0) == 1


def test_a_run_retries_what_it_reads_byte_for_byte_and_samples_the_first_few(
    redis_client: redis.Redis,
) -> None:
    ids = fill(redis_client, 8)
    dlq_fields: dict[Any, Any] = dict(DLQ_FIELDS)
    odd = streams.as_text(redis_client.xadd(DLQ, {"thumb": BINARY, **dlq_fields}))
    bare = streams.as_text(redis_client.xadd(DLQ, dlq_fields))  # nothing to re-add: it stays
    read, outcome = streams.retry_run(redis_client, DLQ, ids[0], 20)
    assert [e.id for e in read] == [*ids[1:], odd, bare]
    assert outcome.statuses == ["ok"] * 8 + ["empty"] and outcome.done == 8
    assert [e.fields != () for e in read] == [True] * streams.SAMPLE + [False] * 4, "the first five retried"
    assert dict(read[0].fields)[b"detection_id"] == b"1" and dict(read[0].fields)[b"dlq_reason"]
    moved = stream_fields(redis_client, STREAM)
    assert [f.get(b"detection_id") for f in moved[:7]] == [str(n).encode() for n in range(1, 8)]
    assert moved[7] == {b"thumb": BINARY}, "binary values re-added exactly, without the DLQ's fields"
    assert [e.id for e in streams.page(redis_client, DLQ).entries] == [ids[0], bare]
    again, outcome = streams.retry_run(redis_client, DLQ, ids[0], 20)
    assert [e.id for e in again] == [bare] and outcome.done == 0, "nothing is retried twice"


def test_nothing_lies_past_the_largest_id_or_before_0_0_and_pages_say_so(
    redis_client: redis.Redis, operator: Any
) -> None:
    """Redis refuses an exclusive XRANGE bound past the largest id (or before 0-0) instead of
    answering with nothing; the console answers with an empty page, not a Redis error."""
    from tests.conftest import logged_in

    largest = f"{streams.MAX_ID_PART}-{streams.MAX_ID_PART}"
    fill(redis_client, 2)
    assert streams.page(redis_client, DLQ, after=largest).entries == []
    assert streams.page(redis_client, DLQ, after="0-0", newest_first=True).entries == []
    assert streams.page(redis_client, DLQ, after="0-0").total == 2
    assert streams.retry_run(redis_client, DLQ, largest, 10)[0] == []
    client = logged_in(operator)
    for after, order in ((largest, "oldest"), ("0-0", "newest")):
        page = client.get(f"/queues/{DLQ}/", {"after": after, "order": order})
        assert page.status_code == 200 and "No entries after this point" in page.content.decode()
        api = client.get("/api/queues/detections%3Astream%3Adlq/items/", {"after": after, "order": order})
        assert api.status_code == 200 and api.json()["items"] == [] and api.json()["total"] == 2
