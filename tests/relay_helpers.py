"""Helpers for the live-events tests: ``relay_events`` processes, a group listener, bounded waits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis
from channels.layers import get_channel_layer

from realtime.events import LEADER_KEY
from tests.redis_server import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
STREAM = "console:events"


def wait_until(condition: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


async def await_until(condition: Callable[[], Any], within: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


def relay_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a relay process: the test settings, pointed at ``redis_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_SSL_", "HSI_"))}
    env.pop("CONSOLE_REDIS_URL", None)
    return env | {
        "REDIS_URL": redis_url,
        "HSI_RELAY_LOCK_SECONDS": "2",
        "HSI_DEPTH_SAMPLE_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@dataclass
class RelayProcess:
    """``manage.py relay_events`` as a real process, killable like a crash."""

    name: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> RelayProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "relay_events", "--relay-id", self.name],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        return self

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> int | None:
        """SIGTERM (a clean exit); the exit status. A relay that has not exited 15 s later writes
        its threads' stacks to its log (SIGUSR1), then is killed (-9)."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                return self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGUSR1)  # every thread's stack into the log first
                time.sleep(1)
                self.process.kill()
                return self.process.wait(5)
        return self.process.returncode if self.process else None

    def wait_leading(self, client: redis.Redis, timeout: float = 20) -> None:
        def leading() -> bool:
            if not self.alive():
                raise AssertionError(f"relay {self.name} exited:\n{self.output()}")
            return client.get(LEADER_KEY) == self.name.encode()

        wait_until(leading, timeout, f"relay {self.name} to lead")


def subscribers(client: redis.Redis, channel: str) -> int:
    return int(dict(client.pubsub_numsub(channel)).get(channel.encode(), 0))


def stream_events(client: redis.Redis) -> list[tuple[str, dict[str, str]]]:
    return [
        (entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
        for entry_id, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(STREAM))
    ]


def publish_seq(client: redis.Redis, seq: int, channel: str = "security_events") -> None:
    client.publish(channel, json.dumps({"type": "event", "data": {"seq": seq, "camera_id": "front_door"}}))


def stream_seqs(client: redis.Redis) -> list[int]:
    return [
        json.loads(fields["data"])["seq"] for _, fields in stream_events(client) if "seq" in fields["data"]
    ]


class GroupListener:
    """Joins a group on the real channel layer and collects everything sent to it.

    One receive loop runs until exit: cancelling the PubSub layer's ``receive`` unsubscribes the
    channel, so waits time out on our own list, never on ``receive``.
    """

    def __init__(self, group: str) -> None:
        self.group = group
        self.messages: list[dict[str, Any]] = []
        self.layer: Any = None
        self.channel = ""
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> GroupListener:
        self.layer = get_channel_layer()
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        self.task = asyncio.create_task(self._pump())
        return self

    async def _pump(self) -> None:
        while True:
            self.messages.append(await self.layer.receive(self.channel))

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.layer.group_discard(self.group, self.channel)

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 15
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((m for m in self.messages if predicate(m)), None)

        return await await_until(found, within, f"a message on {self.group}")  # type: ignore[no-any-return]
