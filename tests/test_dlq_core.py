"""Retry and delete by exact bytes, in Lua, against a real Redis: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
import redis

from queues import codec, dlq
from queues.codec import decode
from tests.factories import failure

DLQ, TARGET = "dlq:detection_queue", "detection_queue"


def jobs_in(client: redis.Redis, key: str) -> list[int]:
    return [decode(raw).value["n"] for raw in client.lrange(key, 0, -1)]


def job_numbers(client: redis.Redis, key: str) -> list[int]:
    """The ``n`` of each DLQ entry's original job, in list order."""
    return [
        (dlq.Entry.of(key, 0, dlq.as_bytes(raw)).job or {}).get("n", -1) for raw in client.lrange(key, 0, -1)
    ]


def test_retry_selected_pushes_original_job_and_removes_entry(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n, big=n == 2) for n in range(5)])
    entries = dlq.page(redis_client, DLQ).entries
    outcome = dlq.retry(redis_client, DLQ, [entries[1], entries[2]])
    assert (outcome.done, outcome.target) == (2, TARGET)
    assert jobs_in(redis_client, TARGET) == [1, 2]
    pushed = redis_client.lrange(TARGET, 0, -1)
    assert json.loads(pushed[0]) == {"camera_id": "cam1", "file_path": "/export/cam/1.jpg", "n": 1}
    assert dlq.as_bytes(pushed[1]).startswith(b"Z:"), (
        "jobs over 1 KiB are pushed compressed, as HSI's producer does"
    )
    assert job_numbers(redis_client, DLQ) == [0, 3, 4]


def test_a_shifted_list_cannot_make_you_retry_the_wrong_entry(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(5)])
    target = dlq.page(redis_client, DLQ).entries[3]
    redis_client.lpush(DLQ, failure(100), failure(101))  # the page is now stale by two
    assert dlq.retry(redis_client, DLQ, [target]).done == 1
    assert jobs_in(redis_client, TARGET) == [3]
    assert redis_client.llen(DLQ) == 6


def test_second_retry_of_the_same_entry_does_nothing(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(1))
    entry = dlq.page(redis_client, DLQ).entries[0]
    assert dlq.retry(redis_client, DLQ, [entry]).done == 1
    again = dlq.retry(redis_client, DLQ, [entry])
    assert again.done == 0 and again.skipped_count == 1
    assert redis_client.llen(TARGET) == 1


def test_malformed_entries_are_skipped_with_reason_and_stay(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, b"not json {", json.dumps({"error": "x"}).encode(), failure(1))
    entries = dlq.page(redis_client, DLQ).entries
    outcome = dlq.retry(redis_client, DLQ, entries)
    assert outcome.done == 1
    assert outcome.skipped_count == 2
    assert any("not JSON" in reason for reason in outcome.skipped)
    assert any("original_job" in reason for reason in outcome.skipped)
    assert redis_client.lrange(DLQ, 0, -1)[:2] == [b"not json {", b'{"error": "x"}']


def test_full_target_stops_without_evicting(redis_client: redis.Redis, settings) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 5}
    redis_client.rpush(TARGET, *[b"existing"] * 3)
    redis_client.rpush(DLQ, *[failure(n) for n in range(4)])
    outcome = dlq.retry(redis_client, DLQ, dlq.page(redis_client, DLQ).entries)
    assert (outcome.done, outcome.full) == (2, True)
    assert redis_client.llen(TARGET) == 5 and redis_client.lrange(TARGET, 0, 2) == [b"existing"] * 3
    assert redis_client.llen(DLQ) == 2
    assert "detection_queue is full" in outcome.summary("Retried")


def test_overflow_entry_pushes_the_stored_string_unchanged(redis_client: redis.Redis) -> None:
    stored = failure(7, big=True).decode()
    wrapper = {"original_queue": "analysis_queue", "data": stored, "reason": "queue_overflow"}
    redis_client.rpush("dlq:overflow:analysis_queue", json.dumps(wrapper))
    entry = dlq.page(redis_client, "dlq:overflow:analysis_queue").entries[0]
    assert dlq.retry(redis_client, "dlq:overflow:analysis_queue", [entry]).done == 1
    assert redis_client.lrange("analysis_queue", 0, -1) == [stored.encode()]


def test_documented_layout_retries_to_prefixed_queue(redis_client: redis.Redis) -> None:
    redis_client.rpush("hsi:queue:dlq:detection_queue", failure(1))
    entry = dlq.page(redis_client, "hsi:queue:dlq:detection_queue").entries[0]
    assert (
        dlq.retry(redis_client, "hsi:queue:dlq:detection_queue", [entry]).target
        == "hsi:queue:detection_queue"
    )
    assert redis_client.llen("hsi:queue:detection_queue") == 1


def test_resolve_finds_entries_by_fingerprint_after_a_shift(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(1200)])
    wanted = dlq.page(redis_client, DLQ, offset=900, limit=3).entries
    redis_client.lpop(DLQ, 40)
    found = dlq.resolve(redis_client, DLQ, dlq.parse_refs(e.ref for e in wanted))
    assert [e.raw for e in found] == [e.raw for e in wanted]
    assert [e.index for e in found] == [860, 861, 862]


def test_page_newest_first_and_deep_offsets(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(250)])
    newest = dlq.page(redis_client, DLQ, offset=0, limit=3, newest_first=True)
    assert [(e.job or {}).get("n") for e in newest.entries] == [249, 248, 247]
    assert [e.index for e in newest.entries] == [249, 248, 247]
    middle = dlq.page(redis_client, DLQ, offset=200, limit=100)
    assert middle.total == 250 and [e.index for e in middle.entries][:2] == [200, 201]
    assert len(middle.entries) == 50


OVERLAP = pytest.mark.parametrize("overlap", [False, True], ids=["in-turn", "overlapped"])


@OVERLAP
def test_sweep_retries_all_in_order_leaving_malformed(redis_client: redis.Redis, overlap: bool) -> None:
    raws = [failure(n) if n % 300 else b"garbage" for n in range(2000)]
    redis_client.rpush(DLQ, *raws)
    outcome, position = dlq.sweep(redis_client, DLQ, dlq.retry_window, dlq.retry_keep(), overlap=overlap)
    assert outcome.done == 2000 - 7
    assert jobs_in(redis_client, TARGET) == [n for n in range(2000) if n % 300]
    assert redis_client.lrange(DLQ, 0, -1) == [b"garbage"] * 7
    assert position == 7 and outcome.remaining == 0


@OVERLAP
def test_sweep_with_filter_and_time_budget_continues(redis_client: redis.Redis, overlap: bool) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(1500)])
    only_odd = dlq.retry_keep(lambda e: e.matches(dlq.Criteria(text="detector unavailable")))
    first, position = dlq.sweep(
        redis_client, DLQ, dlq.retry_window, only_odd, budget_seconds=0, overlap=overlap
    )
    half = dlq.BATCH_SIZE // 2  # a spent budget still examines one batch: every step makes progress
    assert (first.done, position, first.remaining) == (half, half, 1500 - dlq.BATCH_SIZE)
    outcome, position = dlq.sweep(
        redis_client, DLQ, dlq.retry_window, only_odd, start=position, overlap=overlap
    )
    assert outcome.done == 750 - half and position == 750
    assert all(n % 2 for n in jobs_in(redis_client, TARGET))


@OVERLAP
def test_a_sweep_keeps_for_the_audit_the_first_entries_it_moved_and_no_more(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, overlap: bool
) -> None:
    monkeypatch.setattr(dlq, "MOVED_KEPT", 300)  # more than a window, less than the run
    redis_client.rpush(DLQ, *[failure(n) if n % 7 else b"garbage" for n in range(1000)])
    outcome, _ = dlq.sweep(redis_client, DLQ, dlq.retry_window, dlq.retry_keep(), overlap=overlap)
    assert (outcome.done, outcome.examined) == (1000 - 143, 1000 - 143)
    assert [entry.job["n"] for entry in outcome.moved if entry.job] == [n for n in range(1000) if n % 7][:300]


def test_delete_selected_by_bytes(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(4)])
    entries = dlq.page(redis_client, DLQ).entries
    assert dlq.delete(redis_client, DLQ, [entries[0], entries[3]]).done == 2
    assert job_numbers(redis_client, DLQ) == [1, 2]
    assert not redis_client.exists(TARGET)


@OVERLAP
def test_two_operators_retrying_everything_at_once_retry_each_entry_once(
    redis_client: redis.Redis, redis_server, overlap: bool
) -> None:
    redis_client.rpush(DLQ, *[failure(n, trace=overlap and n % 3 == 0) for n in range(6000)])

    def operator() -> None:
        with redis_server.client() as own:
            dlq.sweep(own, DLQ, dlq.retry_window, dlq.retry_keep(), budget_seconds=60, overlap=overlap)

    threads = [threading.Thread(target=operator) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(jobs_in(redis_client, TARGET))
    assert len(counts) == 6000 and set(counts.values()) == {1}
    assert redis_client.llen(DLQ) == 0


@OVERLAP
def test_sweep_after_a_full_target_resumes_without_skipping_anything(
    redis_client: redis.Redis, settings, overlap: bool
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 40}
    redis_client.rpush(DLQ, *[failure(n) for n in range(200)])
    odd = dlq.retry_keep(lambda e: e.matches(dlq.Criteria(text="detector unavailable")))
    retried: list[int] = []
    position = 0
    for _ in range(10):
        outcome, position = dlq.sweep(
            redis_client, DLQ, dlq.retry_window, odd, start=position, overlap=overlap
        )
        retried += jobs_in(redis_client, TARGET)
        redis_client.delete(TARGET)
        if not outcome.full:
            break
    assert sorted(retried) == list(range(1, 200, 2))
    assert job_numbers(redis_client, DLQ) == list(range(0, 200, 2))
    assert outcome.remaining == 0


def test_a_window_read_ahead_that_changed_before_its_turn_is_read_again(
    redis_client: redis.Redis, redis_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retry-all acts on one window on its own thread while it decodes the next, read ahead. When
    another operator retries two entries of that next window in between, its act stops at the
    first entry that is not what was read, and the sweep reads the head again: every job reaches
    the target once."""
    redis_client.rpush(DLQ, *[failure(n, trace=True) for n in range(1000)])  # Z: Python decodes
    acts: list[tuple[str, int, int]] = []
    act = dlq.retry_window

    def spied(client: redis.Redis, key: str, window: dlq.Window) -> tuple[int, dlq.Outcome]:
        if len(acts) == 1:  # the second window: read and decoded while the first was acted on
            with redis_server.client() as other:
                assert dlq.retry(other, key, [window[10][0], window[11][0]]).done == 2
        handled, part = act(client, key, window)
        acts.append((threading.current_thread().name, len(window), handled))
        return handled, part

    monkeypatch.setattr(dlq, "retry_window", spied)
    outcome, position = dlq.retry_all(redis_client, DLQ, budget_seconds=60)
    assert [handled for _, _, handled in acts[:2]] == [dlq.BATCH_SIZE, 10], acts
    threads = [thread.split("_")[0] for thread, _, _ in acts]  # the last window has nothing after it
    assert threads == ["dlq-act"] * (len(acts) - 1) + ["MainThread"], acts
    assert (outcome.done, position, outcome.remaining) == (998, 0, 0)
    counts = Counter(jobs_in(redis_client, TARGET))
    assert sorted(counts) == list(range(1000)) and set(counts.values()) == {1}
    assert redis_client.llen(DLQ) == 0


def test_an_error_while_decoding_ahead_waits_for_the_window_being_acted_on(
    redis_client: redis.Redis,
) -> None:
    """A sweep that fails while it examines the window read ahead raises only once the act running
    beside it has finished: nothing is still moving entries after the caller has seen the error."""
    redis_client.rpush(DLQ, *[failure(n) for n in range(600)])
    keep = dlq.retry_keep()

    def failing(entry: dlq.Entry) -> Any:
        if (entry.job or {}).get("n") == 300:
            raise RuntimeError("decoder bug")
        return keep(entry)

    with pytest.raises(RuntimeError, match="decoder bug"):
        dlq.sweep(redis_client, DLQ, dlq.retry_window, failing, overlap=True)
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("dlq-act")]
    assert jobs_in(redis_client, TARGET) == list(range(dlq.BATCH_SIZE))
    assert job_numbers(redis_client, DLQ) == list(range(dlq.BATCH_SIZE, 600))


def test_a_filtered_retry_decompresses_each_entry_once(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filter decodes an entry to match it; the retry then takes the job from that decoding
    instead of decompressing the entry again."""
    redis_client.rpush(DLQ, *[failure(n, trace=True) for n in range(300)])
    decompressed: Counter[bytes] = Counter()
    zstd = codec._zstd

    def counted(raw: bytes) -> bytes:
        decompressed[raw] += 1
        return zstd(raw)

    monkeypatch.setattr(codec, "_zstd", counted)
    odd = dlq.retry_keep(lambda e: e.matches(dlq.Criteria(text="detector unavailable")))
    outcome, _ = dlq.sweep(redis_client, DLQ, dlq.retry_window, odd)
    assert outcome.done == 150 and sorted(jobs_in(redis_client, TARGET)) == list(range(1, 300, 2))
    assert len(decompressed) == 300 and set(decompressed.values()) == {1}
