"""Benchmark: the dashboard's key census and the value codec against the raw-Redis floor.

Run on demand: ``make bench`` (or ``.venv/bin/python bench/overview.py --keys 200000``).
It starts a private redis-server, fills it, measures the raw floor in the same run (a bare SCAN
loop; bare GETs) and prints the console's cost as a ratio of it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    {"DJANGO_SETTINGS_MODULE": "console.settings", "DJANGO_DEBUG": "true", "DJANGO_ENV_FILE": ""}
)

import django  # noqa: E402
import redis  # noqa: E402

django.setup()

from queues import keys  # noqa: E402
from queues.codec import decode, encode_payload  # noqa: E402
from queues.overview import key_census  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

FAMILY_KEYS = (
    keys.dedupe_key,
    keys.job_key,
    keys.batch_event_key,
    keys.idempotency_key,
    keys.orchestrator_state_key,
)


def fill(client: redis.Redis, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        builder = FAMILY_KEYS[i % len(FAMILY_KEYS)]
        pipe.set(builder(f"{i:08x}"), b"1")
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings), statistics.median(timings)


def raw_scan(client: redis.Redis, limit: int, count: int) -> int:
    cursor, seen = 0, 0
    while True:
        cursor, batch = client.scan(cursor, count=count)
        seen += len(batch)
        if cursor == 0 or seen >= limit:
            return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder)).start()
        client = server.client()
        try:
            fill(client, args.keys)
            limit, count = args.keys + 1, 1000
            floor = best_of(args.runs, lambda: raw_scan(client, limit, count))
            census = best_of(args.runs, lambda: key_census(client, limit=limit))
            print(f"key census of {args.keys:,} keys (SCAN COUNT {count}):")
            print(f"  raw SCAN floor  best {floor[0] * 1000:8.1f} ms  median {floor[1] * 1000:8.1f} ms")
            print(f"  console census  best {census[0] * 1000:8.1f} ms  median {census[1] * 1000:8.1f} ms")
            print(f"  ratio census/floor (best): {census[0] / floor[0]:.2f}x")
            bench_codec(client, args.runs)
        finally:
            server.stop()


def bench_codec(client: redis.Redis, runs: int) -> None:
    frames = (f'  File "/app/backend/services/mod_{i}.py", line {i * 7}, in step_{i:x}\n' for i in range(60))
    trace = "".join(frames)
    entry = {"original_job": {"camera_id": "porch"}, "error": "x", "stack_trace": trace}
    stored = encode_payload(entry)
    client.delete("bench:list")
    client.rpush("bench:list", *([stored] * 100))
    floor = best_of(runs, lambda: client.lrange("bench:list", 0, 99))
    decoded = best_of(runs, lambda: [decode(raw) for raw in client.lrange("bench:list", 0, 99)])
    print(f"page of 100 zstd DLQ entries ({len(stored):,} bytes each stored):")
    print(f"  raw LRANGE floor  best {floor[0] * 1000:8.2f} ms")
    print(f"  LRANGE + decode   best {decoded[0] * 1000:8.2f} ms")
    print(f"  ratio (best): {decoded[0] / floor[0]:.2f}x")


if __name__ == "__main__":
    main()
