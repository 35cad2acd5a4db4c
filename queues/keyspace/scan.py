"""Bounded SCAN, pipelined reads and defensive scalar decoding shared by the Keys section."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.core.cache import cache

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


RESUME = re.compile(r"(\d{1,3})-(\d{1,20})(?:-([0-9a-f]{16}))?")
MAX_CURSOR = 2**64 - 1  # a larger cursor is a Redis error
REST_KEY = "keys:scan-rest:{}"  # in the cache: keys a SCAN call returned beyond a page's rows
REST_SECONDS = 3600


def scan(client: redis.Redis, patterns: Iterable[str], *, rows: int | None = None, start: str = "") -> Found:
    """Keys matching any of ``patterns``: at most ``rows`` of them, examining at most SCAN_LIMIT
    keys; from ``start`` (an earlier page's ``resume``), else from the beginning.

    A SCAN call may answer more keys than the page has room for; those are kept in the cache for
    the next page, which shows them first and then goes on from the cursor, so none is skipped.
    """
    page = _Page(rows or conf("KEYS_PAGE_ROWS"), start)
    budget, count = conf("SCAN_LIMIT"), conf("SCAN_COUNT")
    if page.token and (rest := page.add(cache.get(REST_KEY.format(page.token)) or [])):
        return page.cut(page.first, page.cursor, rest)
    calls = 0
    for index, pattern in enumerate(list(patterns)):
        if index < page.first:
            continue
        cursor = page.cursor if index == page.first else 0
        while True:
            # Near ``rows``, ask for fewer so that the page ends near it; the calls stay bounded too.
            asked = max(min(count, page.rows - len(page.found)), 1)
            cursor, batch = client.scan(cursor, match=pattern, count=asked)
            page.examined, calls = page.examined + asked, calls + 1
            if rest := page.add(batch):  # a finished pattern's rest goes before the next pattern
                return page.cut(index + 1, 0, rest) if cursor == 0 else page.cut(index, cursor, rest)
            if cursor == 0:
                break
            if len(page.found) >= page.rows or page.examined >= budget or calls * count >= budget:
                return page.cut(index, cursor, [])
    if not page.resumed:
        page.examined = min(page.examined, int(client.dbsize()))
    return Found(page.found, page.examined, True, resumed=page.resumed)


class _Page:
    """One Keys page's SCAN: where it starts (an earlier page's ``resume``) and what it found."""

    def __init__(self, rows: int, start: str) -> None:
        match = RESUME.fullmatch(start)
        if match is not None and int(match[2]) > MAX_CURSOR:
            match = None
        self.rows, self.resumed = rows, match is not None
        self.first, self.cursor = (int(match[1]), int(match[2])) if match else (0, 0)
        self.token = (match[3] or "") if match else ""
        self.found: list[bytes] = []
        self.seen: set[bytes] = set()
        self.examined = 0

    def add(self, batch: Iterable[bytes | str]) -> list[bytes]:
        """Adds the new keys that fit in the page; answers those that do not."""
        fresh = []
        for item in batch:
            key = item.encode() if isinstance(item, str) else item
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(key)
        room = self.rows - len(self.found)
        self.found.extend(fresh[:room])
        return fresh[room:]

    def cut(self, index: int, cursor: int, rest: list[bytes]) -> Found:
        """The page stops here: the next goes on at ``cursor`` of pattern ``index`` (0: from its
        beginning), showing ``rest`` first."""
        resume = f"{index}-{cursor}"
        if rest:
            token = secrets.token_hex(8)
            cache.set(REST_KEY.format(token), rest, REST_SECONDS)
            resume += f"-{token}"
        return Found(self.found, self.examined, False, resume, resumed=self.resumed)


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
