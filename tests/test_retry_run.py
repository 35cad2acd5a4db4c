"""Retry-all's fast path: runs of HSI's own entries retried inside Redis by ``retry_run.lua``.

The script and ``dlq.job_span`` state one rule twice (Lua, Python); these tests hold them to it:
whatever the script retries, it pushes exactly the bytes Python would, and whatever it cannot
take it leaves for Python, in place.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queues import dlq, scripts
from queues.codec import decode, encode_payload
from tests.factories import failure

DLQ, TARGET = "dlq:detection_queue", "detection_queue"
# cjson reads these numbers (1., -.5, 1.e5); JSON, and so Python, does not.
NOT_JSON_NUMBERS = [
    b'{"original_job": {"n": 1.}, "error": "a trailing dot"}',
    b'{"original_job": {"box": [0.5, -.5], "path": "a.b\\\\\\"c.", "at": 1.e5}, "error": "x"}',
]
DOTS_IN_STRINGS = b'{"original_job": {"path": "/a/b.jpg", "escaped": "\\".5", "n": 1.5e-3}, "error": "x"}'
HOSTILE_ENTRIES = [
    b"garbage",
    b"",
    b'{"original_job": {"n": 1}',  # cut short
    b'{"original_job": {"n": 0x10}, "error": "hex"}',
    b'{"original_job": {"n": 01}, "error": "leading zero"}',
    *NOT_JSON_NUMBERS,
    DOTS_IN_STRINGS,
    b'{"original_job": {"n": NaN}, "error": "NaN: Python reads it, cjson does not"}',
    b'{"original_job": {"n": -Infinity}, "error": "so is -Infinity"}',
    b'{"original_job": {"camera_id": "caf\xc3\xa9"}, "error": "raw UTF-8"}',
    b'{"original_job": {"camera_id": "\xff\xfe"}, "error": "not UTF-8"}',
    b'{"original_job": {"camera_id": "tab\there"}, "error": "raw control character"}',
    b'{"original_job": {"camera_id": "\\ud800"}, "error": "lone surrogate"}',
    b'{"original_job": [1, 2], "error": "a list"}',
    b'{"original_job": "a string", "error": "x"}',
    b'{"error": "first", "original_job": {"n": 2}}',  # not the first key: Python's full decode
    b'{"original_job": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}, "error": "deep"}',
    b'{"original_job": {"path": "a}b{c}"}, "error": "braces in a string"}',
    b'{"original_job": {"n": 3}, "error": "tail is cut"',
    b'{"original_queue": "detection_queue", "data": "{\\"n\\": 4}", "reason": "queue_overflow"}',
    failure(5, big=True),  # Z: compressed
    b'"{\\"original_job\\": {}}"',  # a JSON-quoted string
]


def python_payload(raw: bytes) -> bytes | None:
    try:
        return dlq.Entry.of(DLQ, 0, raw).retry_payload()
    except dlq.NotRetryable:
        return None


def listed(client: redis.Redis, key: str) -> list[bytes]:
    return [dlq.as_bytes(raw) for raw in client.lrange(key, 0, -1)]


def test_hsi_entries_are_retried_in_order_as_the_producer_wrote_them(redis_client: redis.Redis) -> None:
    raws = [failure(n) for n in range(1200)]
    redis_client.rpush(DLQ, *raws)
    outcome, position = dlq.retry_all(redis_client, DLQ)
    assert (outcome.done, position, outcome.remaining, outcome.skipped_count) == (1200, 0, 0, 0)
    pushed = listed(redis_client, TARGET)
    assert pushed == [json.dumps(json.loads(raw)["original_job"]).encode() for raw in raws]
    assert [json.loads(raw)["n"] for raw in pushed] == list(range(1200))
    assert not redis_client.exists(DLQ)
    assert [entry.job and entry.job["n"] for entry in outcome.moved[:3]] == [0, 1, 2]


def test_the_script_and_python_agree_on_every_hostile_entry(redis_client: redis.Redis) -> None:
    for raw in HOSTILE_ENTRIES:
        redis_client.delete(DLQ, TARGET)
        redis_client.rpush(DLQ, raw)
        run = scripts.retry_run(redis_client, DLQ, TARGET, 10)
        if run.retried:
            assert listed(redis_client, TARGET) == [python_payload(raw)], raw
        else:
            assert run.stop == "defer" and listed(redis_client, DLQ) == [raw], raw


def test_numbers_cjson_reads_and_json_does_not_are_left_to_python(redis_client: redis.Redis) -> None:
    """cjson reads "1." and "-.5"; Python refuses them, so the script must not push such a job. Dots
    in strings (escaped quotes before them too) and real decimals are retried as they are."""
    for raw, retried in [*((raw, False) for raw in NOT_JSON_NUMBERS), (DOTS_IN_STRINGS, True)]:
        redis_client.delete(DLQ, TARGET)
        redis_client.rpush(DLQ, raw)
        run = scripts.retry_run(redis_client, DLQ, TARGET, 10)
        assert (run.retried, python_payload(raw) is not None) == (retried, retried), raw
    assert listed(redis_client, TARGET) == [b'{"path": "/a/b.jpg", "escaped": "\\".5", "n": 1.5e-3}']


def test_mixed_dlq_retry_all_matches_the_python_path(redis_client: redis.Redis, redis_server) -> None:
    """Every entry Python can retry is retried exactly once, in order; the rest stay, in order."""
    raws = [raw for n in range(40) for raw in (failure(n), HOSTILE_ENTRIES[n % len(HOSTILE_ENTRIES)])]
    expected = [p for p in map(python_payload, raws) if p is not None]
    left = [raw for raw in raws if python_payload(raw) is None]
    redis_client.rpush(DLQ, *raws)
    outcome, position = dlq.retry_all(redis_client, DLQ)
    assert listed(redis_client, TARGET) == expected
    assert listed(redis_client, DLQ) == left
    assert position == len(left) and outcome.done == len(expected)
    assert outcome.skipped_count == len(left)


def test_entries_that_cannot_be_retried_go_to_the_tail_in_order_without_a_scan(
    redis_client: redis.Redis,
) -> None:
    raws = [b"kept-1", b"kept-2", *[failure(n, big=n % 3 == 0) for n in range(600)], b"kept-3"]
    raws[300:300] = [b"kept-in-the-middle"]
    redis_client.rpush(DLQ, *raws)
    redis_client.config_resetstat()
    outcome, position = dlq.retry_all(redis_client, DLQ)
    used = redis_client.info("commandstats")
    assert not {"cmdstat_lrem", "cmdstat_lset", "cmdstat_lpos"} & used.keys(), used.keys()
    assert listed(redis_client, DLQ) == [b"kept-1", b"kept-2", b"kept-in-the-middle", b"kept-3"]
    assert [decode(raw).value["n"] for raw in listed(redis_client, TARGET)] == list(range(600))
    assert (outcome.done, position, outcome.skipped_count, outcome.remaining) == (600, 4, 4, 0)


def test_a_deferred_entry_mid_batch_is_put_back_where_it_was(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(0), failure(1), b"odd one", failure(2), failure(3))
    run = scripts.retry_run(redis_client, DLQ, TARGET, 100, sample=5)
    assert (run.retried, run.stop, run.sample) == (2, "defer", [failure(0), failure(1)])
    assert listed(redis_client, DLQ) == [b"odd one", failure(2), failure(3)]


def test_a_full_target_stops_the_run_and_nothing_is_evicted(redis_client: redis.Redis, settings: Any) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 30}
    redis_client.rpush(TARGET, *[b'{"already": %d}' % n for n in range(25)])
    redis_client.rpush(DLQ, *[failure(n) for n in range(100)])
    outcome, position = dlq.retry_all(redis_client, DLQ)
    assert outcome.full and outcome.done == 5 and outcome.remaining == 95
    assert "detection_queue is full" in outcome.summary("Retried")
    assert redis_client.llen(TARGET) == 30 and redis_client.llen(DLQ) == 95
    redis_client.delete(TARGET)
    outcome, _ = dlq.retry_all(redis_client, DLQ, start=position)
    assert outcome.done == 30 and redis_client.llen(DLQ) == 65


def test_a_wrong_typed_target_moves_nothing(redis_client: redis.Redis) -> None:
    redis_client.set(TARGET, "not a list")
    redis_client.rpush(DLQ, *[failure(n) for n in range(3)])
    with pytest.raises(redis.ResponseError, match="not a list: nothing was moved"):
        dlq.retry_all(redis_client, DLQ)
    assert redis_client.llen(DLQ) == 3


def test_the_servers_cjson_settings_are_left_as_they_were(redis_client: redis.Redis) -> None:
    """The script tightens cjson for its own call only; other scripts on the server see no change."""
    read = "return {tostring(cjson.decode_invalid_numbers()), cjson.decode_max_depth()}"
    before = redis_client.eval(read, 0)
    redis_client.rpush(DLQ, failure(1))
    scripts.retry_run(redis_client, DLQ, TARGET, 10)
    redis_client.set("wrong", "type")
    with pytest.raises(redis.ResponseError):
        scripts.retry_run(redis_client, DLQ, "wrong", 10)
    assert redis_client.eval(read, 0) == before == [b"true", 1000]


def test_three_operators_retrying_all_at_once_retry_each_entry_once(
    redis_client: redis.Redis, redis_server
) -> None:
    redis_client.rpush(
        DLQ, *[raw for n in range(3000) for raw in (failure(n), failure(n + 5000, big=n % 7 == 0))]
    )

    def operator() -> None:
        with redis_server.client() as own:
            dlq.retry_all(own, DLQ, budget_seconds=60)

    threads = [threading.Thread(target=operator) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(decode(raw).value["n"] for raw in listed(redis_client, TARGET))
    assert len(counts) == 6000 and set(counts.values()) == {1}
    assert redis_client.llen(DLQ) == 0


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    job=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    ascii=st.booleans(),
    separators=st.sampled_from([(", ", ": "), (",", ":"), (" , ", " : ")]),
    tail=st.sampled_from([b"", b" ", b"x", b"}"]),
)
def test_generated_entries_get_the_same_verdict_from_lua_and_python(
    redis_client: redis.Redis, job: dict[str, Any], ascii: bool, separators: tuple[str, str], tail: bytes
) -> None:
    entry = {"original_job": job, "error": "generated", "attempt_count": 3}
    raw = json.dumps(entry, ensure_ascii=ascii, separators=separators).encode() + tail
    redis_client.delete(DLQ, TARGET)
    redis_client.rpush(DLQ, raw)
    run = scripts.retry_run(redis_client, DLQ, TARGET, 10)
    if run.retried:
        assert listed(redis_client, TARGET) == [dlq.job_span(raw)] == [python_payload(raw)]
    else:
        assert listed(redis_client, DLQ) == [raw]
    span = dlq.job_span(raw) or b""
    # HSI writes an entry this way only up to 1 KiB (larger ones are Z: compressed, another path).
    if ascii and separators == (", ", ": ") and not tail and span.count(b"}") <= 8 and len(raw) <= 1024:
        assert run.retried == 1, "HSI's own format must take the fast path"
        assert listed(redis_client, TARGET) == [encode_payload(job)]


def alone(client: redis.Redis, raw: bytes) -> bool:
    """Whether the script retries this entry when it is the only one in its DLQ."""
    client.delete("verdict:dlq", "verdict:target")
    client.rpush("verdict:dlq", raw)
    return scripts.retry_run(client, "verdict:dlq", "verdict:target", 1).retried == 1


def test_a_job_whose_first_brace_is_not_its_end_mid_run_still_goes_in_order(
    redis_client: redis.Redis,
) -> None:
    """The run checks all first candidates at once; one that fails sends the run entry by entry."""
    nested = b'{"original_job": {"path": "a}b", "box": {"x": 1}}, "error": "braces"}'
    hex_number = b'{"original_job": {"n": 0x10}, "error": "hex"}'
    raws = [failure(0), failure(1), nested, failure(2), hex_number, failure(3)]
    redis_client.rpush(DLQ, *raws)
    run = scripts.retry_run(redis_client, DLQ, TARGET, 100)
    assert (run.retried, run.stop) == (4, "defer")
    assert listed(redis_client, TARGET) == [python_payload(raw) for raw in raws[:4]]
    assert listed(redis_client, TARGET)[2] == b'{"path": "a}b", "box": {"x": 1}}'
    assert listed(redis_client, DLQ) == [hex_number, failure(3)]


generated_entries = st.builds(
    lambda job, separators: json.dumps({"original_job": job, "error": "x"}, separators=separators).encode(),
    st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    st.sampled_from([(", ", ": "), (",", ":")]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raws=st.lists(
        st.sampled_from(HOSTILE_ENTRIES) | generated_entries | st.integers(0, 9).map(failure), max_size=12
    )
)
def test_a_run_retries_exactly_the_entries_it_would_retry_one_by_one(
    redis_client: redis.Redis, raws: list[bytes]
) -> None:
    """Many entries in one call get the verdict each gets alone: retried up to the first it leaves."""
    verdicts = [alone(redis_client, raw) for raw in raws]
    taken = verdicts.index(False) if False in verdicts else len(raws)
    redis_client.delete(DLQ, TARGET)
    if raws:
        redis_client.rpush(DLQ, *raws)
    run = scripts.retry_run(redis_client, DLQ, TARGET, 100)
    assert run.retried == taken
    assert listed(redis_client, TARGET) == [python_payload(raw) for raw in raws[:taken]]
    assert listed(redis_client, DLQ) == raws[taken:]


def test_retry_all_of_compressed_entries_moves_runs_in_one_call_each(redis_client: redis.Redis) -> None:
    """HSI's usual DLQ (Z: entries with stack traces) with plain and malformed ones among them."""
    raws = [failure(n, big=n % 50 != 49) for n in range(600)]
    raws[100:100] = [b"broken", b"also broken"]
    redis_client.rpush(DLQ, *raws)
    redis_client.config_resetstat()
    outcome, position = dlq.retry_all(redis_client, DLQ)
    retryable = [raw for raw in raws if python_payload(raw) is not None]
    assert listed(redis_client, TARGET) == [python_payload(raw) for raw in retryable]
    assert listed(redis_client, DLQ) == [b"broken", b"also broken"] and position == 2
    assert (outcome.done, outcome.skipped_count, outcome.examined) == (600, 2, 600)
    assert [entry.job and entry.job["n"] for entry in outcome.moved[:3]] == [0, 1, 2]
    # Each run is one script call, not one per entry: well under one call per 10 entries.
    calls = redis_client.info("commandstats")["cmdstat_evalsha"]["calls"]
    assert calls < 60, calls


def test_a_run_that_starts_with_an_entry_for_python_reads_only_that_entry(redis_client: redis.Redis) -> None:
    """The script decides on the head first (read_range's head_ok): a DLQ of Z: entries is not read
    250 entries deep, into Lua, on every call that gives it back to Python."""
    redis_client.rpush(DLQ, *[failure(n, trace=True) for n in range(300)])
    redis_client.config_resetstat()
    run = scripts.retry_run(redis_client, DLQ, TARGET, dlq.BATCH_SIZE)
    assert (run.retried, run.stop) == (0, "defer") and redis_client.llen(DLQ) == 300
    assert redis_client.info("commandstats")["cmdstat_lrange"]["calls"] == 1


def test_a_dlq_that_alternates_plain_and_compressed_entries_is_read_once_not_once_per_switch(
    redis_client: redis.Redis,
) -> None:
    """Short runs of plain entries between compressed ones go with Python's run: a switch to the
    script and back per entry would read and put back a whole batch for each entry."""
    raws = [failure(n, trace=n % 4 == 0) for n in range(2000)] + [failure(n) for n in range(2000, 2100)]
    redis_client.rpush(DLQ, *raws)
    redis_client.config_resetstat()
    outcome, _ = dlq.retry_all(redis_client, DLQ)
    assert listed(redis_client, TARGET) == [python_payload(raw) for raw in raws]
    assert outcome.done == 2100 and not redis_client.exists(DLQ)
    stats = redis_client.info("commandstats")
    batches = -(-2100 // dlq.BATCH_SIZE)
    assert stats["cmdstat_evalsha"]["calls"] <= batches + 3, stats["cmdstat_evalsha"]
    # One read by Python per batch (peek.lua) and one by the script per call, nothing more; a read
    # of 250 small entries is 12 LRANGEs (read_range in lib.lua: 1, 2, 4 ... 32 at a time).
    assert stats["cmdstat_evalsha_ro"]["calls"] <= batches + 4, stats["cmdstat_evalsha_ro"]
    assert stats["cmdstat_lrange"]["calls"] <= 12 * (2 * batches + 4), stats["cmdstat_lrange"]


ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
flat_values = (
    ascii_text
    | st.integers(-(10**6), 10**6)
    | st.floats(-1e4, 1e4).filter(lambda number: "e" not in repr(number))
    | st.booleans()
    | st.none()
    | st.text(max_size=6)
)
flat_jobs = st.dictionaries(ascii_text, flat_values, min_size=1, max_size=6)
# A job with every kind of value a shape spells out, and near misses of each value: numbers JSON
# does not have, words that are almost true/false/null, strings left open, with bad escapes or
# with bytes that are not printable ASCII; and some that are JSON but not of the shape.
SHAPED_JOB = {"s": "cam", "i": 42, "f": 12.5, "z": 0.25, "t": True, "F": False, "n": None}
NEAR_MISSES_BY_FIELD = {
    "s": [
        b'"cam',
        b'cam"',
        b'"ca"m"',
        b'"c\\am"',
        b'"c\\u12m"',
        b"'cam'",
        b'"c\tm"',
        b'"c\x7fm"',
        b'"c\xffm"',
    ],
    "i": [b"007", b"-01", b"00", b"-", b"1.", b"+1", b"0x10", b"--1", b"1.2.3", b"-0", b"0", b"4 2", b"1e5"],
    "f": [b"12.", b".5", b"-.5", b"1.e5", b"00.5", b"012.5", b"1..5", b"12.5.1", b"-12.50", b"12.5e3"],
    "z": [b"0.", b"00.25", b"-0.25", b"0.2.5", b".25", b"-.25", b"0.25.", b"0"],
    "t": [b"tru", b"truex", b"True", b"false", b"null", b"1", b"NaN", b"Infinity", b""],
    "F": [b"fals", b"falsey", b"FALSE", b"true", b"1E+5", b"[1", b"{}", b'"a" "b"'],
    "n": [
        b"nul",
        b"nulll",
        b"NULL",
        b"None",
        b'"null"',
        b'"c}m"',
        b'"c\\"m"',
        b'"c\\u00e9m"',
        b'""',
        b'"c\\\\"',
    ],
}
# Python reads these, cjson does not: the script leaves them to Python's path, which retries them.
PYTHON_ONLY = {b"NaN", b"Infinity"}
NEAR_MISSES = [miss for misses in NEAR_MISSES_BY_FIELD.values() for miss in misses]
# What one byte slipped anywhere into the job can do: the same, and bytes that are not printable ASCII.
SLIPS = [b"0", b"-", b".", b"e5", b'"', b"\\", b"}", b"{", b"\x00", b"\x7f", b"\xff", b"\t", b" ", b",", b":"]


def entry_of(pairs: list[tuple[bytes, bytes]]) -> bytes:
    job = b"{" + b", ".join(key + b": " + value for key, value in pairs) + b"}"
    return b'{"original_job": ' + job + b', "error": "x", "attempt_count": 3}'


def spelt(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize("field", NEAR_MISSES_BY_FIELD)
def test_an_entry_that_nearly_fits_the_runs_shape_gets_the_rules_verdict(
    redis_client: redis.Redis, field: str
) -> None:
    """After an entry of every kind of value a shape spells out, each near miss of one value: the
    script retries it exactly when ``dlq.job_span`` does (by decoding it), as the same bytes, but
    for what only Python reads."""
    base = [(spelt(key), spelt(value)) for key, value in SHAPED_JOB.items()]
    for miss in NEAR_MISSES_BY_FIELD[field]:
        missed = [(key, miss if key == spelt(field) else value) for key, value in base]
        raws = [entry_of(base), entry_of(missed)]
        spans = [dlq.job_span(raw) for raw in raws]
        redis_client.delete(DLQ, TARGET)
        redis_client.rpush(DLQ, *raws)
        run = scripts.retry_run(redis_client, DLQ, TARGET, 10)
        assert run.retried == 1 + (spans[1] is not None and miss not in PYTHON_ONLY), miss
        assert listed(redis_client, TARGET) == spans[: run.retried], miss


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_runs_of_entries_alike_retry_exactly_the_jobs_python_would(
    redis_client: redis.Redis, data: st.DataObject
) -> None:
    """The script learns the shape of a run's first job and checks entries alike by matching it
    instead of decoding them. Entries of that shape with other values, near misses of JSON values
    and a byte slipped into the job must still get the verdict each gets alone, what is retried must
    be Python's job bytes (``dlq.job_span``), and json.dumps's own entries must all be retried."""
    job = data.draw(flat_jobs, "job")
    raws, spoilt = [entry_of([(spelt(key), spelt(value)) for key, value in job.items()])], [False]
    for _ in range(data.draw(st.integers(1, 10), "variants")):
        pairs, missed = [], False
        for key, value in job.items():
            change = data.draw(st.sampled_from(["same", "other", "near miss", "near miss"]))
            if change == "near miss":
                pairs.append((spelt(key), data.draw(st.sampled_from(NEAR_MISSES))))
                missed = True
            else:
                pairs.append((spelt(key), spelt(data.draw(flat_values) if change == "other" else value)))
        raw = entry_of(pairs)
        if data.draw(st.booleans(), "slip"):
            at = data.draw(st.integers(len(b'{"original_job": {'), raw.index(b', "error": "x"')))
            raw = raw[:at] + data.draw(st.sampled_from(SLIPS)) + raw[at + data.draw(st.integers(0, 2)) :]
            missed = True
        raws.append(raw)
        spoilt.append(missed)
    verdicts = [alone(redis_client, raw) for raw in raws]
    taken = verdicts.index(False) if False in verdicts else len(raws)
    spans = [dlq.job_span(raw) for raw in raws]
    clean = next(
        (i for i, span in enumerate(spans) if spoilt[i] or span is None or span.count(b"}") > 8), len(raws)
    )
    redis_client.delete(DLQ, TARGET)
    redis_client.rpush(DLQ, *raws)
    run = scripts.retry_run(redis_client, DLQ, TARGET, 100)
    assert run.retried == taken >= clean, raws
    assert listed(redis_client, TARGET) == spans[:taken] == [python_payload(raw) for raw in raws[:taken]]
    assert listed(redis_client, DLQ) == raws[taken:]


JOB_START = len(b'{"original_job": ')
EDGES = [  # JSON the pattern must leave to decoding, or take as decoding would
    b"1234567890123456789",  # 19 digits: left to json, which caps the digits of an integer
    b"9" * 5000,  # json refuses it (ValueError over 4,300 digits), so must job_span
    b"-0",
    b"1E400",  # a float json reads as inf
    b"1e",
    b"2E+",
    b"3.5e-",
    b'{"a": 1}',
    b"[1, 2]",
    b"[]",
    b"{}",
]


@pytest.mark.parametrize("value", [*EDGES, *NEAR_MISSES])
def test_every_edge_and_near_miss_gets_from_the_pattern_what_decoding_gives(value: bytes) -> None:
    for raw in (entry_of([(b'"a"', value)]), entry_of([(b'"s"', b'"cam"'), (b'"a"', value), (b'"n"', b"7")])):
        assert dlq.job_span(raw) == dlq.decoded_span(raw, JOB_START), raw


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_flat_job_taken_by_its_pattern_is_what_decoding_it_finds(data: st.DataObject) -> None:
    """``dlq.job_span`` takes json.dumps's flat jobs by one pattern (``FLAT_JOB``) instead of
    decoding them. On such jobs, near misses of every kind of value, edge cases and a byte slipped
    in anywhere it must give exactly what decoding gives (``decoded_span``), and it must take the
    jobs json.dumps writes with plain strings and short integers."""
    job = data.draw(flat_jobs, "job")
    clean = entry_of([(spelt(key), spelt(value)) for key, value in job.items()])
    pairs = [
        (spelt(key), data.draw(st.sampled_from([spelt(value), *NEAR_MISSES, *EDGES])))
        for key, value in job.items()
    ]
    raw = entry_of(pairs)
    if data.draw(st.booleans(), "slip"):
        at = data.draw(st.integers(JOB_START, raw.index(b', "error": "x"')))
        raw = raw[:at] + data.draw(st.sampled_from(SLIPS)) + raw[at + data.draw(st.integers(0, 2)) :]
    for entry in (clean, raw):
        head = dlq.JOB_HEAD.match(entry)  # a slip may add space before the job, or spoil its head
        decoded = dlq.decoded_span(entry, head.end()) if head and entry.endswith(b"}") else None
        assert dlq.job_span(entry) == decoded, entry
    spellings = [spelt(part) for pair in job.items() for part in pair]
    if all(dlq.PRINTABLE.fullmatch(text) and b"\\" not in text for text in spellings):
        assert dlq.FLAT_JOB.match(clean, JOB_START), clean
