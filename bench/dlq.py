"""Benchmark: DLQ paging, retry-all and delete-all against the raw-Redis floor.

Run on demand: ``.venv/bin/python bench/dlq.py`` (smaller: ``--page-entries 100000
--retry-entries 20000 --slowlog-entries 100000``). It starts a private redis-server, fills it, and
measures each console operation next to its raw floor from the same run:

- a page of 50 in the middle of a deep DLQ (``dlq.page``) against a bare ``LRANGE``, and 50
  entries of 2 MB each, which pages read cut inside Redis (``peek.lua``), 8 MB per call;
- the failure breakdown of the newest 5,000 entries (``breakdown.of_list``) against reading them raw,
  and the DLQ page's headline (``breakdown.headline``: the newest 500, then its cached check);
- retry-all (``dlq.retry_all``) against a minimal Lua script that LPOPs ``dlq.BATCH_SIZE`` (250)
  and RPUSHes them per call, and against a naive LPOP + RPUSH loop (two round trips per entry);
  for plain entries also against two reference scripts (``REFERENCES``): the least a retry that
  checks each job must do, which bounds what any validating retry can reach of the floor, and a
  decode + re-encode of each entry;
  for each shape of entry in ``SHAPES``: HSI's plain JSON (the script decodes them), ``Z:`` with a
  stack trace (HSI's usual: Python decodes a run, the script moves it), a mix of the two, and
  ``Z:`` entries whose job itself is over 1 KiB; for the shapes with ``Z:`` entries also the time
  Python takes only to decompress them (base64 + zstd), a bound no retry that reads the job beats;
  and for each shape the CPU per entry on both sides (this process and redis-server) against
  what the machine's cores allow each target, with, for ``Z:`` shapes, the least any retry that
  reads the job costs (the floor's move, a bare read, decompressing);
- the largest single Redis command during retry-all and delete-all, and during the floor script
  run over the same list (what this machine does to any 250-entry script), from the slow log (threshold
  ``--slowlog-threshold-us``, default 100: at 0 Redis also logs every command a script runs, four
  per entry, millions at 1M entries) with the latency monitor as a cross-check;
- the same for a filtered retry (every entry of one camera, 1 in 5), for putting a stopped run's
  DLQ back in order (``dlq.put_back``: every entry moves, none is acted on) and for a page of 100
  selected entries at the head and in the middle of the DLQ;
- one stale script call: entries another operator already retried, as the loser of a race sends.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.console_env import private_console  # noqa: E402

# The settings (and the cache the DLQ page's headline uses) point at the bench's own redis-server.
FOLDER, SERVER = private_console("hsi-bench-dlq-", QUEUE_MAX_SIZE="1000000000")  # no stop at 10,000

import django  # noqa: E402
import redis  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402

from queues import breakdown, dlq, search  # noqa: E402
from queues.codec import inflate  # noqa: E402
from tests.factories import failure  # noqa: E402

DLQ, TARGET = "dlq:detection_queue", "detection_queue"
PAGE_TARGET = (5.0, 0.020)  # page <= 5 x raw LRANGE + 20 ms
FLOOR_SHARE_TARGET, NAIVE_TARGET, COMMAND_TARGET_MS = 0.5, 20.0, 5.0

FLOOR_LUA = """
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return 0 end
redis.call('RPUSH', KEYS[2], unpack(items))
return #items
"""
# What a naive batched retry script would do instead of moving bytes: decode each entry and push
# cjson's re-encoding of original_job (loses key order and number spelling, so the console does not
# do this). A second reference, for the work a retry must do; the target is measured against FLOOR_LUA.
NAIVE_RETRY_LUA = """
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return 0 end
local jobs = {}
for i = 1, #items do
  jobs[i] = cjson.encode(cjson.decode(items[i])['original_job'])
end
redis.call('RPUSH', KEYS[2], unpack(jobs))
return #items
"""
# The least any retry that checks each job must do, with none of the console's care: cut the job out
# of an entry shaped as json.dumps writes it (printable ASCII, no nested object), check it with
# cjson, push it. No fallbacks, no pcall, so a bad entry fails the call. What it reaches of the floor
# is the most any validating retry can reach; the target is measured against FLOOR_LUA.
MINIMAL_RETRY_LUA = """
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return 0 end
local match, decode = string.match, cjson.decode
local jobs = {}
for i = 1, #items do
  local job = match(items[i], '^{"original_job": ({[ -|~]*})')
  decode(job)
  jobs[i] = job
end
redis.call('RPUSH', KEYS[2], unpack(jobs))
return #items
"""
REFERENCES = {  # label: (script, what the console's ratio to it is called)
    "minimal validating script": (MINIMAL_RETRY_LUA, "console/minimal-validating"),
    "Lua decode + re-encode": (NAIVE_RETRY_LUA, "console/decode-and-re-encode"),
}


Shape = Callable[[int], bytes]
SHAPES: dict[str, tuple[str, Shape]] = {
    "plain": ("HSI's plain JSON entries (the script decodes them)", failure),
    "traced": (
        "Z: entries with a stack trace, HSI's usual (Python decodes, the script moves)",
        lambda n: failure(n, trace=True),
    ),
    "mixed": ("plain entries, every 4th a Z: one with a stack trace", lambda n: failure(n, trace=n % 4 == 0)),
    "big": ("Z: entries whose job is over 1 KiB (compressed again on retry)", lambda n: failure(n, big=True)),
}


def fill(client: redis.Redis, count: int, shape: Shape = failure) -> None:
    client.delete(DLQ, TARGET)
    pipe = client.pipeline(transaction=False)
    for start in range(0, count, 1000):
        pipe.rpush(DLQ, *[shape(n) for n in range(start, min(start + 1000, count))])
        if start % 100_000 == 99_000:
            pipe.execute()
    pipe.execute()


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.3f} ms"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def bench_page(client: redis.Redis, entries: int, runs: int) -> None:
    fill(client, entries)
    offset = entries // 2
    assert len(dlq.page(client, DLQ, offset=offset, limit=50).entries) == 50
    raw = [timed(lambda: client.lrange(DLQ, offset, offset + 49)) for _ in range(runs)]
    page = [timed(lambda: dlq.page(client, DLQ, offset=offset, limit=50)) for _ in range(runs)]
    factor, extra = PAGE_TARGET
    budget = factor * statistics.median(raw) + extra
    print(f"page of 50 at offset {offset:,} of {entries:,} ({runs} runs):")
    print(f"  raw LRANGE {offset} {offset + 49}  best {ms(min(raw))}  median {ms(statistics.median(raw))}")
    print(f"  dlq.page                     best {ms(min(page))}  median {ms(statistics.median(page))}")
    print(f"  ratio page/raw (median): {statistics.median(page) / statistics.median(raw):.1f}x")
    print(
        f"  target page <= {factor:g} x raw + {extra * 1000:g} ms = {ms(budget).strip()}: "
        f"{verdict(statistics.median(page) <= budget)}"
    )


def bench_large_page(client: redis.Redis, runs: int, megabytes: int = 2) -> None:
    """50 entries of ``megabytes`` MB each (100 MB in all), against a bare ``LRANGE`` of them: a page
    gets each one's first ``dlq.READ_WHOLE`` bytes, cut inside Redis, and stops after
    ``dlq.READ_BUDGET`` bytes; following its "next" links until all 50 are read takes several calls,
    each a bounded stretch of Redis time."""
    client.delete(DLQ)
    for n in range(50):
        body = b', "response_body": "' + b"x" * (megabytes << 20) + b'"}'
        client.rpush(DLQ, failure(n)[:-1] + body)

    def pages() -> list[float]:
        offset, calls = 0, []
        while offset < 50:
            started = time.perf_counter()
            read = dlq.page(client, DLQ, offset, 50 - offset).entries
            calls.append(time.perf_counter() - started)
            assert read and all(entry.cut is not None for entry in read)
            offset += len(read)
        return calls

    raw = [timed(lambda: client.lrange(DLQ, 0, 49)) for _ in range(runs)]
    console = [pages() for _ in range(runs)]
    totals = [sum(calls) for calls in console]
    print(f"50 entries of {megabytes} MB, read as a page of 50 and its next links ({runs} runs):")
    print(f"  raw LRANGE 0 49              best {ms(min(raw))}  median {ms(statistics.median(raw))}")
    print(
        f"  dlq.page until all read      best {ms(min(totals))}  median {ms(statistics.median(totals))}"
        f"  ({len(console[0])} calls, largest {ms(max(max(calls) for calls in console)).strip()})"
    )
    print(f"  ratio pages/raw (median): {statistics.median(totals) / statistics.median(raw):.2f}x")
    client.delete(DLQ)


def bench_breakdown(client: redis.Redis, entries: int, runs: int) -> None:
    """Why they failed: the newest 5,000 entries decoded and counted, against reading them raw
    (``LRANGE`` of the same 5,000, 100 per call as the breakdown reads them)."""
    examined = search.MAX_EXAMINED
    print(f"breakdown of the newest {examined:,} of {entries:,} entries ({runs} runs):")
    for shape in ("plain", "traced"):
        label, make = SHAPES[shape]
        fill(client, entries, make)
        assert breakdown.of_list(client, DLQ).examined == examined

        def raw() -> None:
            for start in range(entries - examined, entries, 100):
                client.lrange(DLQ, start, start + 99)

        floor = [timed(raw) for _ in range(runs)]
        took = [timed(lambda: breakdown.of_list(client, DLQ)) for _ in range(runs)]
        median, raw_median = statistics.median(took), statistics.median(floor)
        print(
            f"  {label}: median {ms(median)} (best {ms(min(took)).strip()}), raw LRANGE {ms(raw_median)}, "
            f"ratio {median / raw_median:.1f}x"
        )
        bench_headline(client, runs * 3)


def bench_headline(client: redis.Redis, runs: int) -> None:
    """The DLQ page's headline: the newest ``HEADLINE_EXAMINED`` entries counted on a page view
    after the DLQ changed, and a page view after that (the cache's signature check), against the
    two reads that check costs raw."""

    def fresh() -> None:
        cache.delete(breakdown.headline_cache_key(DLQ))
        breakdown.headline(client, DLQ, stream=False)

    def signature() -> None:
        pipe = client.pipeline(transaction=False)
        pipe.llen(DLQ)
        pipe.lindex(DLQ, -1)
        pipe.execute()

    changed = statistics.median([timed(fresh) for _ in range(runs)])
    same = statistics.median(
        [timed(lambda: breakdown.headline(client, DLQ, stream=False)) for _ in range(runs)]
    )
    floor = statistics.median([timed(signature) for _ in range(runs)])
    shown = [ms(seconds).strip() for seconds in (changed, same, floor)]
    print(f"    headline of the newest {breakdown.HEADLINE_EXAMINED}: after a change median {shown[0]},")
    print(f"      unchanged median {shown[1]}, raw LLEN + LINDEX {shown[2]}")


def redis_usec(client: redis.Redis, *names: str) -> int:
    """Microseconds Redis has spent in these commands so far (INFO commandstats)."""
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("usec", 0)) for name in names)


@dataclass(frozen=True, order=True)
class Run:
    """One timed run: seconds, the seconds of it inside Redis's script calls, and the CPU seconds
    this process (all its threads) and redis-server spent on it. Runs order by their seconds."""

    elapsed: float
    inside: float = 0.0
    python_cpu: float = 0.0
    redis_cpu: float = 0.0

    def cpu_us(self, entries: int) -> float:
        return (self.python_cpu + self.redis_cpu) / entries * 1e6


def measured(client: redis.Redis, work: Callable[[], object], *script_commands: str) -> Run:
    """``work`` timed, with the CPU it cost on both sides (``INFO cpu``, ``getrusage``)."""

    def cpu() -> tuple[float, float, float]:
        usage, info = resource.getrusage(resource.RUSAGE_SELF), client.info("cpu")
        inside = redis_usec(client, *script_commands) / 1e6 if script_commands else 0.0
        return usage.ru_utime + usage.ru_stime, info["used_cpu_user"] + info["used_cpu_sys"], inside

    python_before, redis_before, inside_before = cpu()
    elapsed = timed(work)
    python_after, redis_after, inside_after = cpu()
    return Run(
        elapsed, inside_after - inside_before, python_after - python_before, redis_after - redis_before
    )


def run_retry_all(client: redis.Redis, entries: int, shape: Shape) -> Run:
    """A retry-all; ``inside`` counts the script calls and reads (their own LRANGEs are in their time)."""
    fill(client, entries, shape)
    outcomes = []
    run = measured(
        client,
        lambda: outcomes.append(dlq.retry_all(client, DLQ, budget_seconds=3600)[0]),
        "evalsha",
        "evalsha_ro",
    )
    assert outcomes[0].done == entries and client.llen(TARGET) == entries and not client.exists(DLQ)
    return run


def run_floor(client: redis.Redis, entries: int, shape: Shape, lua: str = FLOOR_LUA) -> Run:
    """``lua`` moving the whole DLQ, ``dlq.BATCH_SIZE`` per call."""
    fill(client, entries, shape)
    floor = client.register_script(lua)

    def move_all() -> None:
        while floor(keys=[DLQ, TARGET], args=[dlq.BATCH_SIZE]):
            pass

    run = measured(client, move_all, "evalsha")
    assert client.llen(TARGET) == entries
    return run


def run_read(client: redis.Redis, entries: int) -> Run:
    """A bare ``LRANGE`` of the target, ``dlq.BATCH_SIZE`` at a time: the least it costs both sides
    to bring each entry to Python (what ``run_floor`` just moved there)."""

    def read_all() -> None:
        for start in range(0, entries, dlq.BATCH_SIZE):
            client.lrange(TARGET, start, start + dlq.BATCH_SIZE - 1)

    return measured(client, read_all)


def decompress_all(raws: list[bytes]) -> None:
    """What a retry of ``Z:`` entries cannot skip: base64 and zstd of each (plain ones cost nothing)."""
    for raw in raws:
        inflate(raw)


def run_naive(client: redis.Redis, entries: int, shape: Shape) -> float:
    fill(client, entries, shape)
    started = time.perf_counter()
    while (raw := client.lpop(DLQ)) is not None:
        client.rpush(TARGET, raw)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert client.llen(TARGET) == entries
    return elapsed


def bench_retry(client: redis.Redis, entries: int, runs: int, shape_name: str) -> None:
    kind, shape = SHAPES[shape_name]
    # Interleaved, so a machine that slows down for a while slows both sides alike.
    consoles, floors = [], []
    for _ in range(runs):
        consoles.append(run_retry_all(client, entries, shape))
        floors.append(run_floor(client, entries, shape))
    console_run, floor_run = min(consoles), min(floors)
    console, inside, floor = console_run.elapsed, console_run.inside, floor_run.elapsed
    read = run_read(client, entries)
    naive = run_naive(client, entries, shape)
    size = statistics.mean(len(shape(n)) for n in range(100))
    print(f"retry-all of {entries:,} {kind}, {size:,.0f} bytes each on average (best of {runs}):")
    floor_label = f"batched-Lua floor (LPOP {dlq.BATCH_SIZE} + RPUSH)"
    print(f"  {floor_label:37} {entries / floor:12,.0f} entries/s  {floor:7.2f} s")
    print(f"  naive LPOP + RPUSH per entry          {entries / naive:12,.0f} entries/s  {naive:7.2f} s")
    print(f"  console dlq.retry_all                 {entries / console:12,.0f} entries/s  {console:7.2f} s")
    print(f"    inside Redis (EVALSHA, EVALSHA_RO)  {inside:7.2f} s ({inside / console:.0%})")
    # Redis time per entry: what no client-side change (bigger batches, pipelining) can move.
    floor_us, console_us = floor_run.inside / entries * 1e6, inside / entries * 1e6
    print(f"  Redis time per entry: floor {floor_us:.2f} us, console {console_us:.2f} us ", end="")
    print(f"(floor/console {floor_us / console_us:.0%})")
    share, speedup = floor / console, naive / console
    floor_met, naive_met = verdict(share >= FLOOR_SHARE_TARGET), verdict(speedup >= NAIVE_TARGET)
    print(f"  console/floor {share:.0%} (target >= {FLOOR_SHARE_TARGET:.0%}: {floor_met})")
    print(f"  console/naive {speedup:.1f}x (target >= {NAIVE_TARGET:g}x: {naive_met})")
    decompressing = None
    if shape_name != "plain":  # Redis cannot decompress: the least Python does per Z: entry
        raws = [shape(n) for n in range(entries)]
        decompressing = min(measured(client, partial(decompress_all, raws)) for _ in range(runs))
        took = decompressing.elapsed
        bound = "bound: decompressing each entry alone"
        print(f"  {bound:37} {entries / took:12,.0f} entries/s  {took:7.2f} s", end="")
        print(f"  ({floor / took:.0%} of the floor: no retry that reads the job gets more)")
    else:  # cjson cannot read Z: entries
        for label, (lua, ratio) in REFERENCES.items():
            took = min(run_floor(client, entries, shape, lua).elapsed for _ in range(runs))
            print(f"  {'reference: ' + label:37} {entries / took:12,.0f} entries/s  {took:7.2f} s", end="")
            print(f"  ({floor / took:.0%} of the floor; {ratio} {took / console:.0%})")
    report_cpu(entries, console_run, floor_run, read, decompressing, naive)


def report_cpu(
    entries: int, console: Run, floor: Run, read: Run, decompressing: Run | None, naive: float
) -> None:
    """CPU per entry (this process's threads and redis-server together) against what the machine's
    cores allow each target if they did nothing else; for ``Z:`` entries, also the least any retry
    that reads the job costs: the floor's move, a bare read and decompressing."""
    cores = os.cpu_count() or 1
    python, server = console.python_cpu / entries * 1e6, console.redis_cpu / entries * 1e6
    busy = (console.python_cpu + console.redis_cpu) / console.elapsed
    print(f"  CPU per entry, both sides: console {python + server:.2f} us (Python {python:.2f}, ", end="")
    print(f"redis-server {server:.2f}), {busy:.2f} of {cores} cores busy")
    allow_floor = cores * floor.elapsed / FLOOR_SHARE_TARGET / entries * 1e6
    allow_naive = cores * naive / NAIVE_TARGET / entries * 1e6
    print(f"  {cores} cores at 100% allow per entry {allow_floor:.2f} us for ", end="")
    print(f"{FLOOR_SHARE_TARGET:.0%} of the floor, {allow_naive:.2f} us for {NAIVE_TARGET:g}x naive")
    if decompressing is not None:
        parts = [run.cpu_us(entries) for run in (floor, read, decompressing)]
        print(f"  least any retry that reads the job costs: the floor's move {parts[0]:.2f} + ", end="")
        print(f"a bare read {parts[1]:.2f} + decompressing {parts[2]:.2f} = {sum(parts):.2f} us")


def slowest_commands(client: redis.Redis, threshold_us: int, work: Callable[[], object]) -> dict[str, Any]:
    """The client's commands slower than ``threshold_us`` while ``work`` runs, from the slow log.

    The log is made long enough to keep every one (``SLOWLOG GET 128`` alone would see only the
    last 128), commands that scripts run inside Redis are left out (their script call counts
    them), and the latency monitor's worst command is read as a cross-check.
    """
    client.config_set("slowlog-max-len", 1_000_000)
    client.config_set("slowlog-log-slower-than", threshold_us)
    client.config_set("latency-monitor-threshold", 1)
    client.execute_command("LATENCY", "RESET")
    client.slowlog_reset()
    elapsed = timed(work)
    # The monitor first: SLOWLOG GET of thousands of entries is itself a slow command.
    latest = client.execute_command("LATENCY", "LATEST")
    log = client.slowlog_get(-1)
    client.config_set("slowlog-log-slower-than", 10_000)
    client.config_set("latency-monitor-threshold", 0)
    client.slowlog_reset()
    own = (b"SLOWLOG", b"CONFIG", b"LATENCY", b"INFO")
    commands = [
        (e["command"].split(b" ", 1)[0].decode().upper(), e["duration"])
        for e in log
        if e.get("client_address") != b"?:0" and not e["command"].upper().startswith(own)
    ]
    scripts = sorted(duration for name, duration in commands if name == "EVALSHA") or [0]
    name, worst = max(commands, key=lambda c: c[1], default=("none", 0))
    monitor = max((int(event[3]) for event in latest if event[0] == b"command"), default=0)
    return {
        "elapsed": elapsed,
        "count": len(commands),
        "worst_ms": worst / 1000,
        "name": name,
        "script_p50_ms": scripts[len(scripts) // 2] / 1000,
        "script_p99_ms": scripts[int(len(scripts) * 0.99)] / 1000,
        "monitor_ms": monitor,
    }


def bench_slowlog(client: redis.Redis, entries: int, threshold_us: int, stale: int) -> None:
    floor = client.register_script(FLOOR_LUA)

    def floor_run() -> None:
        while floor(keys=[DLQ, TARGET], args=[dlq.BATCH_SIZE]):
            pass

    def retry_all() -> None:
        dlq.retry_all(client, DLQ, budget_seconds=3600)

    def matching(act: dlq.Act, keep: dlq.Keep) -> Callable[[], object]:
        return lambda: dlq.sweep(client, DLQ, act, keep, budget_seconds=3600)

    def put_back() -> None:  # the end of a run stopped after keeping one entry: all the rest move
        dlq.put_back(client, DLQ, budget_seconds=3600, start=1, unexamined=entries - 1)

    in_cam0 = dlq.retry_keep(lambda entry: entry.matches(dlq.Criteria(camera="cam0")))
    cases: list[tuple[str, Shape, Callable[[], object], int]] = [
        ("floor (LPOP + RPUSH script, no checks)", failure, floor_run, 0),
        ("retry-all", failure, retry_all, 0),
        ("retry-all, every 4th entry Z: with a stack trace,", SHAPES["mixed"][1], retry_all, 0),
        ("delete-all", failure, matching(dlq.delete_window, dlq.delete_keep()), 0),
        ("retry of every entry of camera cam0 (1 in 5)", failure, matching(dlq.retry_window, in_cam0), 4),
        ("put back in order (ending a stopped run)", failure, put_back, 5),
    ]
    for label, shape, work, left_per_5 in cases:
        fill(client, entries, shape)
        found = slowest_commands(client, threshold_us, work)
        assert client.llen(DLQ) == entries * left_per_5 // 5
        report_commands(f"{label} of {entries:,} entries", entries, found, threshold_us)
    bench_selected(client, entries, threshold_us)
    bench_stale_batch(client, entries, threshold_us, stale)


def report_commands(label: str, entries: int, found: dict[str, Any], threshold_us: int) -> None:
    print(f"{label}: {found['elapsed']:.1f} s, {entries / found['elapsed']:,.0f}/s")
    print(
        f"  largest single command {found['worst_ms']:.2f} ms ({found['name']}); "
        f"script calls p50 {found['script_p50_ms']:.2f} ms, p99 {found['script_p99_ms']:.2f} ms "
        f"({found['count']:,} commands over {threshold_us} us)"
    )
    print(f"  latency monitor worst command {found['monitor_ms']} ms")
    print(f"  target <= {COMMAND_TARGET_MS:g} ms: {verdict(found['worst_ms'] <= COMMAND_TARGET_MS)}")


def bench_selected(client: redis.Redis, entries: int, threshold_us: int) -> None:
    """Retry of a page of 100 entries an operator ticked, at the head and in the middle of the DLQ:
    each is tombstoned where it is and the call removes them with one LREM from the nearer end."""
    fill(client, entries)
    for where, offset in (("at the head", 0), ("in the middle", entries // 2)):
        page = dlq.page(client, DLQ, offset=offset, limit=100).entries
        found = slowest_commands(client, threshold_us, partial(dlq.retry, client, DLQ, page))
        assert client.llen(TARGET) == len(page)
        client.delete(TARGET)
        print(
            f"retry of 100 selected entries {where} of {entries:,}: {found['elapsed'] * 1000:.1f} ms, "
            f"largest single command {found['worst_ms']:.2f} ms ({found['name']})"
        )


def bench_stale_batch(client: redis.Redis, entries: int, threshold_us: int, stale: int) -> None:
    """What the losing side of two racing retries sends: a batch whose entries are already gone."""
    fill(client, entries)
    batch = dlq.page(client, DLQ, offset=entries // 2, limit=stale).entries
    assert dlq.delete(client, DLQ, batch).done == len(batch)
    found = slowest_commands(client, threshold_us, lambda: dlq.retry(client, DLQ, batch))
    print(
        f"stale batch: retry of {len(batch)} already-gone entries in the middle of {entries - len(batch):,}:"
    )
    print(f"  largest single command {found['worst_ms']:.2f} ms ({found['name']})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--page-entries", type=int, default=1_000_000)
    parser.add_argument("--retry-entries", type=int, default=100_000)
    parser.add_argument("--slowlog-entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="retry-all runs (page: 10x as many)")
    parser.add_argument("--slowlog-threshold-us", type=int, default=100)
    parser.add_argument("--stale", type=int, default=20, help="entries in the stale-batch probe")
    args = parser.parse_args()
    server = SERVER.start()
    client = server.client(socket_timeout=120)
    try:
        print(f"redis-server {client.info('server')['redis_version']}, Python {sys.version.split()[0]}")
        bench_page(client, args.page_entries, args.runs * 10)
        bench_large_page(client, args.runs * 3)
        bench_breakdown(client, args.page_entries, args.runs * 3)
        bench_retry(client, args.retry_entries, args.runs, "plain")
        bench_retry(client, args.retry_entries, args.runs, "mixed")
        bench_retry(client, args.retry_entries, args.runs, "traced")  # HSI's usual: the target's size
        bench_retry(client, args.retry_entries // 5, args.runs, "big")  # rare; a fifth keeps the run short
        bench_slowlog(client, args.slowlog_entries, args.slowlog_threshold_us, args.stale)
    finally:
        server.stop()
        shutil.rmtree(FOLDER, ignore_errors=True)


if __name__ == "__main__":
    main()
