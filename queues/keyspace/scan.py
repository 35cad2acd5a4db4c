"""Bounded SCAN, pipelined reads and defensive scalar decoding shared by the Keys section."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from queues.codec import decode
from queues.conf import conf


def text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw


def glob_escape(literal: str) -> str:
    """``literal`` as a SCAN MATCH pattern that matches only itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", literal)


# --- Bounded SCAN ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """Keys a bounded SCAN found: ``complete`` is False when it stopped before the end."""

    keys: list[bytes]
    examined: int
    complete: bool

    @property
    def names(self) -> list[str]:
        return [text(k) for k in self.keys]

    @property
    def note(self) -> str:
        if self.complete:
            return ""
        return (
            f"Partial: scanned {self.examined:,} keys and stopped (bounded SCAN); "
            f"{len(self.keys):,} matching keys found so far are shown."
        )


def scan(client: redis.Redis, patterns: Iterable[str], *, rows: int | None = None) -> Found:
    """Keys matching any of ``patterns``: at most ``rows`` of them, examining at most SCAN_LIMIT keys."""
    rows = rows or conf("KEYS_PAGE_ROWS")
    budget, count = conf("SCAN_LIMIT"), conf("SCAN_COUNT")
    found: list[bytes] = []
    seen: set[bytes] = set()
    examined, complete = 0, True
    for pattern in patterns:
        cursor = 0
        while True:
            cursor, batch = client.scan(cursor, match=pattern, count=count)
            examined += count
            for item in batch:
                key = item.encode() if isinstance(item, str) else item
                if key not in seen:
                    seen.add(key)
                    found.append(key)
            if cursor == 0:
                break
            if len(found) >= rows or examined >= budget:
                complete = False
                break
        if not complete:
            break
    if complete:
        examined = min(examined, int(client.dbsize()))
    return Found(found[:rows], examined, complete and len(found) <= rows)


def pipelined(client: redis.Redis, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """Run ``(method, args)`` calls in one round trip; a failing call yields its exception."""
    if not calls:
        return []
    pipe = client.pipeline(transaction=False)
    for method, args in calls:
        getattr(pipe, method)(*args)
    return list(pipe.execute(raise_on_error=False))


def ok(value: Any) -> bool:
    return not isinstance(value, Exception)


def ttl_text(ttl: Any) -> str:
    if not isinstance(ttl, int) or ttl == -2:
        return "gone"
    if ttl == -1:
        return "no TTL"
    return f"{ttl} s"


def scalar(raw: bytes | None) -> tuple[str | None, str]:
    """A string value stored raw or JSON-quoted: ``(value, "")`` or ``(None, reason)``."""
    if raw is None:
        return None, "missing"
    found = decode(raw)
    if found.kind in ("json-string", "text"):
        return str(found.value), ""
    if found.kind == "json" and isinstance(found.value, int | float) and not isinstance(found.value, bool):
        return text(raw), ""
    return None, f"not a plain string ({found.kind})"


def number(raw: bytes | None) -> tuple[float | None, str]:
    value, problem = scalar(raw)
    if value is None:
        return None, problem
    try:
        parsed = float(value)
    except ValueError:
        return None, f"not a number: {value[:40]!r}"
    return (parsed, "") if math.isfinite(parsed) else (None, "not a finite number")
