"""Where a freshly opened live page starts reading the console's event stream."""

from __future__ import annotations

import redis

from realtime.stream import stream_key

MAX_SEQUENCE = 2**64 - 1


def replay_from(client: redis.Redis, count: int) -> str | None:
    """The stream id just before the newest ``count`` stored events (None when the stream is empty):
    the page's first ``?since=``, so it replays those events and nothing older."""
    entries = client.xrevrange(stream_key(), count=count + 1) or []
    oldest = text(entries[-1][0]) if entries else ""
    if not oldest:
        return None
    return oldest if len(entries) > count else previous_id(oldest)


def previous_id(stream_id: str) -> str:
    """The greatest id below ``stream_id`` (``"5-0"`` → ``"4-18446744073709551615"``); for the
    relay's ``<ms>-<n>`` ids (realtime/events.py) that is ``<ms>-<n - 1>``, so nothing counts as lost."""
    ms, seq = (int(part) for part in stream_id.split("-", 1))
    if seq:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{MAX_SEQUENCE}" if ms else "0-0"


def text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""
