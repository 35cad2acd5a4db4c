"""Benchmark: overview, dashboard, jobs and keys pages on a Redis holding 1M keys of mixed families.

Run on demand: ``.venv/bin/python bench/keyspace.py`` (smaller: ``--keys 200000``). It starts a
private redis-server, writes the demo world and then ``--keys`` keys of mixed HSI families with
pipelined writes (10% ``job:{id}`` JobTracker values, 1% ``job:{id}:status`` with their index
sorted sets, dedupe, hsi:cache, rate_limit, batch and idempotency keys, the rest filler), logs a
staff user with the Admin role into Django's test client (temporary SQLite database), and measures:

- each page once cold (console cache cleared) and ``--runs`` times warm: server time (median, best)
  against the target of 200 ms per warm page;
- the raw floor from the same run: a bare ``DBSIZE`` + ``INFO`` round trip and a bare ``SCAN`` of
  20,000 keys (COUNT 1000);
- the largest single Redis command during one cold + warm round of all pages, from the slow log
  (threshold ``--slowlog-threshold-us``, default 100), against the target of 5 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.console_env import admin_client, get, private_console  # noqa: E402

FOLDER, SERVER = private_console("hsi-bench-keyspace-")

import django  # noqa: E402
import redis  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from bench.dlq import slowest_commands, timed, verdict  # noqa: E402
from bench.overview import raw_scan  # noqa: E402
from orchestrator.state import DISCOVERED_CACHE  # noqa: E402
from queues import jobs, keys  # noqa: E402
from queues.demo import build_demo_world  # noqa: E402
from tests.job_fixtures import status_job, tracker_job  # noqa: E402

PAGES = (
    ("overview", "/overview/"),
    ("dashboard", "/"),
    ("jobs, first page", "/jobs/"),
    ("jobs, status=failed", "/jobs/?status=failed"),
    ("keys index", "/keys/"),
)
# The console's own cache entries (django-redis); cache.clear() would FLUSHDB the benchmark's keys.
# "server_report" is queues.server_report.CACHE_KEY.
CACHED = ("overview", jobs.CACHE_KEY, "server_report", DISCOVERED_CACHE)
PAGE_TARGET_MS, COMMAND_TARGET_MS = 200.0, 5.0
STATUSES = ("pending", "running", "completed", "failed", "cancelled")
CHUNK = 10_000
# Share of --keys per family; whatever is left is filler.
SHARES = {"tracker": 0.10, "status": 0.01, "dedupe": 0.15}
SHARES |= {"cache": 0.05, "rate": 0.05, "batch": 0.05, "idem": 0.05}


def sha(n: int) -> str:
    return hashlib.sha256(n.to_bytes(8, "big")).hexdigest()


def family_writes(kind: str, n: int, pipe: redis.client.Pipeline) -> None:
    """Queue the writes of the ``n``-th key of ``kind`` on ``pipe``, shaped as HSI writes them."""
    job_id = f"{n:08x}-bench-{sha(n)[:12]}"
    status = STATUSES[n % len(STATUSES)]
    if kind == "tracker":
        pipe.set(keys.job_key(job_id), json.dumps(tracker_job(job_id, status)), ex=3600 if n % 2 else None)
    elif kind == "status":
        pipe.set(keys.job_status_key(job_id), json.dumps(status_job(job_id, status)))
        created = time.time() - 60 - n
        pipe.zadd("job:status:list", {job_id: created})
        if status == "running":
            pipe.zadd("jobs:active", {job_id: created + 1})
        elif status != "pending":
            pipe.zadd("jobs:completed", {job_id: created + 30})
    elif kind == "dedupe":
        pipe.set(keys.dedupe_key(sha(n)), b"1", ex=86_400)
    elif kind == "cache":
        pipe.set(keys.cache_key(f"bench:events:{n}"), json.dumps({"items": [n, n + 1], "total": 2}), ex=300)
    elif kind == "rate":
        client_ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        pipe.set(keys.rate_limit_key("default", client_ip), n % 60, ex=60)
    elif kind == "batch":
        pipe.set(keys.batch_field_key(f"batch-{n:08x}", "camera_id"), f"camera_{n % 16}", ex=3600)
    elif kind == "idem":
        pipe.set(keys.idempotency_key(sha(n)[:32]), json.dumps({"status": 201, "body": "{}"}), ex=86_400)
    else:
        pipe.set(f"bench:filler:{n:08x}", b"x" * 32)


def fill(client: redis.Redis, count: int) -> dict[str, int]:
    """The demo world, then ``count`` keys of mixed families in pipelined chunks; keys per family."""
    build_demo_world(client)
    plan = {kind: int(count * share) for kind, share in SHARES.items()}
    plan["filler"] = count - sum(plan.values())
    pipe = client.pipeline(transaction=False)
    queued = 0
    for kind, many in plan.items():
        for n in range(many):
            family_writes(kind, n, pipe)
            queued += 1
            if queued % CHUNK == 0:
                pipe.execute()
    pipe.execute()
    return plan


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def cool() -> None:
    """Drop the console's cached overview, jobs snapshot, server report and discovered services."""
    cache.delete_many(list(CACHED))


def bench_floor(client: redis.Redis, runs: int) -> float:
    info = [timed(lambda: (client.dbsize(), client.info())) for _ in range(runs)]
    scan = [timed(lambda: raw_scan(client, 20_000, 1000)) for _ in range(runs)]
    print(f"raw floor ({runs} runs):")
    print(f"  DBSIZE + INFO          best {ms(min(info))}  median {ms(statistics.median(info))}")
    print(f"  SCAN of 20,000 keys    best {ms(min(scan))}  median {ms(statistics.median(scan))}")
    return statistics.median(info) + statistics.median(scan)


def print_snapshot(client: redis.Redis) -> None:
    """What every warm jobs page reads from the console's cache."""
    taken = cache.get(jobs.CACHE_KEY)
    if isinstance(taken, jobs.Snapshot):
        stored = client.strlen(cache.make_key(jobs.CACHE_KEY))
        print(
            f"    jobs snapshot read from the cache by every warm jobs page: {len(taken):,} jobs, "
            f"{stored / 1e6:.1f} MB cached; scanned {taken.scanned:,} keys "
            f"(complete: {taken.scan_complete}), indexed {taken.indexed:,} (complete: {taken.index_complete})"
        )


def bench_pages(client: redis.Redis, web: Client, runs: int, floor: float) -> None:
    for _, url in PAGES:  # imports, URL resolver, templates: not what the target is about
        get(web, url)
    print(f"pages, server time (cold: console cache cleared; warm: {runs} runs):")
    worst = 0.0
    for label, url in PAGES:
        cool()
        cold = get(web, url)
        warm = [get(web, url) for _ in range(runs)]
        median = statistics.median(warm)
        worst = max(worst, median)
        print(
            f"  {label:22} {url:22} cold {ms(cold)}  warm median {ms(median)}  best {ms(min(warm))}"
            f"  ({median / floor:.1f}x floor)"
        )
        if url == "/jobs/":
            print_snapshot(client)
    met = verdict(worst * 1000 <= PAGE_TARGET_MS)
    print(f"  slowest warm median {ms(worst).strip()}; target <= {PAGE_TARGET_MS:g} ms per page: {met}")


def one_round(web: Client) -> None:
    cool()
    for _, url in PAGES:
        get(web, url)
        get(web, url)


def bench_slowlog(client: redis.Redis, web: Client, threshold_us: int) -> None:
    try:
        found = slowest_commands(client, threshold_us, lambda: one_round(web))
    except ValueError:  # slowest_commands found no command over the threshold at all
        found = {"elapsed": float("nan"), "worst_ms": 0.0, "name": "none", "count": 0, "monitor_ms": 0}
    print(f"one cold + warm round of all pages: {found['elapsed'] * 1000:.0f} ms")
    print(
        f"  largest single command {found['worst_ms']:.2f} ms ({found['name']}); "
        f"{found['count']:,} commands over {threshold_us} us; "
        f"latency monitor worst command {found['monitor_ms']} ms"
    )
    print(f"  target <= {COMMAND_TARGET_MS:g} ms: {verdict(found['worst_ms'] <= COMMAND_TARGET_MS)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10, help="warm requests per page")
    parser.add_argument("--slowlog-threshold-us", type=int, default=100)
    args = parser.parse_args()
    SERVER.start()
    client = SERVER.client(socket_timeout=120)
    try:
        print(f"redis-server {client.info('server')['redis_version']}, Python {sys.version.split()[0]}")
        print(f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}, {os.cpu_count()} CPUs")
        started = time.perf_counter()
        plan = fill(client, args.keys)
        print(
            f"filled {client.dbsize():,} keys in {time.perf_counter() - started:.0f} s: "
            + ", ".join(f"{kind} {many:,}" for kind, many in plan.items())
        )
        call_command("migrate", verbosity=0, interactive=False)
        web = admin_client()
        floor = bench_floor(client, args.runs)
        bench_pages(client, web, args.runs, floor)
        bench_slowlog(client, web, args.slowlog_threshold_us)
        print(f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    finally:
        SERVER.stop()
        shutil.rmtree(FOLDER, ignore_errors=True)


if __name__ == "__main__":
    main()
