"""The console's Lua scripts: every mutation of an HSI list is one atomic server-side step."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import redis
from redis.commands.core import Script

LUA = Path(__file__).with_name("lua")


@cache
def _source(name: str) -> str:
    return (LUA / f"{name}.lua").read_text()


def script(client: redis.Redis, name: str) -> Script:
    """A registered script: EVALSHA, falling back to EVAL after a Redis restart (NOSCRIPT)."""
    return client.register_script(_source(name))


@dataclass(frozen=True)
class Move:
    """One entry to move: where it was seen, its exact bytes, and what to push in its place."""

    hint: int
    raw: bytes
    payload: bytes = b""


def move_entries(
    client: redis.Redis, source: str, target: str | None, moves: Sequence[Move], max_len: int = 0
) -> list[str]:
    """Move (or, with no target, delete) entries by exact bytes; one status per move."""
    if not moves:
        return []
    keys = [source, target] if target else [source]
    args: list[bytes | str | int] = [max_len, f"\x00console-tombstone:{secrets.token_hex(16)}"]
    for move in moves:
        args += [move.hint, move.raw, move.payload]
    statuses = script(client, "move")(keys=keys, args=args)
    return [s.decode() if isinstance(s, bytes) else str(s) for s in statuses]


def push_entries(client: redis.Redis, target: str, payloads: Sequence[bytes], max_len: int = 0) -> int:
    """Append while the target has room; returns how many were appended."""
    if not payloads:
        return 0
    return int(script(client, "push")(keys=[target], args=[max_len, *payloads]))
