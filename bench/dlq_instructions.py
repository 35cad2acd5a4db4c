"""Benchmark: Redis instructions per entry of retry-all's script, against the floor, under callgrind.

Run on demand: ``.venv/bin/python bench/dlq_instructions.py`` (needs valgrind; about 2 minutes).
Timings on a shared machine move by 20% between runs, more than most changes to a script do
(docs/benchmarks.md); instruction counts do not. This runs a private redis-server under
``valgrind --tool=callgrind`` with counting switched off, and switches it on only while one script
moves the same plain HSI entries from a DLQ to its source queue, so each count is that script's
whole work inside Redis (its calls, the commands they run, reading the calls and writing the
replies), divided by the entries moved:

- the floor: ``FLOOR_LUA`` of ``bench/dlq.py`` (``LPOP 250`` + ``RPUSH``, no checks);
- the console's ``retry_run.lua``, called as ``dlq.retry_all`` calls it for plain entries (with a
  room check; without the audit sample, which only its first four calls return);
- the minimal validating reference, ``MINIMAL_RETRY_LUA`` of ``bench/dlq.py``.

It prints each count and the floor's share of the others: the share the 50% target is about,
without the round trip per call that both sides pay alike. Counts leave out what instructions do
not show (cache misses, page faults), so they compare scripts, not machines.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.dlq import FLOOR_LUA, FOLDER, MINIMAL_RETRY_LUA  # noqa: E402
from queues import dlq, scripts  # noqa: E402
from tests.factories import failure  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

DLQ, TARGET = "dlq:detection_queue", "detection_queue"
TOTAL = re.compile(r"^(?:summary|totals): (\d+)", re.M)


class CountedServer(RedisServer):
    """redis-server under callgrind, counting nothing until ``count`` switches it on."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.dumps = folder / "callgrind.out"

    def command(self) -> list[str]:
        return [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={self.dumps}.%p",
            *super().command(),
        ]

    def start(self) -> CountedServer:
        """As ``RedisServer.start``, with the minute valgrind may take to start it."""
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server under valgrind exited: {self.log_tail()}")
            try:
                self.client().ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("redis-server under valgrind did not answer within 60 s")

    def control(self, *args: str) -> None:
        assert self.process is not None
        subprocess.run(["callgrind_control", *args, str(self.process.pid)], check=True, capture_output=True)

    def count(self, work: Callable[[], object]) -> int:
        """Instructions redis-server executed while ``work`` ran."""
        before = set(self.folder.glob("callgrind.out.*"))
        self.control("--instr=on")
        self.control("--zero")
        work()
        self.control("--dump")
        self.control("--instr=off")
        dump = max(set(self.folder.glob("callgrind.out.*")) - before, key=lambda path: path.stat().st_mtime)
        found = TOTAL.search(dump.read_text(errors="replace"))
        if found is None:
            raise RuntimeError(f"no instruction total in {dump}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("This benchmark needs valgrind (apt-get install -y valgrind).")
    folder = Path(tempfile.mkdtemp(prefix="hsi-bench-instructions-"))
    server = CountedServer(folder).start()
    client = server.client(socket_timeout=600)
    raws = [failure(n) for n in range(args.entries)]
    floor, reference = client.register_script(FLOOR_LUA), client.register_script(MINIMAL_RETRY_LUA)

    def by(script: Callable[..., object]) -> Callable[[], object]:
        def run() -> None:
            while script(keys=[DLQ, TARGET], args=[dlq.BATCH_SIZE]):
                pass

        return run

    def console() -> None:  # retry-all's calls for plain entries, with a room check, without the audit sample
        while scripts.retry_run(client, DLQ, TARGET, dlq.BATCH_SIZE, max_len=10**9).stop == "more":
            pass

    contenders = {"floor (LPOP 250 + RPUSH)": by(floor), "console retry_run.lua": console}
    contenders["minimal validating script"] = by(reference)
    counts: dict[str, list[float]] = {label: [] for label in contenders}
    try:
        print(
            f"redis-server {client.info('server')['redis_version']} under callgrind, {args.entries:,} entries"
        )
        for _ in range(args.runs + 1):  # the first round loads the scripts and is not counted
            for label, work in contenders.items():
                client.delete(DLQ, TARGET)
                client.rpush(DLQ, *raws)
                started = time.perf_counter()
                total = server.count(work)
                if client.llen(TARGET) != args.entries:
                    raise RuntimeError(f"{label} moved {client.llen(TARGET)} of {args.entries} entries")
                counts[label].append(total / args.entries)
                took = time.perf_counter() - started
                print(f"  {label:28} {total / args.entries:10,.0f} per entry ({took:.1f} s)")
        floor_count = min(counts["floor (LPOP 250 + RPUSH)"][1:])
        print("instructions per entry (least of the counted runs) and the floor's share of them:")
        for label, values in counts.items():
            least = min(values[1:])
            print(f"  {label:28} {least:10,.0f}  floor/this {floor_count / least:.0%}")
    finally:
        client.shutdown(nosave=True)
        if server.process is not None:
            server.process.wait(120)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(FOLDER, ignore_errors=True)  # bench.dlq's, made on import


if __name__ == "__main__":
    main()
