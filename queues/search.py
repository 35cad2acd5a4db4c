"""A bounded filtered read of a list: what the item browser shows and the confirm page counts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import redis

from queues import dlq

MAX_EXAMINED = 5_000
T = TypeVar("T")


@dataclass(frozen=True)
class Scan:
    """A bounded filtered read: the matches found between ``start`` and ``stop`` of ``total``."""

    entries: list[dlq.Entry]
    matched: int
    start: int
    stop: int
    total: int

    @property
    def complete(self) -> bool:
        return self.stop >= self.total

    @property
    def examined(self) -> int:
        return self.stop - self.start


def search(
    client: redis.Redis,
    key: str,
    select: Callable[[dlq.Entry], bool],
    *,
    start: int = 0,
    newest_first: bool = False,
    limit: int | None = None,
    max_examined: int = MAX_EXAMINED,
) -> Scan:
    """Examine at most ``max_examined`` entries from ``start``, in pages of 100 (``dlq.page``'s cap).

    With ``limit`` it stops after that many matches (the browser); without, it only counts.
    """
    seen = {"total": 0}
    entries = read(client, key, start=start, newest_first=newest_first, max_examined=max_examined, seen=seen)
    walked = walk(entries, select, limit)
    return Scan(walked.found, walked.matched, start, start + walked.examined, seen["total"])


def read(
    client: redis.Redis,
    key: str,
    *,
    start: int = 0,
    newest_first: bool = False,
    max_examined: int = MAX_EXAMINED,
    seen: dict[str, int] | None = None,
) -> Iterator[dlq.Entry]:
    """At most ``max_examined`` entries from ``start``, a page of 100 per round trip, read as they
    are consumed; ``seen["total"]`` is the list's length as the last page found it."""
    seen = {} if seen is None else seen
    position, end = start, start + max_examined
    seen["total"] = 0
    while position < end:
        chunk = dlq.page(client, key, position, min(100, end - position), newest_first)
        seen["total"] = chunk.total
        if not chunk.entries:
            return
        position += len(chunk.entries)
        yield from chunk.entries


@dataclass(frozen=True)
class Walk(Generic[T]):
    found: list[T]
    matched: int
    examined: int


def walk(entries: Iterable[T], select: Callable[[T], bool], limit: int | None) -> Walk[T]:
    """Count the entries ``select`` picks, keeping them (up to ``limit``: then it stops) when given
    a limit; the caller's ``entries`` bound how many are read."""
    found: list[T] = []
    matched = examined = 0
    for entry in entries:
        examined += 1
        if not select(entry):
            continue
        matched += 1
        if limit:
            found.append(entry)
            if matched >= limit:
                break
    return Walk(found, matched, examined)
