"""Faults with real processes and a real Redis: nothing lost, nothing duplicated.

A redis-server SIGKILLed mid retry-all of a list or a stream DLQ (or while a DLQ is put back in
order) and restarted from its AOF, operators racing in separate processes, a console process
SIGKILLed mid archive-delete, and a script cache emptied by a restart.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from console.redis import get_redis
from queues import dlq, scripts
from queues.codec import decode
from tests.factories import failure
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
DLQ, TARGET = "dlq:detection_queue", "detection_queue"
AOF = ("--appendonly", "yes", "--appendfsync", "always")

# One console process: sets Django up from the environment, optionally waits at a barrier, acts,
# and prints a JSON summary. argv: mode, then the mode's arguments.
WORKER = """
import json, os, sys, time
from pathlib import Path

import django

django.setup()

from console.redis import get_redis
from queues import archive, dlq

mode, key = sys.argv[1], sys.argv[2]
client = get_redis()
client.ping()
if os.environ.get("READY_FILE"):
    Path(os.environ["READY_FILE"]).write_text("ready")
    while not Path(os.environ["GO_FILE"]).exists():
        time.sleep(0.002)
if mode == "retry-all":
    outcome, _ = dlq.retry_all(client, key, budget_seconds=600)
    result = outcome.as_dict()
elif mode == "retry-matching":  # the odd-numbered jobs, as a filtered retry from the console
    keep = dlq.retry_keep(lambda entry: entry.matches(dlq.Criteria(text="detector unavailable")))
    outcome, _ = dlq.sweep(client, key, dlq.retry_window, keep, budget_seconds=600)
    result = outcome.as_dict()
elif mode == "retry-refs":
    refs = json.loads(Path(sys.argv[3]).read_text())
    done = found = 0
    for start in range(0, len(refs), 50):
        entries = dlq.resolve(client, key, dlq.parse_refs(refs[start : start + 50]))
        found += len(entries)
        done += dlq.retry(client, key, entries).done
    result = {"done": done, "found": found}
elif mode == "archive-all":
    def action(c, k, window):
        return archive.archive_and_rotate(c, k, window, "tester")

    outcome, _ = dlq.sweep(client, key, action, dlq.delete_keep(), budget_seconds=600)
    result = outcome.as_dict()
elif mode == "put-back":  # the end of a run that kept argv[3] entries with argv[4] not examined
    kept, unexamined = int(sys.argv[3]), int(sys.argv[4])
    outcome, _ = dlq.put_back(client, key, budget_seconds=600, start=kept, unexamined=unexamined)
    result = outcome.as_dict()
elif mode == "stream-retry-all":  # every entry: stream_retry_run.lua reads what it moves
    from queues import streams

    outcome, _, _ = streams.sweep(client, key, streams.retry_entries, budget_seconds=600)
    result = outcome.as_dict()
elif mode == "stream-retry-ids":
    from queues import streams

    ids = json.loads(Path(sys.argv[3]).read_text())
    result = {"done": sum(streams.retry(client, key, ids[i : i + 100]).done for i in range(0, len(ids), 100))}
elif mode == "reconcile":
    from console.models import ArchivedItem

    pending = ArchivedItem.objects.filter(state="pending").count()
    result = {"pending": pending, "settled": archive.reconcile(client)}
elif mode == "restore":
    from queues import actions

    result = actions.restore(client, json.loads(sys.argv[3]), to_source=False, request=None)
else:
    raise SystemExit(f"unknown mode {mode}")
print(json.dumps(result))
"""


def fill(client: redis.Redis, count: int) -> None:
    """HSI's entries in runs of 500 ``Z:``-compressed ones then 1,500 plain ones, so a retry-all
    switches between its two paths: the script decoding entries itself, and runs Python decoded."""
    pipe = client.pipeline(transaction=False)
    for start in range(0, count, 1000):
        chunk = range(start, min(start + 1000, count))
        pipe.rpush(DLQ, *[failure(n, trace=(n // 500) % 4 == 0) for n in chunk])
    pipe.execute()


def listed(client: redis.Redis, key: str = DLQ) -> list[bytes]:
    return [dlq.as_bytes(raw) for raw in client.lrange(key, 0, -1)]


def still_queued(client: redis.Redis, raw: bytes) -> bool:
    return client.lpos(DLQ, cast(Any, raw)) is not None


def numbers(client: redis.Redis) -> list[int]:
    """``n`` of every entry in the DLQ (a JobFailure) and the target (the bare job)."""
    in_dlq = [decode(raw).value["original_job"]["n"] for raw in client.lrange(DLQ, 0, -1)]
    return in_dlq + [decode(raw).value["n"] for raw in client.lrange(TARGET, 0, -1)]


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def loaded_client(server: RedisServer) -> redis.Redis:
    """A fresh client once the server has finished loading its AOF."""
    client = server.client()

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.BusyLoadingError:
            return False

    wait_until(ready, 30, "redis-server to load its data", interval=0.05)
    return client


def kill_mid_way(server: RedisServer, worker: subprocess.Popen[bytes]) -> redis.Redis:
    """SIGKILL redis-server under a running worker, let the worker fail (connection refused: nothing
    to finish against), restart the server from its AOF; a client once it has loaded."""
    server.kill()
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        worker.kill()
    server.start()
    return loaded_client(server)


class Workers:
    """Console processes for one test; every one still running is SIGKILLed at teardown."""

    script = WORKER  # what each process runs (``python -c``)

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def env(self, redis_url: str, database_url: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DJANGO_DEBUG": "true",
            "DJANGO_ENV_FILE": "",
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "QUEUE_MAX_SIZE": "10000000",
            **extra,
        }

    def spawn(
        self, *args: str, redis_url: str, database_url: str = "", **extra: str
    ) -> subprocess.Popen[bytes]:
        name = f"{len(self.procs)}-{args[0]}"
        out = self.folder / f"{name}.log"
        database_url = database_url or f"sqlite:///{self.folder / 'unused.sqlite3'}"
        with (self.folder / f"{name}.out").open("wb") as stdout, out.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-c", self.script, *args],
                cwd=ROOT,
                env=self.env(redis_url, database_url, **extra),
                stdout=stdout,
                stderr=stderr,
            )
        self.procs.append(proc)
        self.logs[proc.pid] = out
        return proc

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[proc.pid].read_text()[-3000:]

    def result(self, proc: subprocess.Popen[bytes], timeout: float = 90) -> dict[str, Any]:
        """The JSON a worker printed; it must exit 0."""
        code = proc.wait(timeout)
        assert code == 0, f"worker exited {code}: {self.stderr(proc)}"
        out = self.logs[proc.pid].with_suffix(".out").read_text()
        value: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return value

    def run(self, *args: str, redis_url: str, database_url: str = "") -> dict[str, Any]:
        return self.result(self.spawn(*args, redis_url=redis_url, database_url=database_url))

    def race(self, jobs: list[tuple[str, ...]], redis_url: str) -> list[dict[str, Any]]:
        """Start a worker per job, let them all connect, release them at once; their results."""
        go = self.folder / "go"
        procs = [
            self.spawn(*job, redis_url=redis_url, READY_FILE=str(self.folder / f"ready-{i}"), GO_FILE=str(go))
            for i, job in enumerate(jobs)
        ]
        wait_until(
            lambda: all(self.alive(p) and (self.folder / f"ready-{i}").exists() for i, p in enumerate(procs)),
            60,
            "the workers to be ready",
            interval=0.02,
        )
        go.write_text("go")
        return [self.result(proc) for proc in procs]

    def alive(self, proc: subprocess.Popen[bytes]) -> bool:
        if proc.poll() is None:
            return True
        raise AssertionError(f"worker exited {proc.returncode} too early: {self.stderr(proc)}")

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    try:
        yield pool
    finally:
        pool.kill_all()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", ["retry-all", "retry-matching"])
def test_redis_killed_mid_retry_all_loses_and_duplicates_nothing(
    start_server: Callable[..., RedisServer], workers: Workers, mode: str
) -> None:
    total = 100_000
    wanted = total if mode == "retry-all" else total // 2
    server = start_server(extra=AOF)
    client = server.client()
    assert client.config_get("appendfsync") == {"appendfsync": "always"}
    fill(client, total)
    worker = workers.spawn(mode, DLQ, redis_url=server.url)
    wait_until(lambda: workers.alive(worker) and client.llen(TARGET) >= 5_000, 60, f"{mode} to start")
    client = kill_mid_way(server, worker)
    moved = client.llen(TARGET)
    assert 0 < moved < wanted, "the kill did not land mid-way"
    assert sorted(numbers(client)) == list(range(total)), "the AOF replay lost or duplicated entries"
    rerun = workers.run(mode, DLQ, redis_url=server.url)
    assert rerun["done"] == wanted - moved
    assert client.llen(DLQ) == total - wanted
    assert client.llen(TARGET) == wanted
    assert sorted(numbers(client)) == list(range(total))
    if mode == "retry-matching":
        assert all(n % 2 for n in numbers(client)[total - wanted :]), "only the matching jobs were retried"


@pytest.mark.timeout(240)
def test_redis_killed_while_a_dlq_is_put_back_in_order_loses_and_duplicates_nothing(
    start_server: Callable[..., RedisServer], workers: Workers
) -> None:
    """A stopped run left 0..9,999 at the tail behind 90,000 it had not examined; ending it moves
    those 90,000 behind them. Killed mid-way and restarted from its AOF, the DLQ holds every entry
    once, in the same cyclic order; ending it with the count still to move puts it in order."""
    total, kept = 100_000, 10_000
    server = start_server(extra=AOF)
    client = server.client()
    fill(client, total)
    for _ in range(kept // 1000):  # the run's state: [10,000 .. 99,999] then the kept [0 .. 9,999]
        client.rpush(DLQ, *(client.lpop(DLQ, 1000) or []))
    assert numbers(client) == [*range(kept, total), *range(kept)]
    worker = workers.spawn("put-back", DLQ, str(kept), str(total - kept), redis_url=server.url)

    def head() -> int:
        return int(decode(client.lindex(DLQ, 0) or b"").value["original_job"]["n"])

    wait_until(lambda: workers.alive(worker) and head() >= kept + 5_000, 60, "the put-back to start")
    client = kill_mid_way(server, worker)
    now = numbers(client)
    moved = now[0] - kept
    assert 0 < moved < total - kept, "the kill did not land mid-way"
    assert now == [*range(kept + moved, total), *range(kept), *range(kept, kept + moved)], (
        "the AOF replay lost, duplicated or reordered entries"
    )
    rest = workers.run("put-back", DLQ, str(kept + moved), str(total - kept - moved), redis_url=server.url)
    assert rest["put_back"] == total - kept - moved and rest["remaining"] == 0
    assert numbers(client) == list(range(total))


@pytest.mark.timeout(120)
def test_racing_retry_alls_and_a_selection_move_each_entry_once(
    start_server: Callable[..., RedisServer], workers: Workers, tmp_path: Path
) -> None:
    total = 20_000
    server = start_server()
    client = server.client()
    fill(client, total)
    raws = listed(client)
    refs = [f"{i}:{dlq.fingerprint(raw)}" for i, raw in enumerate(raws) if i % 10 == 0]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    jobs = [("retry-all", DLQ), ("retry-all", DLQ), ("retry-refs", DLQ, str(tmp_path / "refs.json"))]
    results = workers.race(jobs, server.url)
    counts = Counter(decode(raw).value["n"] for raw in client.lrange(TARGET, 0, -1))
    assert client.llen(DLQ) == 0
    assert sorted(counts) == list(range(total)) and set(counts.values()) == {1}
    assert sum(result["done"] for result in results) == total, results
    assert all(result["done"] for result in results[:2]), f"the retry-alls did not overlap: {results}"


STREAM_DLQ, STREAM = "detections:stream:dlq", "detections:stream"


def fill_stream(client: redis.Redis, count: int) -> list[str]:
    """A stream DLQ of HSI's failed detections, ``n`` in a field; every 50th has no original fields
    (only the DLQ's), which a retry leaves in place. Their ids, oldest first."""
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        job: dict[Any, Any] = (
            {} if n % 50 == 49 else {"n": str(n), "camera_id": f"cam{n % 7}", "file_path": f"/x/{n}.jpg"}
        )
        pipe.xadd(STREAM_DLQ, {**job, "original_message_id": f"{n}-0", "dlq_reason": "max_delivery_exceeded"})
    return [dlq.as_bytes(entry_id).decode() for entry_id in pipe.execute()]


def stream_numbers(client: redis.Redis, key: str) -> list[int]:
    entries: Any = client.xrange(key)
    return [int(fields[b"n"]) for _, fields in entries if b"n" in fields]


@pytest.mark.timeout(240)
def test_redis_killed_mid_stream_retry_all_loses_and_duplicates_nothing(
    start_server: Callable[..., RedisServer], workers: Workers
) -> None:
    total = 60_000
    wanted = [n for n in range(total) if n % 50 != 49]
    server = start_server(extra=AOF)
    client = server.client()
    fill_stream(client, total)
    worker = workers.spawn("stream-retry-all", STREAM_DLQ, redis_url=server.url)
    wait_until(lambda: workers.alive(worker) and client.xlen(STREAM) >= 3_000, 60, "the retry-all to start")
    client = kill_mid_way(server, worker)
    moved = stream_numbers(client, STREAM)
    assert 0 < len(moved) < len(wanted), "the kill did not land mid-way"
    both = sorted(moved + stream_numbers(client, STREAM_DLQ))
    assert both == wanted, "the AOF replay lost or duplicated entries"
    rerun = workers.run("stream-retry-all", STREAM_DLQ, redis_url=server.url)
    assert rerun["done"] == len(wanted) - len(moved) and rerun["skipped"] == total - len(wanted)
    assert stream_numbers(client, STREAM) == moved + wanted[len(moved) :], "each once, in order"
    assert client.xlen(STREAM_DLQ) == total - len(wanted), "the entries with no original fields stay"


@pytest.mark.timeout(120)
def test_racing_stream_retry_alls_and_selected_ids_move_each_entry_once(
    start_server: Callable[..., RedisServer], workers: Workers, tmp_path: Path
) -> None:
    total = 20_000
    server = start_server()
    client = server.client()
    ids = fill_stream(client, total)
    (tmp_path / "ids.json").write_text(json.dumps(ids[::7]))
    jobs = [
        ("stream-retry-all", STREAM_DLQ),
        ("stream-retry-all", STREAM_DLQ),
        ("stream-retry-ids", STREAM_DLQ, str(tmp_path / "ids.json")),
    ]
    results = workers.race(jobs, server.url)
    counts = Counter(stream_numbers(client, STREAM))
    assert sorted(counts) == [n for n in range(total) if n % 50 != 49] and set(counts.values()) == {1}
    assert sum(result["done"] for result in results) == len(counts), results
    assert all(result["done"] for result in results[:2]), f"the retry-alls did not overlap: {results}"
    assert client.xlen(STREAM_DLQ) == total // 50


def archive_rows(database: Path, state: str | None = None) -> list[bytes]:
    """The archived bytes in the console's SQLite file, all rows or those in one state."""
    query = "SELECT raw FROM console_archiveditem WHERE ? IS NULL OR state = ?"
    with closing(sqlite3.connect(database, timeout=30)) as db:
        return [bytes(raw) for (raw,) in db.execute(query, (state, state))]


def archive_db(workers: Workers, server: RedisServer, tmp_path: Path) -> tuple[Path, str]:
    """A migrated SQLite file for the console processes."""
    database = tmp_path / "db.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=workers.env(server.url, f"sqlite:///{database}"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return database, f"sqlite:///{database}"


@contextmanager
def writes_paused(client: redis.Redis) -> Iterator[None]:
    """CLIENT PAUSE WRITE: reads go on, every script call waits (at most 30 s)."""
    client.client_pause(30_000, all=False)
    try:
        yield
    finally:
        client.client_unpause()


def held_at_script(
    client: redis.Redis,
    database: Path,
    proc: subprocess.Popen[bytes],
    workers: Workers,
    batch: int = dlq.BATCH_SIZE,
) -> None:
    """Wait until an archive-delete has committed its ``batch`` pending rows and its script call is held."""

    def held() -> bool:
        blocked = workers.alive(proc) and client.info("clients")["blocked_clients"] >= 1
        return blocked and len(archive_rows(database, "pending")) == batch

    wait_until(held, 60, "the archive-delete to wait on its script call", interval=0.01)


def check_dlq_or_archive(client: redis.Redis, database: Path, originals: Counter[bytes]) -> None:
    """Every original entry is in exactly one place: the DLQ or an archived row (as multisets, so
    one of two byte-identical entries may be archived while its twin stays)."""
    in_dlq = Counter(listed(client))
    archived = Counter(archive_rows(database, "archived"))
    assert len(archive_rows(database)) == archived.total(), "rows not archived after reconcile"
    lost, extra = originals - in_dlq - archived, in_dlq + archived - originals
    assert lost.total() == 0, "entries in neither the DLQ nor the archive"
    assert extra.total() == 0, "entries duplicated or unknown"


@pytest.mark.timeout(240)
def test_console_killed_mid_archive_delete_leaves_each_entry_in_dlq_or_archive(
    start_server: Callable[..., RedisServer], workers: Workers, tmp_path: Path
) -> None:
    total, batch = 50_000, dlq.BATCH_SIZE
    server = start_server()
    client = server.client()
    database, database_url = archive_db(workers, server, tmp_path)
    fill(client, total)
    originals = Counter(listed(client))
    assert len(originals) == total

    def spawn() -> subprocess.Popen[bytes]:
        return workers.spawn("archive-all", DLQ, redis_url=server.url, database_url=database_url)

    def reconcile(pending: int) -> None:
        summary = workers.run("reconcile", DLQ, redis_url=server.url, database_url=database_url)
        assert summary == {"pending": pending, "settled": pending}
        check_dlq_or_archive(client, database, originals)

    # 1. Killed after its rows are committed as pending, before its script call deletes anything.
    with writes_paused(client):
        worker = spawn()
        held_at_script(client, database, worker, workers)
        worker.kill()
        worker.wait(10)
    pending = archive_rows(database, "pending")
    assert len(pending) == batch and client.llen(DLQ) == total, "the kill was not between commit and delete"
    assert all(still_queued(client, raw) for raw in pending)
    reconcile(batch)
    assert client.llen(DLQ) == total and not archive_rows(database)

    # 2. Killed after the script deleted its batch, before the rows are settled (SQLite held locked).
    with writes_paused(client):
        worker = spawn()
        held_at_script(client, database, worker, workers)
        with closing(sqlite3.connect(database, isolation_level=None)) as lock:
            lock.execute("BEGIN EXCLUSIVE")
            client.client_unpause()
            wait_until(lambda: client.llen(DLQ) == total - batch, 30, "the script call to delete")
            worker.kill()
            worker.wait(10)
            lock.execute("ROLLBACK")
    pending = archive_rows(database, "pending")
    assert len(pending) == batch and client.llen(DLQ) == total - batch, "the kill was not after the delete"
    assert all(not still_queued(client, raw) for raw in pending)
    reconcile(batch)
    assert len(archive_rows(database, "archived")) == batch

    # 3. Killed wherever it happens to be once a few thousand entries are gone.
    start = client.llen(DLQ)
    worker = spawn()
    wait_until(lambda: workers.alive(worker) and client.llen(DLQ) <= start - 3_000, 60, "deletes")
    worker.kill()
    worker.wait(10)
    left = client.llen(DLQ)
    assert 0 < left < start, "the kill did not land mid-way"
    reconcile(len(archive_rows(database, "pending")))
    assert len(archive_rows(database, "archived")) == total - left


@pytest.mark.timeout(60)
def test_scripts_work_after_a_restart_empties_the_script_cache(
    start_server: Callable[..., RedisServer], point_at: Callable[..., object]
) -> None:
    server = start_server()
    point_at(server)
    client = get_redis()
    client.rpush(DLQ, *[failure(n) for n in range(10)])
    assert dlq.retry(client, DLQ, dlq.page(client, DLQ, limit=5).entries).done == 5
    move, push = scripts.script("move").sha, scripts.script("push").sha
    assert client.script_exists(move) == [True]
    server.restart()
    fresh = loaded_client(server)
    assert fresh.script_exists(move, push) == [False, False]
    assert fresh.dbsize() == 0
    fresh.rpush(DLQ, *[failure(n) for n in range(10, 20)])
    outcome = dlq.retry(client, DLQ, dlq.page(client, DLQ).entries)
    assert outcome.done == 10
    assert [json.loads(raw)["n"] for raw in fresh.lrange(TARGET, 0, -1)] == list(range(10, 20))
    assert fresh.llen(DLQ) == 0
    assert scripts.push_entries(client, "restored", [b"a", b"b"]) == 2
    assert fresh.script_exists(move, push) == [True, True]


# Interleavings that once lost or duplicated entries, when reconcile() guessed a row's fate from
# LPOS: it could not tell a crashed call from one still in flight, nor an entry from its identical
# twin. Calls are now fenced by their receipt. CLIENT PAUSE WRITE holds a console process at its
# script call, so each interleaving is reproduced exactly, with real processes.


@pytest.mark.timeout(120)
def test_reconcile_during_an_archive_delete_in_flight_loses_nothing(
    start_server: Callable[..., RedisServer], workers: Workers, tmp_path: Path
) -> None:
    """A restore runs reconcile() first; meanwhile another operator's delete-all is mid-batch."""
    total = 2_000
    server = start_server()
    client = server.client()
    database, database_url = archive_db(workers, server, tmp_path)
    fill(client, total)
    originals = Counter(listed(client))
    with writes_paused(client):
        worker = workers.spawn("archive-all", DLQ, redis_url=server.url, database_url=database_url)
        held_at_script(client, database, worker, workers)
        reconciler = workers.spawn("reconcile", DLQ, redis_url=server.url, database_url=database_url)
        wait_until(lambda: client.info("clients")["blocked_clients"] >= 2, 30, "the reconcile to be held")
    summary = workers.result(reconciler)
    assert summary["pending"] == dlq.BATCH_SIZE, "the reconcile saw the delete in flight"
    done = workers.result(worker)["done"]
    # Whichever reached Redis first wins: the delete ran (the reconcile settles from its receipt)
    # or the reconcile fenced it off (that batch stays in the DLQ, its rows are dropped).
    assert done in (total, total - dlq.BATCH_SIZE)
    assert client.llen(DLQ) == total - done
    check_dlq_or_archive(client, database, originals)


@pytest.mark.timeout(120)
def test_crash_after_deleting_one_of_two_identical_entries_loses_nothing(
    start_server: Callable[..., RedisServer], workers: Workers, tmp_path: Path
) -> None:
    """Byte-identical entries are allowed (they share a fingerprint); a crash must not lose one."""
    server = start_server()
    client = server.client()
    database, database_url = archive_db(workers, server, tmp_path)
    twin = failure(0)
    client.rpush(DLQ, twin, *[failure(n) for n in range(1, 1000)], twin)
    originals = Counter(listed(client))
    assert originals[twin] == 2
    with writes_paused(client):
        worker = workers.spawn("archive-all", DLQ, redis_url=server.url, database_url=database_url)
        held_at_script(client, database, worker, workers)
        with closing(sqlite3.connect(database, isolation_level=None)) as lock:
            lock.execute("BEGIN EXCLUSIVE")
            client.client_unpause()
            wait_until(lambda: client.llen(DLQ) == 1001 - dlq.BATCH_SIZE, 30, "the script call to delete")
            worker.kill()
            worker.wait(10)
            lock.execute("ROLLBACK")
    assert twin in archive_rows(database, "pending")
    workers.run("reconcile", DLQ, redis_url=server.url, database_url=database_url)
    check_dlq_or_archive(client, database, originals)


@pytest.mark.timeout(120)
def test_two_restores_of_the_same_rows_push_each_entry_once(
    start_server: Callable[..., RedisServer], workers: Workers, tmp_path: Path
) -> None:
    """A double-submitted restore: the second request's reconcile() runs while the first pushes."""
    total = dlq.BATCH_SIZE
    server = start_server()
    client = server.client()
    database, database_url = archive_db(workers, server, tmp_path)
    fill(client, total)
    originals = Counter(listed(client))
    assert workers.run("archive-all", DLQ, redis_url=server.url, database_url=database_url)["done"] == total
    with closing(sqlite3.connect(database)) as db:
        ids = json.dumps([pk for (pk,) in db.execute("SELECT id FROM console_archiveditem")])

    def blocked(count: int) -> bool:
        return bool(client.info("clients")["blocked_clients"] >= count)

    with writes_paused(client):
        first = workers.spawn("restore", DLQ, ids, redis_url=server.url, database_url=database_url)
        wait_until(lambda: workers.alive(first) and blocked(1), 60, "the first restore to push", 0.01)
        second = workers.spawn("restore", DLQ, ids, redis_url=server.url, database_url=database_url)
        wait_until(lambda: second.poll() is not None or blocked(2), 60, "the second restore", 0.01)
    results = [workers.result(first), workers.result(second)]
    assert client.llen(DLQ) == total, f"restored {[r['restored'] for r in results]} of {total} entries"
    assert Counter(listed(client)) == originals


@pytest.mark.timeout(120)
def test_ctrl_c_stops_a_delete_all_after_its_step_and_the_undo_brings_all_back(
    start_server: Callable[..., RedisServer], workers: Workers, tmp_path: Path
) -> None:
    """``manage.py dlq delete --all``: the first SIGINT ends the run after the step under way, with
    what it did, what is left and its undo; nothing is pending, nothing lost; the undo restores all."""
    total = 20_000
    server = start_server()
    client = server.client()
    database, database_url = archive_db(workers, server, tmp_path)
    fill(client, total)
    originals = Counter(listed(client))
    env = workers.env(server.url, database_url, HSI_BULK_CHUNK_SECONDS="0.05")

    def manage(*args: str) -> subprocess.Popen[str]:
        pipe = subprocess.PIPE
        return subprocess.Popen(
            [sys.executable, "manage.py", "dlq", *args],
            cwd=ROOT,
            env=env,
            stdout=pipe,
            stderr=pipe,
            text=True,
        )

    deleting = manage("delete", DLQ, "--all")
    wait_until(lambda: client.llen(DLQ) <= total - 1_000, 60, "the first deletes")
    deleting.send_signal(signal.SIGINT)
    out, err = deleting.communicate(timeout=60)
    assert deleting.returncode == 130, err
    assert "Stopping after the step under way" in err and "Traceback" not in err
    left = client.llen(DLQ)
    assert 0 < left <= total - 1_000, "it stopped mid-way"
    summary, undo = out.splitlines()
    assert (
        summary
        == f"Stopped by Ctrl-C. Deleted {total - left:,} (archived) of {DLQ}; {left:,} not examined yet."
    )
    assert re.fullmatch(rf"Undo: manage.py dlq restore {DLQ} --deletion [0-9a-f]{{32}}", undo)
    assert not archive_rows(database, "pending"), "the step under way finished and settled"
    check_dlq_or_archive(client, database, originals)

    restoring = manage(*undo.removeprefix("Undo: manage.py dlq ").split())
    out, err = restoring.communicate(timeout=60)
    assert restoring.returncode == 0, err
    assert out.strip() == f"Restored {total - left:,} archived entries of {DLQ} to {DLQ}."
    assert Counter(listed(client)) == originals
