"""The live-events relay (``manage.py relay_events``): HSI's pub/sub → the console's stream → groups.

One process holds ONE subscription on HSI's Redis (SUBSCRIBE the configured channels, PSUBSCRIBE
the patterns). Each message is validated and normalised (``realtime.events.normalise``); a
malformed one is counted in ``console:relay:status`` and logged at most once a minute (the first
one in full, then a summary), and never stops the relay. A valid one is appended to the console's
capped stream (its id is the event's id) and then sent to the ``live.events`` group.

Leadership. Any number of relays may run; the one holding ``console:relay:leader`` (SET NX PX,
renewed every third of its TTL) forwards, the others stand by, subscribed, and take over within
one TTL of the leader's last renewal. The append script checks the lock in the same atomic step
as the XADD, so a relay that lost the lock (paused, partitioned) can never write again. A standby
keeps the messages of the last moments; when it becomes leader it finds the last entry the old
leader wrote (by the messages' digests) and appends what came after, so a failover neither drops
nor repeats what the relays received.

Connection. Every Redis error ends the session: the relay logs one line (the operator guide's
sentence from ``console.redis.explain``), waits with capped, jittered exponential backoff,
reconnects, resubscribes and logs one line again. Clients are built by ``console.redis`` with no
automatic retries, so nothing is re-sent behind the relay's back.

Depths. The leader also samples every queue's and DLQ's depth every DEPTH_SAMPLE_SECONDS (keys
rediscovered by a bounded SCAN every DISCOVER_SECONDS, depths in one pipelined round trip; the
dashboard's key count goes on by HSI_SCAN_LIMIT keys at the same time), keeps
the latest sample in ``console:live:depths``, appends it with ``used_memory`` (``INFO memory``) to
the capped stream ``console:live:history`` (one hour of samples, for the overview's charts) and
sends it to the ``live.depths`` group.

Jobs. The leader samples the jobs that are moving every JOB_SAMPLE_SECONDS (default 2): the first
200 ids of ``jobs:active`` and the open JobTracker jobs (found by a bounded SCAN every
DISCOVER_SECONDS, resuming where the previous one stopped), their values in one MGET and pipelined
TTLs (``queues.jobs.LiveSampler``), and sends ``jobs`` messages with only the rows that changed to
the ``live.depths`` group, which every live socket already joins (so the consumer needs no new
group). A command Redis refuses (an ACL without one of them) skips job sampling for a minute
with one log line; it never ends the session. Sampling beat keyspace notifications in
``bench/jobs_live.py``: notifications are off on HSI's Redis and turning them on costs every write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import redis
import redis.asyncio
from channels.layers import get_channel_layer
from django.conf import settings
from redis.typing import EncodableT

from console.redis import RedisConfig, explain, get_redis, new_async_redis
from queues import inventory, jobs
from queues.overview import key_census
from realtime import stream
from realtime.events import (
    DEPTHS_GROUP,
    DEPTHS_KEY,
    EVENTS_GROUP,
    HISTORY_KEY,
    LEADER_KEY,
    STATUS_KEY,
    STATUS_TTL_SECONDS,
    Event,
    Malformed,
    depth_message,
    dumps,
    group_message,
    history_maxlen,
    normalise,
    notice,
    now_iso,
    sample,
    setting,
)

logger = logging.getLogger("realtime.relay")

RECONNECT_BASE_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 0.5
PING_IDLE_SECONDS = 5.0  # PING the subscription after this much silence; no PONG in time = lost
DISCOVER_SECONDS = 30.0
CLOSE_SECONDS = 5.0  # the longest a session's teardown may take before the relay goes on without it
# What a depth sample tells the live page of each queue.
DEPTH_FIELDS = frozenset({"key", "kind", "type", "length", "max_size", "fill_ratio", "level", "stored_type"})
MALFORMED_LOG_SECONDS = 60.0
RECENT_MAX = 5000  # messages a relay remembers for a takeover…
RECENT_LOCKS = 3  # …received within this many lock TTLs (the longest a takeover can need)
TAIL_MAX = 2000  # stream entries read to find where the previous leader stopped
JOB_SAMPLE_SECONDS = 2.0  # default of HSI_CONSOLE["JOB_SAMPLE_SECONDS"] (env HSI_JOB_SAMPLE_SECONDS)
JOB_REFUSED_PAUSE_SECONDS = 60.0  # after Redis refused a sampling command
JOB_ROWS_PER_MESSAGE = 50  # a first sample of 200 jobs goes out as four messages of ~20 KB at most
JOBS_GROUP = DEPTHS_GROUP  # every live socket joins it; ``jobs`` notices are buffered, not coalesced


class RedisLost(Exception):
    """A Redis error, with the configuration it happened on (for the explaining sentence)."""

    def __init__(self, error: BaseException, config: RedisConfig) -> None:
        super().__init__(str(error))
        self.error = error
        self.config = config


@dataclass
class Received:
    """A valid message as received; ``written`` once it is in the stream (by any relay)."""

    event: Event
    at: float
    written: bool = False


@dataclass
class MalformedLog:
    """The first malformed message of a minute in full, the rest as one summary line a minute."""

    interval: float = MALFORMED_LOG_SECONDS
    window_started: float | None = None
    pending: Counter[str] = field(default_factory=Counter)

    def note(self, relay_id: str, channel: str, error: Malformed, raw: bytes, now: float) -> None:
        self.flush(relay_id, now)
        if self.window_started is None:
            self.window_started = now
            logger.warning(
                "Relay %s: skipped a malformed message on %s (%s: %s): %s. Further malformed messages "
                "are counted in %s and summarised here once a minute.",
                relay_id,
                channel,
                error.reason,
                error.detail,
                sample(raw, 120),
                STATUS_KEY,
            )
        else:
            self.pending[error.reason] += 1

    def flush(self, relay_id: str, now: float) -> None:
        if self.window_started is None or now - self.window_started < self.interval:
            return
        if self.pending:
            counts = ", ".join(f"{reason} {count}" for reason, count in sorted(self.pending.items()))
            total = sum(self.pending.values())
            logger.warning(
                "Relay %s: skipped %d more malformed messages in the last %d s (%s).",
                relay_id,
                total,
                round(now - self.window_started),
                counts,
            )
        self.pending.clear()
        self.window_started = None


def default_relay_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def backoff_delay(attempt: int) -> float:
    """Capped exponential backoff with ±20 % jitter: 0.5, 1, 2, 4, 5, 5 … seconds."""
    base = min(RECONNECT_MAX_SECONDS, RECONNECT_BASE_SECONDS * 2**attempt)
    return float(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security


class Relay:
    def __init__(self, *, relay_id: str | None = None, config: RedisConfig | None = None) -> None:
        self.id = relay_id or default_relay_id()
        self.config = config or settings.HSI_REDIS
        self.channels: tuple[str, ...] = setting("EVENT_CHANNELS")
        self.patterns: tuple[str, ...] = setting("EVENT_PATTERNS")
        self.max_bytes = int(setting("EVENT_MAX_BYTES"))
        self.lock_ms = max(1000, int(float(setting("RELAY_LOCK_SECONDS")) * 1000))
        self.depth_seconds = float(setting("DEPTH_SAMPLE_SECONDS"))
        self.history_len = history_maxlen(self.depth_seconds)
        self.leader = False
        self.catch_up_pending = False
        self.state = "starting"  # → "connected" ⇄ "down"; one log line per change
        self.holder: str | None = None  # the other relay we stand by for, as last seen
        self.recent: deque[Received] = deque(maxlen=RECENT_MAX)
        self.malformed_log = MalformedLog()
        self.pending_error = ""
        self.client: redis.asyncio.Redis | None = None
        self.layer: Any = None
        self.found: dict[str, str] = {}
        self.found_at = 0.0
        hsi_console = getattr(settings, "HSI_CONSOLE", {})
        self.job_seconds = float(hsi_console.get("JOB_SAMPLE_SECONDS", JOB_SAMPLE_SECONDS))
        self.job_sampler = jobs.LiveSampler()
        self.jobs_found_at = 0.0

    # --- Lifecycle ---

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; reconnects by itself whenever Redis goes away."""
        if not self.channels and not self.patterns:
            raise ValueError(
                "No channels or patterns to relay: set HSI_EVENT_CHANNELS or HSI_EVENT_PATTERNS."
            )
        self.layer = get_channel_layer()
        attempt = -1
        logger.info(
            "Relay %s starting: %s → %s (MAXLEN ~%s) → groups %s, %s.",
            self.id,
            self._subscriptions(),
            stream.stream_key(),
            setting("EVENTS_MAXLEN"),
            EVENTS_GROUP,
            DEPTHS_GROUP,
        )
        while not stop.is_set():
            was_connected = self.state == "connected"
            try:
                await self._session(stop)
            except RedisLost as lost:
                self._lost(lost.error, lost.config)
            except Exception:  # a bug must not end the relay: log it, start a new session
                logger.exception("Relay %s: unexpected error; starting a new session.", self.id)
                self._reset()
            if stop.is_set():
                break
            attempt = 0 if was_connected else attempt + 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff_delay(attempt))
        logger.info("Relay %s stopped.", self.id)

    def _subscriptions(self) -> str:
        parts = list(self.channels) + [f"{pattern} (pattern)" for pattern in self.patterns]
        return ", ".join(parts)

    def _lost(self, error: BaseException, config: RedisConfig) -> None:
        sentence = explain(error, config)
        if self.state != "down":
            logger.error(
                "Relay %s %s: %s Reconnecting with backoff (at most %g s between attempts).",
                self.id,
                "lost Redis" if self.state == "connected" else "cannot reach Redis",
                sentence,
                RECONNECT_MAX_SECONDS,
            )
            self.state = "down"
        self.pending_error = f"{now_iso()} {sentence}"
        self._reset()

    def _reset(self) -> None:
        self.leader = False
        self.holder = None
        self.recent.clear()  # the subscription is gone: what came before is no longer comparable

    async def _session(self, stop: asyncio.Event) -> None:
        client = new_async_redis(self.config, max_connections=8)
        pubsub = client.pubsub()
        self.client = client
        tasks: list[asyncio.Task[None]] = []
        try:
            try:
                if self.channels:
                    await pubsub.subscribe(*self.channels)
                if self.patterns:
                    await pubsub.psubscribe(*self.patterns)
                await client.ping()
            except (redis.RedisError, OSError) as exc:
                raise RedisLost(exc, self.config) from exc
            self._connected()
            if self.pending_error:
                await self._guard(client.hset(STATUS_KEY, "last_error", self.pending_error))
                self.pending_error = ""
            tasks = [
                asyncio.create_task(self._read(pubsub), name="relay-read"),
                asyncio.create_task(self._lease(), name="relay-lease"),
                asyncio.create_task(self._sample_depths(), name="relay-depths"),
                asyncio.create_task(self._sample_jobs(), name="relay-jobs"),
            ]
            stopper = asyncio.create_task(stop.wait(), name="relay-stop")
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in done:
                error = None if task is stopper else task.exception()
                if error is not None:
                    raise error
            if stop.is_set():
                await self._release()
        finally:
            for task in tasks:
                task.cancel()
            self.client = None
            await self._close(tasks, pubsub, client)

    async def _close(
        self,
        tasks: list[asyncio.Task[None]],
        pubsub: redis.asyncio.client.PubSub,
        client: redis.asyncio.Redis,
    ) -> None:
        """Wait for the session's cancelled tasks and close its connections, each for at most
        ``CLOSE_SECONDS``: a relay asked to stop must exit, whatever a library is awaiting. What had
        not finished is logged with where it waits, and the process exit closes the sockets."""
        waiting = "closing the connections"
        if tasks:
            # asyncio.wait, not gather: a gather of a task that ignores its cancellation cannot be timed out.
            done, pending = await asyncio.wait(tasks, timeout=CLOSE_SECONDS)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: the session is over, whatever it was
            if pending:
                self._left_behind("; ".join(where(task) for task in pending))
                return
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                with contextlib.suppress(redis.RedisError, OSError):
                    waiting = "the subscription's connection to close"
                    await pubsub.aclose()
                    waiting = "the connection pool to close"
                    await client.aclose(close_connection_pool=True)
        except TimeoutError:
            self._left_behind(waiting)

    def _left_behind(self, what: str) -> None:
        logger.warning(
            "Relay %s: ending its Redis session took over %g s; going on without waiting for %s.",
            self.id,
            CLOSE_SECONDS,
            what,
        )

    def _connected(self) -> None:
        self.state = "connected"
        logger.info(
            "Relay %s connected to Redis at %s: subscribed to %s.",
            self.id,
            self.config.masked_url,
            self._subscriptions(),
        )

    async def _guard(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except (redis.RedisError, OSError) as exc:
            raise RedisLost(exc, self.config) from exc

    async def _release(self) -> None:
        if not self.leader or self.client is None:
            return
        try:
            await stream.script("release").acall(self.client, [LEADER_KEY, STATUS_KEY], [self.id])
            logger.info("Relay %s released the lock.", self.id)
        except (redis.RedisError, OSError) as exc:
            logger.warning("Relay %s could not release the lock: %s", self.id, explain(exc, self.config))
        self.leader = False

    # --- Leadership ---

    async def _lease(self) -> None:
        assert self.client is not None  # noqa: S101 - set by _session
        client = self.client
        renew_every = self.lock_ms / 3000
        acquire_every = min(1.0, self.lock_ms / 5000)
        while True:
            # Renewing first also re-claims a lock this relay still holds after a reconnect.
            held = await self._renew(client)
            if not held and await self._guard(client.set(LEADER_KEY, self.id, nx=True, px=self.lock_ms)):
                held = await self._renew(client)  # writes the heartbeat at once
            if held and not self.leader:
                self._lead()
            elif not held:
                await self._stand_by(client)
            self.malformed_log.flush(self.id, time.monotonic())
            await asyncio.sleep(renew_every if self.leader else acquire_every)

    async def _renew(self, client: redis.asyncio.Redis) -> bool:
        keys, args = [LEADER_KEY, STATUS_KEY], [self.id, self.lock_ms, STATUS_TTL_SECONDS]
        return bool(await self._guard(stream.script("renew").acall(client, keys, args)))

    def _lead(self) -> None:
        self.leader = True
        self.catch_up_pending = True
        self.holder = None
        logger.info(
            "Relay %s is the leader: forwarding to %s and groups %s, %s.",
            self.id,
            stream.stream_key(),
            EVENTS_GROUP,
            DEPTHS_GROUP,
        )

    async def _stand_by(self, client: redis.asyncio.Redis) -> None:
        was_leader = self.leader
        self.leader = False
        holder_raw = await self._guard(client.get(LEADER_KEY))
        holder = holder_raw.decode("utf-8", "replace") if holder_raw else "nobody"
        if was_leader or holder != self.holder:
            self.holder = holder
            logger.info(
                "Relay %s is on standby: %s holds the lock; taking over within %g s if it stops.",
                self.id,
                holder,
                self.lock_ms / 1000,
            )

    # --- Messages ---

    async def _read(self, pubsub: redis.asyncio.client.PubSub) -> None:
        last_heard = time.monotonic()
        ping_sent: float | None = None
        while True:
            try:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=READ_TIMEOUT_SECONDS
                )
            except (redis.RedisError, OSError) as exc:
                raise RedisLost(exc, self.config) from exc
            now = time.monotonic()
            if message is not None:
                last_heard, ping_sent = now, None
                if message["type"] in ("message", "pmessage"):
                    await self._handle(message["channel"], message["data"])
            elif ping_sent is not None and now - ping_sent > self.config.socket_timeout:
                raise RedisLost(
                    redis.TimeoutError("Timeout: no answer to PING on the subscription"), self.config
                )
            elif ping_sent is None and now - last_heard > PING_IDLE_SECONDS:
                await self._guard(pubsub.ping())
                ping_sent = now
            if self.leader and self.catch_up_pending:
                await self._catch_up()

    async def _handle(self, channel_raw: bytes | str, raw: Any) -> None:
        channel = channel_raw.decode("utf-8", "replace") if isinstance(channel_raw, bytes) else channel_raw
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        try:
            event = normalise(channel, data, max_bytes=self.max_bytes)
        except Malformed as error:
            if self.leader:
                await self._count_malformed(channel, error, data)
            return
        item = Received(event, time.monotonic())
        horizon = item.at - RECENT_LOCKS * self.lock_ms / 1000
        while self.recent and self.recent[0].at < horizon:
            self.recent.popleft()
        self.recent.append(item)
        if self.leader:
            if self.catch_up_pending:
                await self._catch_up()
            if not item.written:
                await self._forward(item)

    async def _count_malformed(self, channel: str, error: Malformed, raw: bytes) -> None:
        assert self.client is not None  # noqa: S101 - set by _session
        self.malformed_log.note(self.id, channel, error, raw, time.monotonic())
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hincrby(STATUS_KEY, "malformed", 1)
            pipe.hincrby(STATUS_KEY, f"malformed:{error.reason}", 1)
            pipe.hset(
                STATUS_KEY,
                "last_malformed",
                f"{now_iso()} {channel}: {error.reason} ({error.detail}): {sample(raw)}",
            )
            await self._guard(pipe.execute())

    async def _forward(self, item: Received) -> None:
        assert self.client is not None  # noqa: S101 - set by _session
        entry_id = await self._guard(stream.append_if_leader(self.client, item.event, self.id))
        if entry_id is None:
            await self._stand_by(self.client)
            return
        item.written = True
        message = group_message(item.event.browser_message(entry_id), item.event.browser_text(entry_id))
        await self._group_send(EVENTS_GROUP, message)

    async def _group_send(self, group: str, message: dict[str, Any]) -> None:
        """group_send, once more on a connection error: the layer's publish connection may be stale
        after a Redis restart, and a repeated message is harmless (sockets drop ids already sent)."""
        try:
            await self.layer.group_send(group, message)
        except (redis.RedisError, OSError):
            await self._guard(self.layer.group_send(group, message))

    async def _catch_up(self) -> None:
        """Just became leader: append what this relay received after the last entry a relay wrote."""
        assert self.client is not None  # noqa: S101 - set by _session
        self.catch_up_pending = False
        unwritten = [item for item in self.recent if not item.written]
        if not unwritten:
            return
        tail = await self._guard(stream.tail(self.client, min(TAIL_MAX, len(self.recent) + 50)))
        digests = [fields.get(b"dg", b"").decode() for _, fields in tail if fields.get(b"dg")]
        start = self._after_last_written(digests)
        pending = [item for item in list(self.recent)[start:] if not item.written]
        if pending:
            logger.info(
                "Relay %s: appending %d message(s) received while no relay was forwarding.",
                self.id,
                len(pending),
            )
        for item in pending:
            await self._forward(item)
            if not self.leader:
                return

    def _after_last_written(self, tail_digests: list[str]) -> int:
        """Index in ``recent`` just after the newest message already in the stream.

        ``tail_digests`` is newest first. Every relay receives the same messages in the same order,
        so the stream's tail is a run of ``recent``; among the places where the newest digest
        occurs, the one whose predecessors match the most of the tail wins (ties: the latest).
        Without any match, only messages of the last two lock periods (when nobody may have been
        forwarding) count as unwritten.
        """
        items = list(self.recent)
        best, best_score = -1, -1
        if tail_digests:
            for index in range(len(items) - 1, -1, -1):
                if items[index].event.digest != tail_digests[0]:
                    continue
                score = 0
                while (
                    score < min(8, len(tail_digests))
                    and index - score >= 0
                    and items[index - score].event.digest == tail_digests[score]
                ):
                    score += 1
                if score > best_score:
                    best, best_score = index, score
        if best >= 0:
            for item in items[: best + 1]:
                item.written = True
            return best + 1
        horizon = time.monotonic() - 2 * self.lock_ms / 1000
        return next((index for index, item in enumerate(items) if item.at >= horizon), len(items))

    # --- Depths ---

    async def _sample_depths(self) -> None:
        assert self.client is not None  # noqa: S101 - set by _session
        client = self.client
        while True:
            started = time.monotonic()
            if self.leader:
                try:
                    queues = await asyncio.to_thread(self._measure)
                except (redis.RedisError, OSError) as exc:
                    raise RedisLost(exc, self.config) from exc
                message = depth_message(queues, now_iso())
                text = dumps(message)
                ttl = max(30, int(10 * self.depth_seconds))
                memory = await self._guard(client.info("memory"))
                history: dict[EncodableT, EncodableT] = {
                    "depths": dumps({q["key"]: q["length"] for q in queues}),
                    "used_memory": int(memory.get("used_memory", 0)),
                }
                async with client.pipeline(transaction=False) as pipe:
                    pipe.set(DEPTHS_KEY, text, ex=ttl)
                    pipe.xadd(HISTORY_KEY, history, maxlen=self.history_len, approximate=True)
                    await self._guard(pipe.execute())
                await self._group_send(DEPTHS_GROUP, group_message(message, text))
            await asyncio.sleep(max(0.05, self.depth_seconds - (time.monotonic() - started)))

    def _measure(self) -> list[dict[str, Any]]:
        """In a worker thread: rediscover keys now and then, then all depths in one round trip."""
        client = get_redis(self.config)
        now = time.monotonic()
        if not self.found or now - self.found_at > DISCOVER_SECONDS:
            self.found, self.found_at = inventory.queue_keys(client), now
            key_census(client)  # the dashboard's count of a large keyspace goes on between page loads
        return [
            {name: value for name, value in info.as_dict().items() if name in DEPTH_FIELDS}
            for info in inventory.measure(client, self.found)
        ]

    # --- Jobs ---

    async def _sample_jobs(self) -> None:
        """While leading: every ``job_seconds``, send the rows of moving jobs that changed."""
        while True:
            started = time.monotonic()
            if self.leader:
                sampled_at = now_iso()
                try:
                    rows = await asyncio.to_thread(self._job_rows, sampled_at)
                except redis.ResponseError as exc:  # refused (e.g. NOPERM), not a lost connection
                    logger.warning("Relay %s: job sampling skipped for a minute: %s", self.id, exc)
                    await asyncio.sleep(JOB_REFUSED_PAUSE_SECONDS)
                    continue
                except (redis.RedisError, OSError) as exc:
                    raise RedisLost(exc, self.config) from exc
                for start in range(0, len(rows), JOB_ROWS_PER_MESSAGE):  # frames stay small
                    part = rows[start : start + JOB_ROWS_PER_MESSAGE]
                    message = notice("jobs", {"sampled_at": sampled_at, "jobs": part})
                    await self._group_send(JOBS_GROUP, group_message(message, dumps(message)))
            else:
                self.job_sampler = jobs.LiveSampler()  # a new leader starts from a full sample
                self.jobs_found_at = 0.0
            await asyncio.sleep(max(0.05, self.job_seconds - (time.monotonic() - started)))

    def _job_rows(self, sampled_at: str) -> list[dict[str, Any]]:
        """In a worker thread: rediscover open JobTracker jobs now and then, then one sample."""
        client = get_redis(self.config)
        now = time.monotonic()
        if not self.jobs_found_at or now - self.jobs_found_at > DISCOVER_SECONDS:
            self.job_sampler.discover(client)
            self.jobs_found_at = now
        return self.job_sampler.sample(client, sampled_at)


def where(task: asyncio.Task[Any]) -> str:
    """A task's name and the coroutines it is waiting in, outermost first (following ``cr_await``
    into libraries), for a log line: "relay-read (in _read relay.py:402 → get_message client.py:…)"."""
    places, awaited = [], cast(Any, task.get_coro())
    for _ in range(50):
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        if frame is None:
            break
        places.append(
            f"{frame.f_code.co_name} {frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"
        )
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return f"{task.get_name()} (in {' → '.join(places[-6:])})" if places else task.get_name()


def run_forever(relay: Relay, install_signals: Callable[[asyncio.Event], None]) -> None:
    """Run ``relay`` in a fresh event loop until ``install_signals``'s stop event is set."""

    async def main() -> None:
        stop = asyncio.Event()
        install_signals(stop)
        await relay.run(stop)

    asyncio.run(main())
