"""The console's Lua scripts: every mutation of an HSI list is one atomic server-side step.

Each call carries a receipt key. The script refuses to run if the receipt already exists, and
writes its result there when it does run, so whoever settles a crashed caller's database rows
(``queues.archive.reconcile``) can first fence the call off (SET NX) and then know for certain
what it did.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import redis

from console import lua
from console.lua import Lua
from queues import keys

LUA = Path(__file__).with_name("lua")
RECEIPT_SECONDS = 7 * 24 * 3600
# Reading list entries into a script costs Redis about 2.5 ms per MB (read_range in lua/lib.lua):
READ_WHOLE = 64 * 1024  # the largest entry a page reads whole; of a larger one, this much of its head
READ_TAIL = 1024  # and this much of its end (its fingerprint covers both ends and its size)
READ_BUDGET = 8 * 1024 * 1024  # bytes one script call reads at most (after one entry): about 20 ms
ABORTED = "aborted"


@cache
def script(name: str) -> Lua:
    """A queue script, with the helpers of ``lib.lua`` in front of it (built once per name: building
    its paths cost retry-all about 20 us per call, 4% of its time)."""
    return lua.load(LUA / "lib.lua", LUA / f"{name}.lua")


def status_text(reply: Any) -> str:
    """A script's status reply (bytes from the console's client) as text."""
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def new_token() -> str:
    return secrets.token_hex(16)


def receipt_key(token: str) -> str:
    return keys.console_key(f"receipt:{token}")


@dataclass(frozen=True)
class Move:
    """One entry to move: where it was seen, its exact bytes, and what to push in its place."""

    hint: int
    raw: bytes
    payload: bytes = b""


def move_entries(
    client: redis.Redis,
    source: str,
    target: str | None,
    moves: Sequence[Move],
    max_len: int = 0,
    token: str | None = None,
) -> list[str]:
    """Move (or, with no target, delete) entries by exact bytes; one status per move."""
    if not moves:
        return []
    token = token or new_token()
    keys_ = [source, receipt_key(token), *([target] if target else [])]
    args: list[bytes | str | int] = [max_len, f"\x00console-tombstone:{token}", RECEIPT_SECONDS, READ_BUDGET]
    for move in moves:
        args += [move.hint, move.raw, move.payload]
    statuses = [status_text(s) for s in script("move").call(client, keys_, args)]
    return [ABORTED] * len(moves) if statuses == [ABORTED] else statuses


def rotate(
    client: redis.Redis,
    source: str,
    target: str | None,
    window: Sequence[tuple[bytes, bytes | None]],
    max_len: int = 0,
    token: str | None = None,
) -> tuple[int, str]:
    """Act on the entries at the head of ``source`` that have bytes to push (for a delete: any bytes)
    and move those with ``None`` to its tail; returns how many were handled and why it stopped.

    ``window`` is the head as read: (exact bytes, bytes to push or ``None`` to keep) per entry.
    """
    if not window:
        return 0, "more"
    keys_ = [source, receipt_key(token or new_token()), *([target] if target else [])]
    flags = "".join("k" if payload is None else "a" for _, payload in window)
    args: list[bytes | str | int] = [max_len, RECEIPT_SECONDS, flags, *(raw for raw, _ in window)]
    if target:
        args += [payload for _, payload in window if payload is not None]
    handled, stop = script("rotate").call(client, keys_, args)
    return int(handled), status_text(stop)


def peek(
    client: redis.Redis,
    keys_: Sequence[str],
    start: int,
    stop: int,
    whole: int,
    tail: int,
    budget: int,
    backward: bool = False,
) -> list[Any]:
    """``peek.lua``: per key, its length, the index of the first entry read and the entries
    ``start``..``stop`` (from ``stop`` when ``backward``) until ``budget`` bytes are read, those over
    ``whole`` bytes as ``[size, head, tail]``; a key of another type's reply is its error."""
    if not keys_:
        return []
    args = [start, stop, whole, tail, budget, int(backward)]
    return list(script("peek").call_ro(client, keys_, args))


def put_back(client: redis.Redis, source: str, count: int) -> int:
    """Move the first ``count`` entries of ``source`` to its tail, in order (fewer once
    ``READ_BUDGET`` bytes are read); returns how many moved."""
    return int(script("put_back").call(client, [source], [count, READ_BUDGET]))


def push_entries(
    client: redis.Redis, target: str, payloads: Sequence[bytes], max_len: int = 0, token: str | None = None
) -> int:
    """Append while the target has room; returns how many were appended (-1: aborted)."""
    if not payloads:
        return 0
    keys_ = [target, receipt_key(token or new_token())]
    return int(script("push").call(client, keys_, [max_len, RECEIPT_SECONDS, *payloads]))


def fence(client: redis.Redis, token: str) -> str | None:
    """Abort the call ``token`` if it has not run; else return what it recorded."""
    if client.set(receipt_key(token), ABORTED, nx=True, ex=RECEIPT_SECONDS):
        return None
    value = client.get(receipt_key(token))
    text = value.decode() if isinstance(value, bytes) else value
    return None if text in (None, ABORTED) else str(text)


@dataclass(frozen=True)
class Run:
    """What one ``retry_run`` call did: how many it retried, why it stopped, a sample of them."""

    retried: int
    stop: str  # "more", "end", "full" or "defer" (the entry at the head is for Python)
    sample: list[Any]  # each an entry's bytes, or [size, head, tail] of one over READ_WHOLE


def retry_run(
    client: redis.Redis, source: str, target: str, count: int, max_len: int = 0, sample: int = 0
) -> Run:
    """Retry up to ``count`` entries from the head (fewer once ``READ_BUDGET`` bytes are read), read
    and moved by the script itself."""
    reply = script("retry_run").call(client, [source, target], [max_len, count, sample, READ_BUDGET])
    return Run(int(reply[0]), status_text(reply[1]), list(reply[2:]))
