"""``/ws/events/``: the live feed for one browser (docs/live-protocol.md).

Connect. Only an active staff user with "view live events" may connect; anyone else is refused
before the socket is accepted (close code 4008; daphne turns a close before accept into HTTP 403,
which a browser reports as a failed connection). The socket joins the live groups (through its
process's LocalFanout, below) BEFORE it reads the stream, so nothing appended in between can fall
through the seam.

Catch-up. With ``?since=<id>`` it first sends every stored event after that id, read in bounded
chunks, then ``caught_up``; live events with an id at or below the last one sent are dropped, so
the seam has no duplicate. Without ``since`` it starts at the stream's newest entry (``caught_up``
carries that id, a starting point for the next reconnect). When ``since`` is older than the
oldest entry kept, ``lost`` says how many events were trimmed in between: exactly, because the
sequence part of the console's ids counts every entry (realtime/events.py); only when the stream
itself was lost (a Redis restart without persistence) is the count a lower bound (``exact``
false).

Live. Group messages go into a bounded buffer (LIVE_BUFFER) that a single sender task drains, so
a slow browser never slows another or grows memory without bound: when the buffer is full the
oldest is dropped, and the client gets ``skipped`` with the count before the next event. Depth
samples are not queued: only the newest waits to be sent. If an event arrives whose id does not
follow the last one sent (the channel layer lost messages while it reconnected to Redis, or two
writers' messages crossed), the gap is read from the stream before it is sent.

Session. Channels checks the session only at connect; this consumer re-checks the session, the
user and the permission every LIVE_RECHECK_SECONDS and before a flush once that much time has
passed, and at once when its user logs out (realtime/signals.py). A socket whose session ended,
whose user was deactivated or lost the permission is closed with 4008 (the private-range twin of
RFC 6455's 1008 policy violation, which daphne cannot send: see realtime/events.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import weakref
from collections import deque
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

import redis.asyncio
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest

from console.redis import get_async_redis
from console.roles import perm
from realtime import stream
from realtime.events import (
    DEPTHS_GROUP,
    DEPTHS_KEY,
    EVENTS_GROUP,
    GROUP_MESSAGE,
    INTERNAL_ERROR,
    POLICY_VIOLATION,
    StreamId,
    dumps,
    entry_message,
    notice,
    parse_id,
    setting,
    user_group,
)

logger = logging.getLogger("realtime.consumers")
CHUNK = 200  # stream entries per XRANGE while catching up
RECHECK_JITTER = 0.25  # a socket's session re-check comes after 75-100 % of LIVE_RECHECK_SECONDS
OVERDUE = 2  # a send waits for a session re-check only this many intervals after the last one
# RFC 6455's 1009 (message too big) in the private range: daphne can send only 1000 and 3000-4999,
# and it drops a close reason, so the sentence also goes out as a last ``refused`` notice.
MESSAGE_TOO_BIG = 4009
WS_MAX_MESSAGE_BYTES = 4096  # default of HSI_CONSOLE["WS_MAX_MESSAGE_BYTES"] (HSI_WS_MAX_MESSAGE_BYTES)


def may_watch(user: Any) -> bool:
    """Active staff with "view live events" (superusers have every permission)."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(perm("view_live_events"))
    )


def still_allowed(session_key: str | None, user_id: int) -> bool:
    """The session still exists and still logs in ``user_id``, who may still watch (fresh from the DB)."""
    if not session_key:
        return False
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(request)  # checks the backend, is_active and the session auth hash
    return user.pk == user_id and may_watch(user)


def since_from(scope: dict[str, Any]) -> StreamId | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("since") or [""]
    return parse_id(values[0])


class LocalFanout:
    """The live groups for every socket of one process (one per event loop and channel layer).

    Channels would give each socket its own subscription to the groups: every event would then be
    decoded, wrapped in a task and dispatched once per socket, which is most of a server's CPU at a
    few thousand frames a second. Here one layer channel joins ``live.events`` and ``live.depths``,
    each message is decoded once, its id parsed once, and offered to every local socket's bounded
    buffer. Offering never waits, so a slow socket cannot hold up the others.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.sockets: set[LiveEventsConsumer] = set()
        self.channel = ""
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    async def join(self, socket: LiveEventsConsumer) -> None:
        """Once this returns, every message sent to the live groups reaches ``socket``."""
        async with self.lock:
            if not self.channel:
                channel = await self.layer.new_channel()
                for group in (EVENTS_GROUP, DEPTHS_GROUP):
                    await self.layer.group_add(group, channel)
                self.channel = channel
                self.task = asyncio.create_task(self._pump(), name="live-fanout")
        self.sockets.add(socket)

    def leave(self, socket: LiveEventsConsumer) -> None:
        self.sockets.discard(socket)

    async def _pump(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("The live fan-out could not read from the channel layer; retrying.")
                await asyncio.sleep(1)
                continue
            if event.get("type") != GROUP_MESSAGE:
                continue
            ident = parse_id((event.get("message") or {}).get("id"))
            for socket in tuple(self.sockets):
                socket.offer(event, ident)


_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, LocalFanout]] = (
    weakref.WeakKeyDictionary()
)


def fanout_for(layer: Any) -> LocalFanout:
    per_loop = _fanouts.setdefault(asyncio.get_running_loop(), {})
    fanout = per_loop.get(id(layer))
    if fanout is None or fanout.layer is not layer:
        fanout = per_loop[id(layer)] = LocalFanout(layer)
    return fanout


def follows(last: StreamId, ident: StreamId) -> bool:
    """``ident`` is the entry right after ``last`` (the sequence part counts every entry)."""
    return ident.n == last.n + 1 and ident.ms >= last.ms


class LiveEventsConsumer(AsyncWebsocketConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.joined: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.closing = False
        self.live = False
        self.after_skip = False
        self.last: StreamId | None = None
        self.buffer: deque[tuple[StreamId | None, dict[str, Any]]] = deque()
        self.fanout: LocalFanout | None = None
        self.buffer_size = 0
        self.dropped = 0
        self.depths: dict[str, Any] | None = None
        self.wake = asyncio.Event()
        self.recheck_now = asyncio.Event()
        self.check_lock = asyncio.Lock()
        self.checked_at = 0.0
        self.recheck_seconds = 15.0
        self.session_key: str | None = None
        self.user_id: int | None = None

    # --- Connect, disconnect ---

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not await database_sync_to_async(may_watch)(user):
            await self._close(POLICY_VIOLATION)  # before accept: daphne answers the handshake with 403
            return
        assert user is not None  # noqa: S101 - may_watch checked it
        self.user_id = user.pk
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        self.buffer_size = max(1, int(setting("LIVE_BUFFER")))
        self.recheck_seconds = float(setting("LIVE_RECHECK_SECONDS"))
        self.checked_at = time.monotonic()
        self.fanout = fanout_for(self.channel_layer)
        await self.fanout.join(self)  # the live groups, BEFORE the stream is read
        await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        self.joined.append(user_group(user.pk))
        await self.accept()
        since = since_from(self.scope)
        self.tasks = [
            asyncio.create_task(self._send_loop(since), name="live-send"),
            asyncio.create_task(self._watch(), name="live-watch"),
        ]

    async def disconnect(self, code: int) -> None:
        self.closing = True
        current = asyncio.current_task()
        tasks = [task for task in self.tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.fanout is not None:
            self.fanout.leave(self)
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined.clear()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The protocol has no client messages: small ones are ignored, a big one closes the socket.

        live.js sends nothing, so a big message is a misbehaving or hostile client; daphne has
        already bounded it (64 KiB), this closes the socket long before memory matters.
        """
        limit = int(getattr(settings, "HSI_CONSOLE", {}).get("WS_MAX_MESSAGE_BYTES", WS_MAX_MESSAGE_BYTES))
        size = len(text_data.encode("utf-8")) if text_data is not None else len(bytes_data or b"")
        if size > limit and not self.closing:
            sentence = (
                f"Message of {size} bytes refused: this socket accepts at most {limit} bytes per message."
            )
            await self._notice("refused", {"detail": sentence, "code": MESSAGE_TOO_BIG})
            self.closing = True
            await self.close(code=MESSAGE_TOO_BIG, reason=sentence)

    # --- Live messages (from the process's LocalFanout) and the user group ---

    def offer(self, event: dict[str, Any], ident: StreamId | None) -> None:
        """Take one live message; never waits, whatever the browser does."""
        message = event.get("message") or {}
        if ident is None and message.get("type") == "queue_depths":
            self.depths = event  # only the newest sample waits
        else:
            self.buffer.append((ident, event))
            if len(self.buffer) > self.buffer_size:
                self.buffer.popleft()
                if self.live:  # while catching up, the stream itself fills any hole
                    self.dropped += 1
        self.wake.set()

    async def live_message(self, event: dict[str, Any]) -> None:
        """A live message sent to this socket's own channel (the fan-out's path is ``offer``)."""
        self.offer(event, parse_id((event.get("message") or {}).get("id")))

    async def live_revoke(self, event: dict[str, Any]) -> None:
        """Its user logged out somewhere: that session's sockets close, the others re-check."""
        if event.get("session") and event.get("session") == self.session_key:
            await self._close(POLICY_VIOLATION)
        else:
            self.recheck_now.set()

    # --- Sending ---

    async def _transmit(self, text: str) -> None:
        if not self.closing:
            await self.send(text_data=text)

    async def _notice(self, kind: str, data: dict[str, Any]) -> None:
        await self._transmit(dumps(notice(kind, data)))

    async def _close(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=code)

    async def _send_loop(self, since: StreamId | None) -> None:
        try:
            client = get_async_redis(settings.HSI_REDIS)
            latest = await client.get(DEPTHS_KEY)
            if latest and self.depths is None:
                await self._transmit(
                    latest.decode("utf-8", "replace") if isinstance(latest, bytes) else latest
                )
            first, newest = await stream.ends(client)
            replayed = 0
            if since is None:
                self.last = parse_id(newest[0]) if newest else None
            else:
                replayed = await self._replay(client, since, first, newest)
            await self._notice(
                "caught_up", {"last_id": str(self.last) if self.last else None, "replayed": replayed}
            )
            self.live = True
            while not self.closing:
                await self.wake.wait()
                self.wake.clear()
                await self._flush(client)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "Live socket of user %s failed; closing it so the browser reconnects.", self.user_id
            )
            await self._close(INTERNAL_ERROR)

    async def _replay(
        self,
        client: redis.asyncio.Redis,
        since: StreamId,
        first: stream.Entry | None,
        newest: stream.Entry | None,
    ) -> int:
        """Send what the stream holds after ``since``; a trimmed stretch becomes a ``lost`` notice."""
        self.last = since
        first_id = parse_id(first[0]) if first else None
        newest_id = parse_id(newest[0]) if newest else None
        if first_id is None or newest_id is None:
            return 0
        if since > newest_id:
            # The stream was created anew (Redis lost it) and its ids restarted below ``since``:
            # what the new stream trimmed is known, what the old one held after ``since`` is not.
            await self._notice("lost", {"count": first_id.n - 1, "since": str(since), "exact": False})
            self.last = None
            return await self._send_range(client, None, None)
        return await self._send_range(client, since, None)

    async def _send_range(
        self, client: redis.asyncio.Redis, after: StreamId | None, upto: StreamId | None
    ) -> int:
        """Send the stream's entries in (after, upto], CHUNK at a time; returns how many were sent."""
        cursor, sent = str(after) if after else "-", 0
        while not self.closing:
            entries = await stream.read_after(client, cursor, str(upto) if upto else "+", CHUNK)
            for entry_id, fields in entries:
                ident, message = parse_id(entry_id), entry_message(entry_id, fields)
                if ident is None or message is None:
                    continue
                if self.last is not None and not follows(self.last, ident) and ident > self.last:
                    await self._report_gap(self.last, ident)
                await self._transmit(dumps(message))
                self.last, sent = ident, sent + 1
            if len(entries) < CHUNK:
                break
            cursor = entries[-1][0].decode("ascii")
        return sent

    async def _report_gap(self, last: StreamId, ident: StreamId) -> None:
        """The stream no longer holds what lies between ``last`` and ``ident`` (only when filling a gap)."""
        if ident.n > last.n:
            await self._notice("lost", {"count": ident.n - last.n - 1, "since": str(last), "exact": True})
        else:
            await self._notice("lost", {"count": ident.n - 1, "since": str(last), "exact": False})

    async def _flush(self, client: redis.asyncio.Redis) -> None:
        # ``_watch`` re-checks on time without holding up sends; a send waits for a check only when
        # that one is long overdue (a stalled database), so no socket sends far past its last check.
        overdue = time.monotonic() - self.checked_at >= OVERDUE * self.recheck_seconds
        if overdue and not await self._recheck():
            return
        if self.depths is not None:
            depths, self.depths = self.depths, None
            await self._transmit(depths.get("text") or dumps(depths["message"]))
        while self.buffer and not self.closing:
            if self.dropped:
                count, self.dropped = self.dropped, 0
                self.after_skip = True
                await self._notice("skipped", {"count": count})
            await self._deliver(client, *self.buffer.popleft())

    async def _deliver(
        self, client: redis.asyncio.Redis, ident: StreamId | None, event: dict[str, Any]
    ) -> None:
        text = event.get("text") or dumps(event.get("message") or {})
        if ident is None:
            await self._transmit(text)
            return
        if self.last is not None and ident <= self.last:
            return  # already sent from the stream
        if self.last is not None and not self.after_skip and not follows(self.last, ident):
            # A hole the channel layer left (it reconnected to Redis) or two writers' messages crossed.
            await self._send_range(client, self.last, ident)
            if self.last is not None and ident <= self.last:
                return
        self.after_skip = False
        await self._transmit(text)
        self.last = ident

    # --- Session re-check ---

    async def _watch(self) -> None:
        while not self.closing:
            # 75-100 % of the interval: sockets opened together (a reconnect wave after a restart)
            # spread their checks instead of queueing them all at once on the one database thread.
            wait = self.recheck_seconds * (1 - RECHECK_JITTER * random.random())  # noqa: S311 - not crypto
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.recheck_now.wait(), wait)
            self.recheck_now.clear()
            await self._recheck()

    async def _recheck(self) -> bool:
        async with self.check_lock:
            try:
                allowed = await database_sync_to_async(still_allowed)(self.session_key, self.user_id or 0)
            except Exception:
                logger.exception("Could not re-check the session of a live socket; closing it.")
                await self._close(INTERNAL_ERROR)
                return False
            self.checked_at = time.monotonic()
        if not allowed:
            await self._close(POLICY_VIOLATION)
        return bool(allowed)
