"""Benchmark: PUBLISH → WebSocket receive latency through the relay, the channel layer and daphne.

Run on demand: ``.venv/bin/python bench/live.py`` (about two minutes; ``--help`` for sizes). It starts
a private redis-server, a real daphne and a real ``manage.py relay_events``, connects ``--clients``
WebSocket clients (spread over ``--workers`` processes, so the clients' own parsing does not sit
on one core), then PUBLISHes HSI-shaped ``security_events`` at each rate of ``--rates`` for
``--seconds``. Every payload carries its publish time (CLOCK_MONOTONIC, shared by all processes).

The floor is a bare redis-py asyncio subscriber on the same channel, in its own process, measured
in the same run: alone before the clients connect, and beside them in every phase. Printed: p50 /
p99 / max latency of the floor and of the sockets per rate, frames delivered and skipped, the
highest rate whose socket p99 stays within 100 ms, and the RSS of daphne and the relay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from tests.live_server import console_env, wait_until_up  # noqa: E402
from tests.redis_server import RedisServer, free_port  # noqa: E402
from tests.ws_client import CLOSE, PING, PONG, WebSocket, _frame  # noqa: E402

P99_LIMIT_MS = 100.0
SESSION = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
user = User.objects.create_user("bench", password="Bench-pw-1", is_staff=True)
user.groups.add(Group.objects.get(name="Viewer"))
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""
STAMP = re.compile(rb'"phase":(\d+),"t":(\d+)')


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# --- Client processes ---


def _frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take every complete server frame (unmasked) off the front of ``buffer``."""
    frames = []
    while len(buffer) >= 2:
        opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
        if length >= 126:
            size = 2 if length == 126 else 8
            if len(buffer) < 2 + size:
                break
            (length,) = struct.unpack_from("!H" if size == 2 else "!Q", buffer, 2)
            offset = 2 + size
        if len(buffer) < offset + length:
            break
        frames.append((opcode, bytes(buffer[offset : offset + length])))
        del buffer[: offset + length]
    return frames


async def _client(url: str, headers: dict[str, str], ready: asyncio.Queue[None], out: dict[str, Any]) -> None:
    """One socket: parses frames straight off the stream (cheap), stamps each on arrival."""
    socket = await WebSocket.connect(url, headers, within=60)
    while (await socket.recv_json(within=60))["type"] != "caught_up":
        pass
    await ready.put(None)
    buffer = bytearray()
    latencies: dict[int, list[float]] = out["latencies"]
    while chunk := await socket.reader.read(1 << 16):
        now = time.monotonic_ns()
        buffer += chunk
        for opcode, payload in _frames(buffer):
            if opcode == PING:
                socket.writer.write(_frame(PONG, payload))
            elif opcode == CLOSE:
                return
            elif b'"skipped"' in payload and b'"id":null' in payload:
                out["skipped"] += json.loads(payload)["data"]["count"]
            elif match := STAMP.search(payload):
                latencies.setdefault(int(match[1]), []).append((now - int(match[2])) / 1e6)


def client_worker(url: str, headers: dict[str, str], count: int, ready: Any, stop: Any, results: Any) -> None:
    async def run() -> None:
        out: dict[str, Any] = {"latencies": {}, "skipped": 0}
        queue: asyncio.Queue[None] = asyncio.Queue()
        tasks = [asyncio.create_task(_client(url, headers, queue, out)) for _ in range(count)]
        for _ in range(count):
            await queue.get()
        ready.put(count)
        await asyncio.to_thread(stop.wait)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.put(out)

    asyncio.run(run())


def floor_worker(redis_url: str, ready: Any, stop: Any, results: Any) -> None:
    """A bare redis-py asyncio subscriber: the floor for PUBLISH → receive."""

    async def run() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        pubsub = client.pubsub()
        await pubsub.subscribe("security_events")
        ready.put(1)
        latencies: dict[int, list[float]] = {}
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is None:
                continue
            now = time.monotonic_ns()
            data = json.loads(message["data"])["data"]
            if "phase" in data:
                latencies.setdefault(data["phase"], []).append((now - data["t"]) / 1e6)
        await pubsub.aclose()
        await client.aclose()
        results.put({"latencies": latencies})

    asyncio.run(run())


# --- The run ---


def event(phase: int, seq: int) -> str:
    data = {
        "phase": phase,
        "t": time.monotonic_ns(),
        "id": seq,
        "event_id": seq,
        "batch_id": "batch-7be03a91",
        "camera_id": "garage_side",
        "risk_score": 72,
        "risk_level": "high",
        "summary": "Unknown person lingering at side door",
        "started_at": "2026-02-12T07:15:03",
    }
    return json.dumps({"type": "event", "data": data}, separators=(",", ":"))


def publish_phase(
    client: redis.Redis, phase: int, rate: float, seconds: float, pids: dict[str, int]
) -> dict[str, float]:
    """PUBLISH at ``rate`` on an absolute schedule; the peak RSS (MB) of each of ``pids`` meanwhile."""
    total = int(rate * seconds)
    start = time.monotonic()
    peak = dict.fromkeys(pids, 0.0)
    for seq in range(total):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.publish("security_events", event(phase, seq))
        if seq % max(1, int(rate / 4)) == 0:
            peak = {name: max(peak[name], rss_mb(pid)) for name, pid in pids.items()}
    return peak


def summary(latencies: list[float]) -> str:
    if not latencies:
        return "—"
    return f"{statistics.median(latencies):.1f} / {percentile(latencies, 0.99):.1f} / {max(latencies):.0f}"


@dataclass
class Stack:
    """A private redis-server, a migrated database with one Viewer session, daphne(s) and a relay."""

    folder: Path
    server: RedisServer
    env: dict[str, str]
    daphnes: int = 1
    urls: list[str] = field(default_factory=list)
    session: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def manage(self, *command: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def start(self) -> Stack:
        self.manage("migrate", "--noinput", "-v", "0")
        self.session = self.manage("shell", "-c", SESSION).strip().splitlines()[-1]
        log_path = self.folder / "processes.log"
        profile = (
            ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
        )
        commands = {"relay": ["manage.py", "relay_events"]}
        for index in range(self.daphnes):
            port = free_port()
            self.urls.append(f"http://127.0.0.1:{port}")
            commands[f"daphne{index + 1}"] = [*profile, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            commands[f"daphne{index + 1}"].append("console.asgi:application")
        with log_path.open("ab") as log:
            for name, command in commands.items():
                self.processes[name] = subprocess.Popen(
                    [sys.executable, *command], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
                )
        for index, url in enumerate(self.urls):
            wait_until_up(url, self.processes[f"daphne{index + 1}"], log_path)
        self.wait_forwarding()
        return self

    def wait_forwarding(self) -> None:
        client, probe = self.server.client(), str(uuid.uuid4())
        deadline = time.monotonic() + 30

        def landed() -> bool:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]], client.xrevrange("console:events", count=5)
            )
            return any(probe.encode() in fields.get(b"data", b"") for _, fields in entries)

        while not landed():
            if time.monotonic() > deadline:
                raise RuntimeError("the relay does not forward")
            client.publish("security_events", json.dumps({"type": "probe", "data": {"probe": probe}}))
            time.sleep(0.2)

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
            process.wait(15)
        self.server.stop()


@dataclass
class Phase:
    rate: float
    peak_rss: dict[str, float]
    cpu: dict[str, float]


Collected = tuple[list[dict[str, Any]], list[Phase], dict[str, dict[str, float]]]


def start_clients(
    stack: Stack, args: argparse.Namespace, context: Any, queues: tuple[Any, Any, Any]
) -> list[Any]:
    """``--clients`` sockets over ``--workers`` processes; each worker's sockets go to one daphne."""
    ready, stop, results = queues
    counts = [args.clients // args.workers + (i < args.clients % args.workers) for i in range(args.workers)]
    workers = []
    for index, count in enumerate(counts):
        url = stack.urls[index % len(stack.urls)]
        headers = {"Origin": url, "Cookie": f"sessionid={stack.session}"}
        target = url.replace("http://", "ws://") + "/ws/events/"
        workers.append(
            context.Process(target=client_worker, args=(target, headers, count, ready, stop, results))
        )
    for worker in workers:
        worker.start()
    return workers


def run_phases(stack: Stack, args: argparse.Namespace, rates: list[float]) -> Collected:
    context = mp.get_context("spawn")
    client = stack.server.client()
    rss = {"idle": {name: rss_mb(pid) for name, pid in stack.pids().items()}}
    ready, stop, results = context.Queue(), context.Event(), context.Queue()
    floor = context.Process(target=floor_worker, args=(stack.server.url, ready, stop, results))
    floor.start()
    ready.get(timeout=30)
    publish_phase(client, 0, args.floor_rate, args.seconds, {})  # phase 0: the floor alone
    workers = start_clients(stack, args, context, (ready, stop, results))
    connected = sum(ready.get(timeout=120) for _ in workers)
    rss["connected"] = {name: rss_mb(pid) for name, pid in stack.pids().items()}
    print(f"{connected} sockets connected; RSS {rss['connected']}")

    watched = {**stack.pids(), "redis": stack.server.process.pid if stack.server.process else 0}
    watched |= {f"clients{index}": worker.pid or 0 for index, worker in enumerate(workers)}
    phases = []
    for number, rate in enumerate(rates, start=1):
        before, started = {name: cpu_seconds(pid) for name, pid in watched.items()}, time.monotonic()
        peak = publish_phase(client, number, rate, args.seconds, stack.pids())
        elapsed = time.monotonic() - started
        cpu = {name: (cpu_seconds(pid) - before[name]) / elapsed for name, pid in watched.items()}
        phases.append(Phase(rate, peak, cpu))
        time.sleep(args.seconds / 2)  # let the sockets drain
        print(
            f"{rate:g} events/s: CPU cores " + ", ".join(f"{name} {share:.2f}" for name, share in cpu.items())
        )
    stop.set()
    collected = [results.get(timeout=60) for _ in range(len(workers) + 1)]
    for process in (floor, *workers):
        process.join(30)
    return collected, phases, rss


def rss_text(peak: dict[str, float]) -> str:
    daphnes = [value for name, value in peak.items() if name.startswith("daphne")]
    return " + ".join(f"{value:.0f}" for value in daphnes) + f" + {peak['relay']:.0f} MB"


def cpu_text(cpu: dict[str, float]) -> str:
    daphnes = [value for name, value in cpu.items() if name.startswith("daphne")]
    return ", ".join(f"{value:.2f}" for value in daphnes) + f", relay {cpu['relay']:.2f}"


def report(
    collected: list[dict[str, Any]], phases: list[Phase], rss: dict[str, Any], args: argparse.Namespace
) -> None:
    floor = next(result["latencies"] for result in collected if "skipped" not in result)
    sockets = [result for result in collected if "skipped" in result]

    def merged(phase: int) -> list[float]:
        return [value for result in sockets for value in result["latencies"].get(phase, [])]

    print(f"\nFloor alone ({args.floor_rate:g} events/s): p50 / p99 / max = {summary(floor.get(0, []))} ms\n")
    print(
        "| events/s | floor p50/p99/max ms | sockets p50/p99/max ms | frames | peak RSS daphne+relay | CPU |"
    )
    print("|---|---|---|---|---|---|")
    best = 0.0
    for number, phase in enumerate(phases, start=1):
        values, expected = merged(number), int(phase.rate * args.seconds) * args.clients
        if values and len(values) == expected and percentile(values, 0.99) <= P99_LIMIT_MS:
            best = max(best, phase.rate)
        print(
            f"| {phase.rate:g} | {summary(floor.get(number, []))} | {summary(values)} "
            f"| {len(values):,} / {expected:,} | {rss_text(phase.peak_rss)} | {cpu_text(phase.cpu)} |"
        )
    print(
        f"\nHighest rate with every frame delivered and socket p99 <= {P99_LIMIT_MS:g} ms: {best:g} events/s"
    )
    print(f"Skipped notices (slow-consumer drops) across all sockets: {sum(r['skipped'] for r in sockets)}")
    print(f"RSS idle: {rss['idle']}; with {args.clients} sockets: {rss['connected']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--rates", default="50,100,200,300,400", help="events per second, one phase each")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--floor-rate", type=float, default=200.0)
    parser.add_argument("--daphnes", type=int, default=1, help="daphne processes (one per core is the usual)")
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="hsi-bench-live-") as folder_name:
        folder = Path(folder_name)
        server = RedisServer(folder / "redis").start()
        stack = Stack(
            folder, server, console_env(folder, server.url) | {"LOG_LEVEL": "WARNING"}, args.daphnes
        )
        try:
            stack.start()
            print("pids:", stack.pids())
            collected, phases, rss = run_phases(stack, args, rates)
        finally:
            stack.stop()
    report(collected, phases, rss, args)


if __name__ == "__main__":
    main()
