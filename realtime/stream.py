"""The console's event stream: fenced appends with counting ids (realtime/lua/), bounded reads."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio

from console import lua
from console.lua import Lua
from realtime.events import LEADER_KEY, STATUS_KEY, Event, setting

LUA = Path(__file__).with_name("lua")
Entry = tuple[bytes, dict[bytes, bytes]]


@cache
def script(name: str) -> Lua:
    return lua.load(LUA / f"{name}.lua")  # cached by name: building the path costs more than the lookup


def stream_key() -> str:
    return str(setting("EVENTS_STREAM"))


def _append_args(event: Event, fence: str, source: str, token: str) -> tuple[list[str], list[Any]]:
    keys = [stream_key(), LEADER_KEY, STATUS_KEY]
    return keys, [fence, int(setting("EVENTS_MAXLEN")), token, *event.fields(source, token)]


def _text(reply: Any) -> str | None:
    if reply is None:
        return None
    return reply.decode("ascii") if isinstance(reply, bytes) else str(reply)


def append(client: redis.Redis, event: Event, *, source: str, token: str = "") -> str:
    """Append an unfenced entry (console actions); ``token`` makes a re-sent call write nothing."""
    keys, args = _append_args(event, "", source, token)
    entry_id = _text(script("append").call(client, keys, args))
    if entry_id is None:  # an unfenced append always writes, or finds its token
        raise redis.ResponseError("the append script returned nothing for an unfenced append")
    return entry_id


async def append_if_leader(client: redis.asyncio.Redis, event: Event, relay_id: str) -> str | None:
    """Append only while ``relay_id`` holds the leader lock (checked in the same script); else None."""
    keys, args = _append_args(event, relay_id, relay_id, "")
    return _text(await script("append").acall(client, keys, args))


async def ends(client: redis.asyncio.Redis) -> tuple[Entry | None, Entry | None]:
    """The first and the last entry of the stream (None, None when it is empty or missing)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.xrange(stream_key(), count=1)
        pipe.xrevrange(stream_key(), count=1)
        first, last = await pipe.execute()
    return (first[0] if first else None), (last[0] if last else None)


async def read_after(
    client: redis.asyncio.Redis, after: str, upto: str = "+", count: int = 200
) -> list[Entry]:
    """Up to ``count`` entries with ids in (after, upto]; ``after`` may be "-" for the start."""
    start = after if after == "-" else f"({after}"
    return cast(list[Entry], await client.xrange(stream_key(), min=start, max=upto, count=count))


async def tail(client: redis.asyncio.Redis, count: int) -> list[Entry]:
    """The newest ``count`` entries, newest first."""
    return cast(list[Entry], await client.xrevrange(stream_key(), count=count))
