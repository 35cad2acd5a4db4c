"""``/ws/events/`` through the real ASGI stack (origin check, session auth) on the real channels-redis
layer and a private redis-server; and 120 real WebSocket clients against a live daphne."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import path

from realtime import stream
from realtime.consumers import LiveEventsConsumer
from realtime.events import (
    DEPTHS_GROUP,
    DEPTHS_KEY,
    EVENTS_GROUP,
    Event,
    depth_message,
    dumps,
    group_message,
    now_iso,
    parse_id,
)
from tests.live_server import LiveConsole
from tests.redis_server import RedisServer
from tests.relay_helpers import RelayProcess, await_until, stream_events, subscribers, wait_until
from tests.ws_client import Closed, HandshakeRefused, WebSocket

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
SOCKET = "/ws/events/"


def session_cookie(user: User) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


def communicator(
    cookie: str | None, query: str = "", app: Any = None, origin: bytes = b"http://testserver"
) -> WebsocketCommunicator:
    from console.asgi import application

    headers = [(b"origin", origin), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(app or application, SOCKET + query, headers=headers)


def make_event(seq: int, channel: str = "security_events") -> Event:
    return Event(channel, "event", dumps({"seq": seq, "camera_id": "porch", "risk_level": "low"}), now_iso())


async def send_event(client: redis.Redis, seq: int) -> str:
    """What the relay does for one message: append to the stream, then group_send."""
    event = make_event(seq)
    entry_id = stream.append(client, event, source="test")
    message = group_message(event.browser_message(entry_id), event.browser_text(entry_id))
    await get_channel_layer().group_send(EVENTS_GROUP, message)
    return entry_id


async def connect(socket: WebsocketCommunicator) -> None:
    connected, _ = await socket.connect(timeout=5)
    assert connected


async def frames_until(
    socket: WebsocketCommunicator, done: Callable[[dict[str, Any]], bool], within: float = 10
) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while not received or not done(received[-1]):
        received.append(await socket.receive_json_from(timeout=max(0.1, deadline - time.monotonic())))
    return received


def is_caught_up(frame: dict[str, Any]) -> bool:
    return bool(frame["type"] == "caught_up")


async def expect_policy_close(socket: WebsocketCommunicator, within: float = 5) -> None:
    output = await socket.receive_output(within)
    assert output == {"type": "websocket.close", "code": 4008}


# --- Who may connect ---


def test_refused_without_the_permission(redis_client: redis.Redis, roleless: User, viewer: User) -> None:
    _, roleless_cookie = session_cookie(roleless)
    outsider = User.objects.create_user("nina", password="pw-" + secrets.token_hex(6), is_staff=False)
    outsider.groups.add(Group.objects.get(name="Viewer"))
    _, outsider_cookie = session_cookie(outsider)
    _, viewer_cookie = session_cookie(viewer)

    async def scenario() -> None:
        for cookie in (None, "not-a-session", roleless_cookie, outsider_cookie):
            socket = communicator(cookie)
            assert await socket.connect(timeout=5) == (False, 4008)  # refused before accept
            assert await socket.receive_nothing()
            await socket.disconnect()
        foreign = communicator(viewer_cookie, origin=b"http://evil.example")
        connected, _ = await foreign.connect(timeout=5)
        assert not connected  # AllowedHostsOriginValidator: a cross-site page cannot open it
        await foreign.disconnect()

    asyncio.run(scenario())


# --- Live delivery ---


def test_live_delivery_with_latest_depths_first(redis_client: redis.Redis, viewer: User) -> None:
    sample = depth_message(
        [{"key": "detection_queue", "kind": "queue", "type": "list", "length": 4}], now_iso()
    )
    redis_client.set(DEPTHS_KEY, dumps(sample))
    _, cookie = session_cookie(viewer)

    async def scenario() -> list[dict[str, Any]]:
        socket = communicator(cookie)
        await connect(socket)
        opening = await frames_until(socket, is_caught_up)
        entry_id = await send_event(redis_client, 1)
        event = await socket.receive_json_from(timeout=5)
        newer = depth_message([{"key": "detection_queue", "length": 9}], now_iso())
        await get_channel_layer().group_send(DEPTHS_GROUP, group_message(newer, dumps(newer)))
        depths = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return [*opening, event, depths, {"id": entry_id}]

    opening_depths, caught_up, event, depths, sent = asyncio.run(scenario())
    assert opening_depths == sample  # the latest sample at once, before anything else
    assert caught_up == {
        "id": None,
        "channel": "console",
        "type": "caught_up",
        "data": {"last_id": None, "replayed": 0},
    }
    assert event["id"] == sent["id"] and event["channel"] == "security_events" and event["type"] == "event"
    assert event["data"] == {"seq": 1, "camera_id": "porch", "risk_level": "low"}
    assert set(event) == {"id", "channel", "type", "data", "time"}
    assert depths["type"] == "queue_depths" and depths["data"]["queues"][0]["length"] == 9


def test_catch_up_across_a_disconnect_has_no_gap_and_no_duplicate(
    redis_client: redis.Redis, viewer: User
) -> None:
    """Events appended while the browser is away, and while it reconnects (the seam), arrive once each."""
    _, cookie = session_cookie(viewer)
    total = 200
    written = threading.Event()

    def writer() -> None:  # another process's loop: the relay keeps writing during the reconnect
        async def run() -> None:
            for seq in range(2, total + 2):
                await send_event(redis_client, seq)
                if seq == 60:
                    written.set()
                await asyncio.sleep(0.002)

        asyncio.run(run())

    async def scenario() -> tuple[str, list[dict[str, Any]]]:
        first = communicator(cookie)
        await connect(first)
        await frames_until(first, is_caught_up)
        first_id = await send_event(redis_client, 1)
        assert (await first.receive_json_from(timeout=5))["id"] == first_id
        await first.disconnect()

        thread = threading.Thread(target=writer)
        thread.start()
        await await_until(written.is_set, what="the writer to get ahead")
        again = communicator(cookie, f"?since={first_id}")
        await connect(again)
        frames = await frames_until(again, lambda f: f.get("data", {}).get("seq") == total + 1, within=30)
        await asyncio.to_thread(thread.join)
        await again.disconnect()
        return first_id, frames

    first_id, frames = asyncio.run(scenario())
    stored = [entry_id for entry_id, _ in stream_events(redis_client)]
    received = [frame["id"] for frame in frames if frame["id"] is not None]
    assert received == stored[stored.index(first_id) + 1 :]  # every one after `since`, once, in order
    notices = [frame for frame in frames if frame["id"] is None]
    assert [n["type"] for n in notices] == ["caught_up"]
    replayed = notices[0]["data"]["replayed"]
    assert replayed >= 59 and frames.index(notices[0]) == replayed  # the backlog came first
    assert notices[0]["data"]["last_id"] == received[replayed - 1]


def test_lost_counts_exactly_what_was_trimmed(redis_client: redis.Redis, viewer: User) -> None:
    _, cookie = session_cookie(viewer)
    ids = [stream.append(redis_client, make_event(seq), source="test") for seq in range(1, 8)]
    redis_client.xtrim("console:events", maxlen=3, approximate=False)  # exact: keeps the events 5, 6 and 7

    async def scenario() -> list[dict[str, Any]]:
        socket = communicator(cookie, f"?since={ids[1]}")
        await connect(socket)
        frames = await frames_until(socket, is_caught_up)
        await socket.disconnect()
        return frames

    frames = asyncio.run(scenario())
    assert frames[0] == {
        "id": None,
        "channel": "console",
        "type": "lost",
        "data": {"count": 2, "since": ids[1], "exact": True},  # events 3 and 4
    }
    assert [f["id"] for f in frames[1:4]] == ids[4:]
    assert frames[4]["data"] == {"last_id": ids[6], "replayed": 3}


class GatedConsumer(LiveEventsConsumer):
    """A browser that stops reading: its frames wait at the gate, as they would on a full socket."""

    instances: list[GatedConsumer] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.gate.set()
        self.received = 0
        GatedConsumer.instances.append(self)

    def offer(self, event: dict[str, Any], ident: Any) -> None:
        self.received += 1
        super().offer(event, ident)

    async def _transmit(self, text: str) -> None:
        await self.gate.wait()
        await super()._transmit(text)


def test_slow_consumer_overflow_drops_oldest_and_says_how_many(
    redis_client: redis.Redis, viewer: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "LIVE_BUFFER": 10}
    _, cookie = session_cookie(viewer)
    app = AuthMiddlewareStack(URLRouter([path("ws/events/", GatedConsumer.as_asgi())]))

    async def scenario() -> tuple[list[str], list[dict[str, Any]]]:
        socket = communicator(cookie, app=app)
        await connect(socket)
        await frames_until(socket, is_caught_up)
        consumer = GatedConsumer.instances[-1]
        consumer.gate.clear()
        ids = [await send_event(redis_client, seq) for seq in range(1, 41)]
        await await_until(lambda: consumer.received == 40, what="all 40 to reach the consumer")
        assert len(consumer.buffer) == 10  # bounded, whatever the client does
        consumer.gate.set()
        frames = await frames_until(socket, lambda f: f["id"] == ids[-1])
        await socket.disconnect()
        return ids, frames

    ids, frames = asyncio.run(scenario())
    notices = [frame for frame in frames if frame["id"] is None]
    assert [n["type"] for n in notices] == ["skipped"]
    events = [frame["id"] for frame in frames if frame["id"] is not None]
    at = frames.index(notices[0])
    assert events[:at] == ids[:at]  # any already on their way when the client stalled, oldest first
    assert events[at:] == ids[30:]  # then the newest ten, in order: the buffer's bound
    assert len(events) + notices[0]["data"]["count"] == 40  # every event is sent or counted


# --- Console actions on the feed ---


def test_an_audited_action_reaches_open_sockets(
    redis_client: redis.Redis, viewer: User, operator: User
) -> None:
    from console import audit

    _, cookie = session_cookie(viewer)

    async def scenario() -> dict[str, Any]:
        socket = communicator(cookie)
        await connect(socket)
        await frames_until(socket, is_caught_up)
        await sync_to_async(audit.record)(operator, "dlq.retry_all", key="dlq:detection_queue", count=120)
        frame: dict[str, Any] = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return frame

    frame = asyncio.run(scenario())
    entry = audit.AuditEntry.objects.get()
    assert frame["channel"] == "console_actions" and frame["type"] == "action"
    assert frame["data"] == {
        "user": "otto",
        "action": "dlq.retry_all",
        "key": "dlq:detection_queue",
        "count": 120,
        "summary": "otto retried 120 entries of dlq:detection_queue",
        "audit_id": entry.pk,
    }
    [(entry_id, fields)] = stream_events(redis_client)
    assert frame["id"] == entry_id and fields["src"] == "console" and fields["tok"] == f"audit:{entry.pk}"


@pytest.mark.parametrize(
    ("action", "key", "count", "expected"),
    [
        ("login", "", 0, "otto signed in"),
        ("login_failed", "", 0, "otto failed to sign in"),
        ("dlq.delete_all", "dlq:x", 1, "otto deleted 1 entry of dlq:x"),
        ("archive.restore", "", 2, "otto restored 2 entries from the archive"),
        ("archive.restore_all", "dlq:x", 500, "otto restored 500 entries of dlq:x from the archive"),
        ("job_abort", "job:42", 1, "otto aborted job:42"),
        ("invalidate_cache", "cache:stats", 3, "otto invalidated 3 cache keys of cache:stats"),
        ("service_restart", "ai-detector", 1, "otto asked HSI to restart ai-detector"),
        ("something_new", "k", 2, "otto something_new (2) on k"),
    ],
)
def test_every_action_reads_as_a_sentence_that_starts_with_its_user(
    action: str, key: str, count: int, expected: str
) -> None:
    """The live page shows the user once, in bold, when the summary starts with the name."""
    from console.models import AuditEntry
    from realtime import feed

    assert feed.summary(AuditEntry(username="otto", action=action, key=key, count=count)) == expected


def test_an_action_is_recorded_even_when_the_feed_is_down(
    redis_client: redis.Redis, operator: User, point_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from console import audit
    from realtime import feed

    point_at(url="redis://127.0.0.1:1/0")  # nothing listens there
    feed._last_logged["at"] = -feed.LOG_EVERY_SECONDS
    entry = audit.record(operator, "dlq.delete", key="dlq:detection_queue", count=3)
    assert audit.AuditEntry.objects.filter(pk=entry.pk).exists()  # the action's record stands
    assert f"Could not put audit entry {entry.pk} on the live feed: Connection refused" in caplog.text
    assert feed.publish_action(entry) is None  # and a second failure is not logged again within the minute
    assert caplog.text.count("Could not put audit entry") == 1


# --- The session is re-checked ---


def test_logout_closes_the_socket_at_once(redis_client: redis.Redis, viewer: User) -> None:
    client, cookie = session_cookie(viewer)
    _, other_cookie = session_cookie(viewer)

    async def scenario() -> None:
        socket, other = communicator(cookie), communicator(other_cookie)
        await connect(socket)
        await connect(other)
        await frames_until(socket, is_caught_up)
        await frames_until(other, is_caught_up)
        await sync_to_async(client.logout)()
        await expect_policy_close(socket)
        entry_id = await send_event(redis_client, 1)  # the other session of the same user stays open
        assert (await other.receive_json_from(timeout=5))["id"] == entry_id
        await socket.disconnect()
        await other.disconnect()

    asyncio.run(scenario())


def test_lost_permission_or_deactivation_closes_on_the_next_check(
    redis_client: redis.Redis, viewer: User, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "LIVE_RECHECK_SECONDS": 0.5}
    _, viewer_cookie = session_cookie(viewer)
    _, operator_cookie = session_cookie(operator)

    async def scenario() -> None:
        demoted, deactivated = communicator(viewer_cookie), communicator(operator_cookie)
        await connect(demoted)
        await connect(deactivated)
        await frames_until(demoted, is_caught_up)
        await frames_until(deactivated, is_caught_up)
        # Straight in the database: no signal, so only the periodic re-check can notice.
        await sync_to_async(User.groups.through.objects.filter(user=viewer).delete)()
        await sync_to_async(User.objects.filter(pk=operator.pk).update)(is_active=False)
        await expect_policy_close(demoted)
        await expect_policy_close(deactivated)
        await demoted.disconnect()
        await deactivated.disconnect()

    asyncio.run(scenario())


# --- Redis restarts under a live socket ---


def test_socket_keeps_delivering_after_redis_restarts(
    start_server: Callable[..., RedisServer], viewer: User, settings: Any, tmp_path: Path
) -> None:
    """A real relay and a live socket on a Redis that is SIGKILLed and restarted: events after the
    restart still reach the open socket, ids restart, and the client is told it may have lost some."""
    from console.redis import RedisConfig
    from tests.relay_helpers import relay_env

    server = start_server()
    config = RedisConfig(url=server.url, socket_timeout=5, socket_connect_timeout=2)
    settings.HSI_REDIS = settings.CONSOLE_REDIS = config
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [config.channel_layer_host()], "prefix": "console:layer:"},
        }
    }
    client = server.client()
    relay = RelayProcess("relay-s", relay_env(server.url), tmp_path / "relay.log").start()
    _, cookie = session_cookie(viewer)
    group_channel = f"console:layer:__group__{EVENTS_GROUP}"

    def publish(seq: int) -> None:
        client.publish("security_events", json.dumps({"type": "event", "data": {"seq": seq}}))

    async def scenario() -> list[dict[str, Any]]:
        socket = communicator(cookie)
        await connect(socket)
        await frames_until(socket, is_caught_up)
        await asyncio.to_thread(relay.wait_leading, client)
        publish(1)
        before = await frames_until(socket, lambda f: f.get("data", {}).get("seq") == 1)
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(relay.wait_leading, client)
        await await_until(lambda: subscribers(client, group_channel) >= 1, what="the layer to resubscribe")
        publish(2)
        after = await frames_until(socket, lambda f: f.get("data", {}).get("seq") == 2, within=15)
        await socket.disconnect()
        return before + after

    try:
        frames = asyncio.run(scenario())
    finally:
        relay.kill()
    events = [f for f in frames if f["id"] is not None]
    assert [e["data"]["seq"] for e in events] == [1, 2]
    assert parse_id(events[1]["id"]).n == 1  # type: ignore[union-attr]  # a new stream
    lost = [f for f in frames if f["type"] == "lost"]
    assert lost and lost[0]["data"]["exact"] is False  # honest: the old stream is gone


# --- 120 real sockets on daphne ---


SESSION_FOR = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
user = User.objects.get(username={username!r})
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def new_session(console: LiveConsole) -> str:
    """A logged-in session of "viewer" on the live console (the shell's last output line)."""
    return (
        console.manage("shell", "-c", SESSION_FOR.format(username="viewer")).stdout.strip().splitlines()[-1]
    )


def test_120_simultaneous_sockets_on_daphne_all_receive_one_event(
    live_console: LiveConsole, tmp_path: Path
) -> None:
    session = new_session(live_console)
    client = redis.Redis.from_url(live_console.env["REDIS_URL"], socket_timeout=5)
    relay = RelayProcess("relay-120", live_console.env, tmp_path / "relay.log").start()
    url = live_console.url.replace("http://", "ws://") + SOCKET
    headers = {"Origin": live_console.url, "Cookie": f"sessionid={session}"}
    marker = str(uuid.uuid4())

    def forwarding() -> bool:  # some relay leads and listens: a probe lands in the stream
        probe = f"probe-{uuid.uuid4()}"
        client.publish("security_events", json.dumps({"type": "probe", "data": {"probe": probe}}))
        time.sleep(0.2)
        return any(
            probe.encode() in fields.get(b"data", b"")
            for _, fields in cast(
                list[tuple[bytes, dict[bytes, bytes]]], client.xrevrange("console:events", count=50)
            )
        )

    async def one(ready: list[WebSocket]) -> dict[str, Any]:
        socket = await WebSocket.connect(url, headers)
        while (await socket.recv_json())["type"] != "caught_up":
            pass
        ready.append(socket)
        while True:
            frame = await socket.recv_json(within=30)
            if frame.get("data", {}).get("marker") == marker:
                await socket.close()
                return frame

    async def scenario() -> list[dict[str, Any] | BaseException]:
        ready: list[WebSocket] = []
        tasks = [asyncio.create_task(one(ready)) for _ in range(120)]
        await await_until(
            lambda: len(ready) == 120 or any(t.done() for t in tasks), within=60, what="120 sockets"
        )
        client.publish("security_events", json.dumps({"type": "event", "data": {"marker": marker}}))
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        wait_until(forwarding, timeout=30, what="a relay forwarding")
        results = asyncio.run(scenario())
    finally:
        relay.stop()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    ids = {r["id"] for r in results if isinstance(r, dict)}
    assert len(results) == 120 and len(ids) == 1  # all of them, the same stream entry


LOGOUT = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.models import User
from django.http import HttpRequest
request = HttpRequest()
request.session = import_module(settings.SESSION_ENGINE).SessionStore({session!r})
request.user = User.objects.get(username="viewer")
logout(request)
"""


def test_daphne_refuses_without_a_session_and_closes_on_logout(live_console: LiveConsole) -> None:
    """What a browser sees from the real server: a refused handshake, and the policy close code."""
    url = live_console.url.replace("http://", "ws://") + SOCKET
    session = new_session(live_console)

    async def refused(headers: dict[str, str]) -> None:
        await WebSocket.connect(url, headers)

    with pytest.raises(HandshakeRefused, match="403"):
        asyncio.run(refused({"Origin": live_console.url}))  # no session
    with pytest.raises(HandshakeRefused, match="403"):
        asyncio.run(refused({"Origin": "http://evil.example", "Cookie": f"sessionid={session}"}))

    async def closed_code(socket: WebSocket) -> int:
        try:
            while True:
                await socket.recv_json(within=30)
        except Closed as closed:
            return closed.code

    async def logged_out() -> int:
        socket = await WebSocket.connect(url, {"Origin": live_console.url, "Cookie": f"sessionid={session}"})
        while (await socket.recv_json())["type"] != "caught_up":
            pass
        reading = asyncio.create_task(closed_code(socket))  # keep reading, as a browser does
        await asyncio.to_thread(live_console.manage, "shell", "-c", LOGOUT.format(session=session))
        return await reading

    code = asyncio.run(logged_out())
    assert code == 4008, live_console.output()[-3000:]
    assert "invalid close code" not in live_console.output()
