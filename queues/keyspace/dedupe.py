"""Dedupe entries (contract §8): ``dedupe:{sha256}`` → JSON-quoted file path, TTL 300 s."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from django.http import HttpRequest

from console import audit
from queues import keys
from queues.conf import conf
from queues.keyspace.scan import Found, ok, pipelined, scalar, scan, text, ttl_text

SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Dedupe:
    key: str
    sha256: str
    path: str | None
    ttl: str
    problem: str = ""


def _dedupe_rows(client: redis.Redis, names: Sequence[bytes]) -> list[Dedupe]:
    answers = pipelined(client, [c for k in names for c in (("get", (k,)), ("ttl", (k,)))])
    rows = []
    for index, raw in enumerate(names):
        name = text(raw)
        value, ttl = answers[2 * index], answers[2 * index + 1]
        path, problem = scalar(value) if ok(value) else (None, "not a string key")
        if ttl == -2:
            continue
        rows.append(Dedupe(name, keys.wildcard_part(name, keys.DEDUPE_PATTERN), path, ttl_text(ttl), problem))
    return rows


def dedupe_entries(client: redis.Redis, query: str = "", start: str = "") -> tuple[list[Dedupe], Found]:
    """Every dedupe entry (bounded), or those whose sha256 or file path is ``query``."""
    query = query.strip()
    if SHA256.fullmatch(query.lower()):
        key = keys.dedupe_key(query.lower()).encode()
        return _dedupe_rows(client, [key]), Found([key], 1, True)
    found = scan(client, [keys.DEDUPE_PATTERN], rows=None if not query else conf("SCAN_LIMIT"), start=start)
    rows = _dedupe_rows(client, found.keys)
    if query:
        rows = [r for r in rows if r.path == query]
    return rows, found


def clear_dedupe(client: redis.Redis, request: HttpRequest, key: str, path: str | None) -> int:
    removed = int(client.delete(key))
    audit.record(
        request.user, "clear_dedupe", key=key, count=removed, request=request, detail={"file_path": path}
    )
    return removed
