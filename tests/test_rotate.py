"""Filtered retry and delete (``dlq.sweep`` over ``rotate.lua``): head and tail only, order kept."""

from __future__ import annotations

import pytest
import redis

from console.models import ArchivedItem, AuditEntry
from queues import actions, archive, dlq, scripts
from tests.factories import failure
from tests.test_dlq_core import DLQ, TARGET, job_numbers, jobs_in

ODD = "detector unavailable"  # failure(n) for odd n


def calls(client: redis.Redis) -> dict[str, int]:
    """Commands run since the last reset, by name, counting those run inside scripts."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def window(client: redis.Redis, keep: dlq.Keep, size: int = dlq.BATCH_SIZE) -> dlq.Window:
    entries = [
        dlq.Entry.of(DLQ, i, dlq.as_bytes(raw)) for i, raw in enumerate(client.lrange(DLQ, 0, size - 1))
    ]
    return [(entry, keep(entry)) for entry in entries]


def odd_only(entry: dlq.Entry) -> bool:
    return entry.matches(dlq.Criteria(text=ODD))


def test_filtered_retry_moves_matches_and_keeps_the_rest_in_order_without_scanning(
    redis_client: redis.Redis,
) -> None:
    redis_client.rpush(DLQ, *[failure(n) if n % 7 else b"not json" for n in range(3000)])
    redis_client.config_resetstat()
    outcome, position = dlq.sweep(redis_client, DLQ, dlq.retry_window, dlq.retry_keep(odd_only))
    odd_and_readable = [n for n in range(3000) if n % 2 and n % 7]
    assert outcome.done == len(odd_and_readable) and jobs_in(redis_client, TARGET) == odd_and_readable
    assert job_numbers(redis_client, DLQ) == [
        -1 if n % 7 == 0 else n for n in range(3000) if n % 2 == 0 or n % 7 == 0
    ]
    assert position == 3000 - outcome.done and outcome.remaining == 0
    assert outcome.skipped == {}, "entries the filter leaves are not counted as skipped"
    used = calls(redis_client)
    assert not {"lrem", "lpos", "lset", "lindex"} & used.keys(), f"no command scans into the list: {used}"
    assert used["evalsha"] == 12 and used["ltrim"] == 12, "one script call per 250 entries"


def test_filtered_delete_archives_only_the_matches(redis_client: redis.Redis, db) -> None:
    raws = [failure(n) for n in range(600)]
    redis_client.rpush(DLQ, *raws)

    def act(client: redis.Redis, key: str, win: dlq.Window) -> tuple[int, dlq.Outcome]:
        return archive.archive_and_rotate(client, key, win, "otto")

    outcome, position = dlq.sweep(redis_client, DLQ, act, dlq.delete_keep(odd_only))
    assert (outcome.done, position, outcome.remaining) == (300, 300, 0)
    assert job_numbers(redis_client, DLQ) == list(range(0, 600, 2))
    rows = ArchivedItem.objects.order_by("id")
    assert [bytes(row.raw) for row in rows] == raws[1::2]
    assert {row.state for row in rows} == {ArchivedItem.State.ARCHIVED}


def test_a_window_that_changed_is_handled_up_to_the_change(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(20)])
    seen = window(redis_client, dlq.retry_keep(odd_only))
    other = dlq.page(redis_client, DLQ, offset=8, limit=1).entries[0]
    assert dlq.retry(redis_client, DLQ, [other]).done == 1, "another operator retries entry 8 first"
    handled, outcome = dlq.retry_window(redis_client, DLQ, seen)
    assert handled == 8 and outcome.done == 4, "0..7 handled, stopped at the entry that is not 8 any more"
    assert sorted(jobs_in(redis_client, TARGET)) == [1, 3, 5, 7, 8]
    assert job_numbers(redis_client, DLQ) == [*range(9, 20), 0, 2, 4, 6]
    redis_client.lpop(DLQ)
    assert dlq.retry_window(redis_client, DLQ, window(redis_client, dlq.retry_keep())[1:])[0] == 0, (
        "a window whose first entry is gone is not handled at all"
    )


def test_a_full_target_stops_at_the_first_match_that_does_not_fit(
    redis_client: redis.Redis, settings
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 3}
    redis_client.rpush(DLQ, *[failure(n) for n in range(10)])
    handled, outcome = dlq.retry_window(redis_client, DLQ, window(redis_client, dlq.retry_keep(odd_only)))
    assert (handled, outcome.done, outcome.full) == (7, 3, True)
    assert jobs_in(redis_client, TARGET) == [1, 3, 5]
    assert job_numbers(redis_client, DLQ) == [7, 8, 9, 0, 2, 4, 6], "nothing evicted, nothing lost"


def test_a_fenced_call_does_nothing(redis_client: redis.Redis) -> None:
    raws = [failure(n) for n in range(4)]
    redis_client.rpush(DLQ, *raws)
    token = scripts.new_token()
    assert scripts.fence(redis_client, token) is None
    pairs = [(raw, b"") for raw in raws]
    assert scripts.rotate(redis_client, DLQ, None, pairs, token=token) == (0, "aborted")
    assert redis_client.lrange(DLQ, 0, -1) == raws


def test_the_receipt_says_which_matches_were_deleted(redis_client: redis.Redis) -> None:
    raws = [failure(n) for n in range(6)]
    redis_client.rpush(DLQ, *raws)
    redis_client.lset(DLQ, 4, "changed")
    token = scripts.new_token()
    pairs = [(raw, None if n % 2 == 0 else b"") for n, raw in enumerate(raws)]
    assert scripts.rotate(redis_client, DLQ, None, pairs, token=token) == (4, "stale")
    assert scripts.fence(redis_client, token) == "ok,ok,missing", "entries 1 and 3 deleted, 5 not reached"
    assert redis_client.lrange(DLQ, 0, -1) == [b"changed", raws[5], raws[0], raws[2]]


@pytest.mark.parametrize("verb", ["retry", "delete"])
def test_two_filtered_sweeps_at_once_act_on_each_match_once(
    redis_client: redis.Redis, redis_server, verb: str
) -> None:
    import threading
    from collections import Counter

    redis_client.rpush(DLQ, *[failure(n) for n in range(5000)])
    act = dlq.retry_window if verb == "retry" else dlq.delete_window
    keep = dlq.retry_keep(odd_only) if verb == "retry" else dlq.delete_keep(odd_only)
    results: list[dlq.Outcome] = []

    def operator() -> None:
        with redis_server.client() as own:
            results.append(dlq.sweep(own, DLQ, act, keep, budget_seconds=60)[0])

    threads = [threading.Thread(target=operator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.done for r in results) == 2500
    in_dlq = Counter(job_numbers(redis_client, DLQ))
    assert set(in_dlq) == set(range(0, 5000, 2)) and set(in_dlq.values()) == {1}
    if verb == "retry":
        counts = Counter(jobs_in(redis_client, TARGET))
        assert set(counts) == set(range(1, 5000, 2)) and set(counts.values()) == {1}


def test_selected_entries_anywhere_cost_one_scan_from_each_end_per_call(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(5000)])
    chosen = [n for n in range(5000) if n % 8 == 3]  # 625 entries: three script calls
    entries = [dlq.Entry.of(DLQ, n, failure(n)) for n in chosen]
    redis_client.config_resetstat()
    outcome = dlq.retry(redis_client, DLQ, entries)
    used = calls(redis_client)
    assert outcome.done == 625 and jobs_in(redis_client, TARGET) == chosen
    assert job_numbers(redis_client, DLQ) == [n for n in range(5000) if n % 8 != 3]
    assert used["evalsha"] == 3 and used["lrem"] <= 6, f"at most two LREMs per call: {used}"
    assert "lpos" not in used and "lrange" not in used, "later calls' hints account for earlier removals"


def test_an_entry_that_moved_is_found_just_before_its_hint(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(1000)])
    near, far = dlq.Entry.of(DLQ, 400, failure(400)), dlq.Entry.of(DLQ, 900, failure(900))
    redis_client.lpop(DLQ, 100)  # another operator took the first 100 since the page was drawn
    outcome = dlq.retry(redis_client, DLQ, [near])
    assert outcome.done == 1 and jobs_in(redis_client, TARGET) == [400]
    redis_client.lpop(DLQ, 300)  # now 900 sits 401 places before where it was seen: too far to look
    outcome = dlq.retry(redis_client, DLQ, [far])
    assert outcome.done == 0 and outcome.skipped == {dlq.STATUS_REASONS["missing"]: 1}
    assert 900 in job_numbers(redis_client, DLQ), "an entry not found is left where it is"


def test_an_ended_run_puts_the_dlq_back_in_its_old_order(redis_client: redis.Redis, db) -> None:
    """A filtered retry stopped after one step left the even n it examined at the tail; ending it
    moves the ones not examined behind them, unread, and retries nothing more."""
    redis_client.rpush(DLQ, *[failure(n) for n in range(3000)])
    odd = actions.Filters.from_query({"q": ODD})
    first, position, _ = actions.act_on_matching(
        redis_client, DLQ, odd, verb="retry", request=None, budget_seconds=0
    )
    assert (first.done, position, first.remaining) == (125, 125, 2750)
    assert job_numbers(redis_client, DLQ) == [*range(250, 3000), *range(0, 250, 2)]
    redis_client.rpush(DLQ, failure(5000), failure(5002))  # HSI's new failures meanwhile

    redis_client.config_resetstat()
    ended, position, audit_id = actions.act_on_matching(
        redis_client,
        DLQ,
        odd,
        verb="retry",
        request=None,
        start=position,
        unexamined=first.remaining,
        end=True,
    )
    assert (ended.done, ended.put_back, ended.remaining, ended.unmatched, position) == (0, 2750, 0, 0, 2875)
    assert jobs_in(redis_client, TARGET) == list(range(1, 250, 2)), "ending retried nothing"
    assert job_numbers(redis_client, DLQ) == [*range(0, 250, 2), 5000, 5002, *range(250, 3000)]
    used = calls(redis_client)
    assert not {"lrem", "lpos", "lset", "lindex"} & used.keys(), f"no command scans into the list: {used}"
    assert used["evalsha"] == 11 and used["ltrim"] == 11, "one script call per 250 entries"
    assert ended.summary("Retried").endswith(
        "; ended early: the 2,750 not examined went back behind the others, so the DLQ is in its old order."
    )
    audited = AuditEntry.objects.get(pk=audit_id)
    assert (audited.action, audited.count) == ("dlq.retry_all", 0)
    assert audited.detail["ended"] is True and audited.detail["put_back"] == 2750


def test_ending_a_run_in_steps_and_without_its_count(redis_client: redis.Redis, db) -> None:
    """Each step puts back what its budget allows (at least one batch); an API client that did not
    keep ``unexamined`` gets the entries ahead of those the run kept. A run that kept nothing has no
    order to put back."""
    redis_client.rpush(DLQ, *[failure(n) for n in range(1000)])
    odd = actions.Filters.from_query({"q": ODD})
    _, position, _ = actions.act_on_matching(
        redis_client, DLQ, odd, verb="delete", request=None, budget_seconds=0
    )
    assert position == 125
    steps, left = [], None
    while left != 0:
        outcome, position, _ = actions.act_on_matching(
            redis_client, DLQ, odd, verb="delete", request=None, start=position, budget_seconds=0, end=True
        )
        steps.append(outcome.put_back)
        left = outcome.remaining
    assert steps == [250, 250, 250] and position == 875
    assert job_numbers(redis_client, DLQ) == [*range(0, 250, 2), *range(250, 1000)]
    assert ArchivedItem.objects.count() == 125, "ending deleted nothing more"

    before = redis_client.lrange(DLQ, 0, -1)
    outcome, position, _ = actions.act_on_matching(
        redis_client, DLQ, odd, verb="delete", request=None, start=0, unexamined=500, end=True
    )
    assert (outcome.put_back, outcome.remaining, position) == (0, 0, 0)
    assert redis_client.lrange(DLQ, 0, -1) == before
