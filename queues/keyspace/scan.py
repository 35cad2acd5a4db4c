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
    """Keys a bounded SCAN found: ``complete`` is False when it stopped before the end, and then
    ``resume`` says where the next page's SCAN goes on (``<pattern index>-<cursor>``)."""

    keys: list[bytes]
    examined: int
    complete: bool
    resume: str = ""
    resumed: bool = False  # this page went on from an earlier one

    @property
    def names(self) -> list[str]:
        return [text(k) for k in self.keys]

    @property
    def note(self) -> str:
        if self.complete and not self.resumed:
            return ""
        if self.complete:
            return f"The rest of the keys: scanned {self.examined:,} more; {len(self.keys):,} found here."
        more = "more " if self.resumed else ""
        return (
            f"Partial: scanned {self.examined:,} {more}keys and stopped (bounded SCAN); "
            f"{len(self.keys):,} matching keys found so far are shown."
        )


RESUME = re.compile(r"(\d{1,3})-(\d{1,20})")
MAX_CURSOR = 2**64 - 1  # a larger cursor is a Redis error


def scan(client: redis.Redis, patterns: Iterable[str], *, rows: int | None = None, start: str = "") -> Found:
    """Keys matching any of ``patterns``: at most about ``rows`` of them (the last SCAN call's
    matches are all kept, so that going on from ``resume`` skips none), examining at most
    SCAN_LIMIT keys; from ``start`` (an earlier page's ``resume``), else from the beginning."""
    rows = rows or conf("KEYS_PAGE_ROWS")
    budget, count = conf("SCAN_LIMIT"), conf("SCAN_COUNT")
    first, cursor = _start(start)
    resumed = (first, cursor) != (0, 0)
    found: list[bytes] = []
    seen: set[bytes] = set()
    examined = 0
    for index, pattern in enumerate(list(patterns)):
        if index < first:
            continue
        cursor = cursor if index == first else 0
        while True:
            cursor, batch = client.scan(cursor, match=pattern, count=max(min(count, rows - len(found)), 1))
            examined += count
            for item in batch:
                key = item.encode() if isinstance(item, str) else item
                if key not in seen:
                    seen.add(key)
                    found.append(key)
            if cursor == 0:
                break
            if len(found) >= rows or examined >= budget:
                return Found(found, examined, False, f"{index}-{cursor}", resumed=resumed)
    if not resumed:
        examined = min(examined, int(client.dbsize()))
    return Found(found, examined, True, resumed=resumed)


def _start(start: str) -> tuple[int, int]:
    """An earlier page's ``resume`` as (pattern index, cursor); the beginning when it is not one."""
    match = RESUME.fullmatch(start)
    if match is None or int(match[2]) > MAX_CURSOR:
        return 0, 0
    return int(match[1]), int(match[2])


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
