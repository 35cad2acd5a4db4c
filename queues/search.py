"""A bounded filtered read of a list: what the item browser shows and the confirm page counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from queues import dlq

MAX_EXAMINED = 5_000


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
    found: list[dlq.Entry] = []
    matched, position, total, end = 0, start, 0, start + max_examined
    while position < end:
        chunk = dlq.page(client, key, position, min(100, end - position), newest_first)
        total = chunk.total
        for entry in chunk.entries:
            position += 1
            if not select(entry):
                continue
            matched += 1
            if limit:
                found.append(entry)
                if matched >= limit:
                    return Scan(found, matched, start, position, total)
        if not chunk.entries:
            break
    return Scan(found, matched, start, position, total)
