"""Inbound WebSocket limits on ``/ws/events/``: the consumer's own (HSI_WS_MAX_MESSAGE_BYTES) through
the real channels stack and through daphne, daphne's 64 KiB limit in front of it, and the handshake's
Origin rule. (Foreign-Origin refusal and close-on-logout are in tests/test_live_socket.py.)"""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User

from realtime.consumers import MESSAGE_TOO_BIG
from tests.live_server import LiveConsole
from tests.test_live_socket import (
    SOCKET,
    communicator,
    connect,
    frames_until,
    is_caught_up,
    new_session,
    send_event,
    session_cookie,
)
from tests.ws_client import TEXT, Closed, HandshakeRefused, WebSocket, _frame

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
REFUSED = "Message of 5000 bytes refused: this socket accepts at most 4096 bytes per message."


def test_small_client_messages_are_ignored_and_a_big_one_closes_with_4009(
    redis_client: redis.Redis, viewer: User
) -> None:
    _, cookie = session_cookie(viewer)

    async def scenario() -> None:
        socket = communicator(cookie)
        await connect(socket)
        await frames_until(socket, is_caught_up)
        await socket.send_to(text_data="x" * 4096)  # at the limit: ignored, the feed goes on
        entry_id = await send_event(redis_client, 1)
        assert (await socket.receive_json_from(timeout=5))["id"] == entry_id
        await socket.send_to(text_data="é" * 2500)  # 5,000 bytes in UTF-8, 2,500 characters
        notice = await socket.receive_json_from(timeout=5)
        assert notice["type"] == "refused" and notice["data"]["detail"] == REFUSED
        closing = await socket.receive_output(5)
        assert closing == {"type": "websocket.close", "code": MESSAGE_TOO_BIG, "reason": REFUSED}
        await socket.disconnect()

    asyncio.run(scenario())


def test_binary_messages_count_too(redis_client: redis.Redis, viewer: User, settings: object) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "WS_MAX_MESSAGE_BYTES": 100}  # type: ignore[attr-defined]
    _, cookie = session_cookie(viewer)

    async def scenario() -> None:
        socket = communicator(cookie)
        await connect(socket)
        await frames_until(socket, is_caught_up)
        await socket.send_to(bytes_data=b"\0" * 101)
        notice = await socket.receive_json_from(timeout=5)
        assert "at most 100 bytes per message" in notice["data"]["detail"]
        assert (await socket.receive_output(5))["code"] == MESSAGE_TOO_BIG
        await socket.disconnect()

    asyncio.run(scenario())


def test_daphne_delivers_the_4009_close_and_enforces_its_own_64_kib_limit(live_console: LiveConsole) -> None:
    url = live_console.url.replace("http://", "ws://") + SOCKET
    headers = {"Origin": live_console.url, "Cookie": f"sessionid={new_session(live_console)}"}

    async def send_and_close_code(payload: bytes) -> tuple[list[dict[str, Any]], int]:
        socket = await WebSocket.connect(url, headers)
        while (await socket.recv_json())["type"] != "caught_up":
            pass
        socket.writer.write(_frame(TEXT, payload))
        await socket.writer.drain()
        frames = []
        try:
            while True:
                frames.append(await socket.recv_json(within=15))
        except Closed as closed:
            return frames, closed.code

    frames, code = asyncio.run(send_and_close_code(b"y" * 5000))
    assert code == MESSAGE_TOO_BIG, live_console.output()[-2000:]
    assert {"type": "refused", "detail": REFUSED} in [
        {"type": f["type"], "detail": f["data"].get("detail")} for f in frames if f["type"] == "refused"
    ]
    # Over daphne's --websocket-max-frame-size (64 KiB, as every daphne command sets it): autobahn
    # fails the connection itself, by dropping it (its failByDrop default, so the client sees
    # 1006), and the consumer never sees it.
    frames, code = asyncio.run(send_and_close_code(b"z" * (64 * 1024 + 1)))
    assert code == 1006
    assert urllib.request.urlopen(f"{live_console.url}/api/system/health/live", timeout=5).status == 200  # noqa: S310
    assert not [f for f in frames if f["type"] == "refused"]
    assert "invalid close code" not in live_console.output()


def test_daphne_refuses_a_handshake_without_origin(live_console: LiveConsole) -> None:
    """Browsers always send Origin; a client that leaves it out cannot prove it is not cross-site."""
    url = live_console.url.replace("http://", "ws://") + SOCKET
    session = new_session(live_console)
    with pytest.raises(HandshakeRefused, match="403"):
        asyncio.run(WebSocket.connect(url, {"Cookie": f"sessionid={session}"}))
