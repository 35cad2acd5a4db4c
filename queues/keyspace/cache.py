"""HSI's cache keys (contract §11) with their stale-while-revalidate side keys."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from django.http import HttpRequest

from console import audit
from queues import keys
from queues.conf import conf
from queues.keyspace.scan import Found, glob_escape, number, ok, pipelined, scan, text, ttl_text

CACHE_SIDE_SUFFIXES = (":fresh_until", ":refreshing")


@dataclass
class CacheEntry:
    key: str
    type: str
    ttl: str
    size: int | None
    fresh_until: str = ""
    refreshing: str = ""


def is_cache_key(name: str) -> bool:
    return name.startswith(keys.CACHE_PREFIXES) and keys.classify(name).name == "cache"


def cache_entries(client: redis.Redis, start: str = "") -> tuple[list[CacheEntry], Found]:
    found = scan(client, [f"{prefix}*" for prefix in keys.CACHE_PREFIXES], start=start)
    names = found.names
    present = set(names)
    main = [n for n in names if not (n.endswith(CACHE_SIDE_SUFFIXES) and _base(n) in present)]
    answers = pipelined(
        client,
        [
            call
            for n in main
            for call in (
                ("type", (n,)),
                ("ttl", (n,)),
                ("memory_usage", (n,)),
                ("get", (keys.cache_fresh_until_key(n),)),
                ("ttl", (keys.cache_refreshing_key(n),)),
            )
        ],
    )
    now = time.time()
    rows = []
    for index, name in enumerate(main):
        kind, ttl, size, fresh, refreshing = answers[5 * index : 5 * index + 5]
        entry = CacheEntry(name, text(kind) if ok(kind) else "?", ttl_text(ttl), size if ok(size) else None)
        if ok(fresh) and fresh is not None:
            until, problem = number(fresh)
            entry.fresh_until = problem or (
                f"fresh for {until - now:.0f} s" if until and until > now else "stale"
            )
        if isinstance(refreshing, int) and refreshing != -2:
            entry.refreshing = f"refresh lock held ({ttl_text(refreshing)})"
        rows.append(entry)
    return rows, found


def _base(name: str) -> str:
    for suffix in CACHE_SIDE_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def cache_prefix_keys(client: redis.Redis, prefix: str) -> Found:
    """Cache keys under ``prefix``, at most CACHE_INVALIDATE_LIMIT of them (the rest: next time)."""
    return scan(client, [glob_escape(prefix) + "*"], rows=conf("CACHE_INVALIDATE_LIMIT"))


def cache_problem(prefix: str, *, whole_key: bool) -> str:
    """Why ``prefix`` (or a key) may not be invalidated, or ``""``."""
    what = "key" if whole_key else "prefix"
    if not prefix.startswith(keys.CACHE_PREFIXES):
        return f"A cache {what} starts with hsi:cache: or cache:; {prefix[:200]!r} does not."
    if not whole_key and prefix in keys.CACHE_PREFIXES:
        return f"Name a prefix longer than {prefix!r}; invalidating the whole cache at once is not offered."
    if whole_key and not is_cache_key(prefix):
        return f"{prefix[:200]!r} is not a cache key."
    return ""


def invalidate_cache_key(client: redis.Redis, request: HttpRequest, key: str) -> int:
    names = [key, keys.cache_fresh_until_key(key), keys.cache_refreshing_key(key)]
    removed = int(client.unlink(*names))
    audit.record(
        request.user, "invalidate_cache", key=key, count=removed, request=request, detail={"keys": names}
    )
    return removed


def invalidate_cache_prefix(client: redis.Redis, request: HttpRequest, prefix: str) -> tuple[int, bool]:
    """UNLINK up to CACHE_INVALIDATE_LIMIT keys under ``prefix``; also says whether more may remain."""
    found = cache_prefix_keys(client, prefix)
    removed = int(client.unlink(*found.keys)) if found.keys else 0
    audit.record(
        request.user,
        "invalidate_cache_prefix",
        key=prefix,
        count=removed,
        request=request,
        detail={"keys": found.names[:50], "complete": found.complete},
    )
    return removed, not found.complete
