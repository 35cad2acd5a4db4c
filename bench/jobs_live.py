"""Benchmark: live job rows by sampling (``queues.jobs.LiveSampler``) vs keyspace notifications.

Run on demand: ``.venv/bin/python bench/jobs_live.py`` (``--help`` for sizes). It starts a private
redis-server, writes ``--jobs`` JobTracker jobs (finished, with a TTL, as HSI leaves them) plus
``--active`` running JobStatusService jobs in ``jobs:active`` and a few running JobTracker jobs, and
measures in the same run:

- one sample tick (what the relay does every HSI_JOB_SAMPLE_SECONDS): Redis time (INFO
  commandstats) and wall time per tick, and the largest single command (slow log);
- one discovery of open JobTracker jobs (a bounded SCAN of ``job:*`` + pipelined GETs), which the
  relay does every 30 s;
- the alternative: ``notify-keyspace-events K$`` with one PSUBSCRIBE on ``__keyspace@0__:job:*``.
  Notifications are off on HSI's Redis; turned on, every string write (not only job writes) pays
  for the check and every job write publishes a message. Measured as Redis time per SET of
  ``--writes`` writes with notifications off, on without subscriber, and on with a subscriber. A
  notification says only "key changed", so the relay would still GET the value of every changed job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FOLDER = Path(tempfile.mkdtemp(prefix="hsi-bench-jobs-live-"))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "DJANGO_DEBUG": "true",
        "DJANGO_ENV_FILE": "",
        "DATABASE_URL": f"sqlite:///{FOLDER / 'db.sqlite3'}",
    }
)

import django  # noqa: E402
import redis  # noqa: E402

django.setup()

from bench.dlq import redis_usec, slowest_commands  # noqa: E402
from queues import jobs, keys  # noqa: E402
from tests.job_fixtures import status_job, tracker_job  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

SAMPLE_COMMANDS = ("zrevrange", "mget", "get", "ttl", "type")
DISCOVER_COMMANDS = ("scan", "mget", "get", "ttl", "type")


def fill(client: redis.Redis, total: int, active: int, tracker_running: int) -> None:
    pipe = client.pipeline(transaction=False)
    for n in range(total):
        job_id = f"t{n:07d}"
        status = "running" if n < tracker_running else "completed"
        pipe.set(
            keys.job_key(job_id),
            json.dumps(tracker_job(job_id, status)),
            ex=None if n < tracker_running else 3600,
        )
        if n % 5000 == 4999:
            pipe.execute()
    for n in range(active):
        job_id = f"s{n:05d}"
        pipe.set(keys.job_status_key(job_id), json.dumps(status_job(job_id, "running", progress=n % 100)))
        pipe.zadd(keys.JOBS_ACTIVE, {job_id: time.time() - n})
        pipe.zadd(keys.JOB_STATUS_LIST, {job_id: time.time() - n})
    pipe.execute()


def move(client: redis.Redis, active: int, share: float, tick: int) -> None:
    """``share`` of the active jobs report progress (as HSI's workers do between two ticks)."""
    pipe = client.pipeline(transaction=False)
    for n in range(0, active, max(1, round(1 / share))):
        job_id = f"s{n:05d}"
        pipe.set(
            keys.job_status_key(job_id), json.dumps(status_job(job_id, "running", progress=(n + tick) % 100))
        )
    pipe.execute()


def bench_sampler(client: redis.Redis, active: int, ticks: int) -> None:
    sampler = jobs.LiveSampler()
    turns: list[tuple[float, float]] = []
    while True:  # one discovery every 30 s in the relay, each resuming the previous SCAN
        before = redis_usec(client, *DISCOVER_COMMANDS)
        started = time.perf_counter()
        sampler.discover(client)
        turns.append(
            ((time.perf_counter() - started) * 1000, (redis_usec(client, *DISCOVER_COMMANDS) - before) / 1000)
        )
        if sampler.cursor == 0:
            break
    print(
        f"  discovery (one turn every 30 s): {len(turns)} turns cover job:*, "
        f"{len(sampler.tracker_ids)} open JobTracker jobs found"
    )
    print(
        f"    per turn: wall median {statistics.median(t[0] for t in turns):.0f} ms, "
        f"Redis median {statistics.median(t[1] for t in turns):.1f} ms, max {max(t[1] for t in turns):.1f} ms"
    )
    sampler.sample(client, "warm-up")
    redis_ms, wall_ms, rows = [], [], []
    for tick in range(ticks):
        move(client, active, 0.25, tick + 1)
        before = redis_usec(client, *SAMPLE_COMMANDS)
        started = time.perf_counter()
        changed = sampler.sample(client, f"tick-{tick}")
        wall_ms.append((time.perf_counter() - started) * 1000)
        redis_ms.append((redis_usec(client, *SAMPLE_COMMANDS) - before) / 1000)
        rows.append(len(changed))
    print(
        f"  sample tick ({ticks} ticks, {active} active + {len(sampler.tracker_ids)} JobTracker jobs read):"
    )
    print(f"    Redis per tick  median {statistics.median(redis_ms):.2f} ms  max {max(redis_ms):.2f} ms")
    print(f"    wall per tick   median {statistics.median(wall_ms):.2f} ms  max {max(wall_ms):.2f} ms")
    print(f"    changed rows sent per tick: median {statistics.median(rows):.0f}")
    worst = slowest_commands(client, 0, lambda: sampler.sample(client, "slowlog"))
    print(f"    largest single command: {worst['name']} {worst['worst_ms']:.3f} ms (of {worst['count']})")


def timed_writes(client: redis.Redis, writes: int) -> tuple[float, float]:
    """(Redis µs per SET, wall µs per SET) for ``writes`` pipelined SETs of job values."""
    value = json.dumps(tracker_job("x", "running"))
    before = redis_usec(client, "set")
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for n in range(writes):
        pipe.set(keys.job_key(f"w{n % 1000:04d}"), value)
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()
    wall = time.perf_counter() - started
    return (redis_usec(client, "set") - before) / writes, wall * 1e6 / writes


def bench_notifications(server: RedisServer, client: redis.Redis, writes: int) -> None:
    client.config_set("notify-keyspace-events", "")
    off = min(timed_writes(client, writes) for _ in range(3))
    client.config_set("notify-keyspace-events", "K$")
    on = min(timed_writes(client, writes) for _ in range(3))
    received = [0]
    listener = server.client()
    pubsub = listener.pubsub()
    pubsub.psubscribe("__keyspace@0__:job:*")
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            if pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1):
                received[0] += 1

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    listened = min(timed_writes(client, writes) for _ in range(3))
    time.sleep(0.5)
    stop.set()
    thread.join()
    client.config_set("notify-keyspace-events", "")
    print(f"  {writes:,} SETs of a job value, best of 3 (Redis µs per SET / wall µs per SET):")
    print(f"    notifications off            {off[0]:.2f} / {off[1]:.2f}")
    print(
        f"    K$ on, nobody subscribed     {on[0]:.2f} / {on[1]:.2f}  "
        f"({(on[0] / off[0] - 1) * 100:+.0f}% Redis)"
    )
    print(
        f"    K$ on, one PSUBSCRIBE        {listened[0]:.2f} / {listened[1]:.2f}  "
        f"({(listened[0] / off[0] - 1) * 100:+.0f}% Redis); {received[0]:,} notifications received"
    )
    print("    (and each notification names only the key: the relay would still GET every changed job)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=200)
    parser.add_argument("--tracker-running", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--writes", type=int, default=100_000)
    args = parser.parse_args()
    server = RedisServer(FOLDER / "redis").start()
    try:
        client = server.client()
        fill(client, args.jobs, args.active, args.tracker_running)
        print(f"Redis with {client.dbsize():,} keys ({args.jobs:,} JobTracker jobs, {args.active} active)")
        print("Sampling (the relay's choice):")
        bench_sampler(client, args.active, args.ticks)
        print("Keyspace notifications (the alternative):")
        bench_notifications(server, client, args.writes)
    finally:
        server.kill()


if __name__ == "__main__":
    main()
