"""A minimal asyncio WebSocket client (RFC 6455) for tests and benchmarks: text frames, close, ping.

No third-party client is installed, and a raw client is the faithful one anyway: it reads only
when asked, so what the server buffers stays visible.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import struct
from typing import Any
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class Closed(Exception):
    """The server closed the socket (``code`` from its close frame, 1006 without one)."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(f"closed with {code}{': ' + detail if detail else ''}")
        self.code = code


class HandshakeRefused(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + masked


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, url: str, headers: dict[str, str] | None = None, within: float = 10) -> WebSocket:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=1 << 22), within)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), within)
        status = response.split(b"\r\n", 1)[0].decode("latin-1")
        if " 101 " not in f"{status} ":
            body = b""
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                body = await asyncio.wait_for(reader.read(300), 1)
            writer.close()
            raise HandshakeRefused(f"{status} {body.decode('latin-1').strip()}".strip())
        expected = base64.b64encode(hashlib.sha1((key + GUID).encode(), usedforsecurity=False).digest())
        if expected not in response:
            writer.close()
            raise HandshakeRefused("bad Sec-WebSocket-Accept")
        return cls(reader, writer)

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        try:
            head = await self.reader.readexactly(2)
            fin, opcode, length = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return bool(fin), opcode, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise Closed(1006, repr(error)[:200]) from None

    async def recv(self) -> str:
        """The next text message; answers pings; raises Closed on a close frame or EOF."""
        parts: list[bytes] = []
        while True:
            fin, opcode, payload = await self._read_frame()
            if opcode == PING:
                self.writer.write(_frame(PONG, payload))
                continue
            if opcode == PONG:
                continue
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                with contextlib.suppress(ConnectionError):
                    self.writer.write(_frame(CLOSE, payload[:2]))  # answer, as a browser does
                self._close_transport()
                raise Closed(code)
            parts.append(payload)
            if fin:
                return b"".join(parts).decode()

    async def recv_json(self, within: float = 10) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.recv(), within))
        assert isinstance(message, dict)
        return message

    async def close(self, code: int = 1000) -> None:
        try:
            self.writer.write(_frame(CLOSE, struct.pack("!H", code)))
            await self.writer.drain()
        except ConnectionError:
            pass
        self._close_transport()

    def _close_transport(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
