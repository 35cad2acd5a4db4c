"""Why a DLQ's entries failed: its newest entries tallied by error type, error and camera, and when.

The on-call questions are "what is failing, is it one thing, and since when?". One request reads
at most ``MAX_EXAMINED`` entries (newest first: what is failing now), like the item browser's
search, and each value or stretch of time it shows comes with the DLQ filter that picks those
entries, from which "Retry all matching" retries them: exactly those, since each value's filter
compares the value the breakdown counted (an error's first line, cut at ``dlq.ERROR_CHARS``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import redis
from django.core.cache import cache

from queues import dlq, search, streams
from queues.actions import Filters
from queues.forms import FILTER_CHARS, number

TOP = 10  # values listed per facet; the rest are counted as "others"
MAX_BUCKETS = 24  # the timeline's stretches: minutes to weeks, whichever keeps it this short
STRETCHES = (60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)  # whole minutes


def browse_query(filter_: dict[str, str]) -> str:
    """The item browser's query string for a filter, newest first like the breakdown's sample."""
    return urlencode({**filter_, "order": "newest"})


@dataclass(frozen=True)
class Value:
    text: str
    count: int
    filter: dict[str, str] | None  # the DLQ filter that picks these entries; None if none can

    @property
    def query(self) -> str:
        """The item browser's query string that lists these entries ("" if none can)."""
        return browse_query(self.filter) if self.filter else ""

    def as_json(self) -> dict[str, Any]:
        return {"value": self.text, "count": self.count, "filter": self.filter}


@dataclass(frozen=True)
class Facet:
    name: str  # as in the API: "error_type", "error", "camera"
    label: str
    top: list[Value]
    others: int  # entries whose value is not among the top ones
    distinct: int
    missing: int  # entries examined without this field

    def as_json(self) -> dict[str, Any]:
        return {
            "values": [value.as_json() for value in self.top],
            "others": self.others,
            "distinct": self.distinct,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class Bucket:
    """The entries that failed in one stretch of time, and the filter that lists them."""

    start: datetime
    seconds: int
    count: int
    within: Filters = field(default_factory=Filters)  # the breakdown's own filter, which it narrows

    @property
    def filter(self) -> dict[str, str]:
        """since its first minute and until its last one (which the filter takes to its end), UTC
        like the filter form: every stretch is whole minutes. Within a filter with its own time
        range, the later start and the earlier end."""
        last = self.start + timedelta(seconds=self.seconds - 60)
        stretch = {"since": f"{self.start:%Y-%m-%dT%H:%M}", "until": f"{last:%Y-%m-%dT%H:%M}"}
        own = self.within.as_query()
        if self.within.since is not None and self.within.since > self.start.timestamp():
            stretch["since"] = own["since"]
        if self.within.until is not None and self.within.until < self.start.timestamp() + self.seconds:
            stretch["until"] = own["until"]
        return own | stretch

    @property
    def query(self) -> str:
        return browse_query(self.filter)

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "count": self.count, "filter": self.filter}


@dataclass(frozen=True)
class Breakdown:
    key: str
    total: int
    examined: int
    matched: int  # of the entries examined, those the filter picks (all of them without one)
    filters: Filters
    facets: list[Facet]
    unreadable: int  # entries that are not a JSON object (not JSON, binary, broken Z:, …)
    first_failed: datetime | None
    last_failed: datetime | None
    timeline: list[Bucket]  # failures per stretch of time, oldest first, empty stretches included
    earlier: int  # entries that failed before the timeline's first stretch
    window: str = ""  # which entries were read, e.g. "the newest 5,000 of 120,000 entries of dlq:x"
    older: str | None = None  # what to send as ``older`` to break down the entries before these
    newest: bool = True  # the window starts at the newest entry

    @property
    def bucket_seconds(self) -> int | None:
        return self.timeline[0].seconds if self.timeline else None

    @property
    def busiest(self) -> int:
        return max((bucket.count for bucket in self.timeline), default=0)

    @property
    def complete(self) -> bool:
        return self.examined >= self.total

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "total": self.total,
            "examined": self.examined,
            "older": self.older,
            "filter": self.filters.as_query(),
            "matched": self.matched,
            "complete": self.complete,
            "unreadable": self.unreadable,
            "first_failed": self.first_failed.isoformat() if self.first_failed else None,
            "last_failed": self.last_failed.isoformat() if self.last_failed else None,
            **{facet.name: facet.as_json() for facet in self.facets},
            "timeline": {
                "bucket_seconds": self.bucket_seconds,
                "buckets": [bucket.as_json() for bucket in self.timeline],
                "earlier": self.earlier,
            },
        }


@dataclass(frozen=True)
class Failure:
    """What the breakdown reads of one entry (None: the entry does not say)."""

    error_type: str | None
    error: str | None
    camera: str | None
    failed_at: float | None
    readable: bool


FACETS = (  # name, label, the filter parameter that finds exactly a value's entries
    ("error_type", "Error type", "type"),
    ("error", "Error", "error"),
    ("camera", "Camera", "camera"),
)


def of_list(
    client: redis.Redis,
    key: str,
    filters: Filters | None = None,
    older: str = "",
    max_examined: int = search.MAX_EXAMINED,
) -> Breakdown:
    """The newest entries of a list DLQ, or with ``older`` (how many newest ones to pass over, as a
    breakdown's ``older`` gives it) the ones before them; with ``filters``, only those it picks are
    counted (and each value's filter is that filter narrowed to the value)."""
    filters, skip = filters or Filters(), number(older, 0)
    seen = {"total": 0}  # search.read sets it as it reads
    entries = search.read(client, key, start=skip, newest_first=True, max_examined=max_examined, seen=seen)
    failures = (_list_failure(entry) if filters.select(entry) else None for entry in entries)
    found = _tally(key, failures, lambda: seen["total"], filters)
    end, before = skip + found.examined, f"{key} before its newest {skip:,} ({found.total:,} in all)"
    if not skip:
        window = _newest(found)
    elif found.examined:
        window = f"the {found.examined:,} entries of {before}"
    else:
        window = f"no entries of {before}"
    return replace(found, window=window, older=str(end) if end < found.total else None, newest=not skip)


def of_stream(
    client: redis.Redis,
    key: str,
    filters: Filters | None = None,
    older: str = "",
    max_examined: int = search.MAX_EXAMINED,
) -> Breakdown:
    """As ``of_list``, for a stream DLQ: ``older`` is the entry id to read back from."""
    filters = filters or Filters()
    after = older if streams.is_entry_id(older) else "-"
    total, seen = streams.length(client, key), {"last": None, "end": False}
    entries = streams.scan(client, key, after=after, newest_first=True, max_examined=max_examined, seen=seen)
    failures = (_stream_failure(entry) if filters.select(entry) else None for entry in entries)
    found = _tally(key, failures, lambda: total, filters, labels={"error": "Reason (dlq_reason)"})
    more = not seen["end"] and found.examined >= max_examined and seen["last"] is not None
    if after == "-":
        window = _newest(found)
    else:
        window = f"the {found.examined:,} entries of {key} before entry {after} ({total:,} in all)"
    return replace(found, window=window, older=str(seen["last"]) if more else None, newest=after == "-")


HEADLINE_EXAMINED = 500  # entries the DLQ page's headline reads: what is failing right now
HEADLINE_SECONDS = 600  # kept while the DLQ's length and newest entry stay as they were


@dataclass(frozen=True)
class Headline:
    """The item browser's one line about a DLQ: its newest entries' most common error."""

    examined: int
    total: int
    top: Value  # the error (a stream DLQ: the reason), its count and the filter that lists them
    distinct: int  # different errors among the entries examined
    noun: str  # "error" or "reason"

    @property
    def percent(self) -> int:
        return round(100 * self.top.count / self.examined)

    @property
    def scope(self) -> str:
        if self.examined == 1:
            return "The only entry"
        if self.examined >= self.total:
            return f"Of all {self.examined:,} entries"
        return f"Of the newest {self.examined:,}"


def headline(client: redis.Redis, key: str, *, stream: bool) -> Headline | None:
    """The newest ``HEADLINE_EXAMINED`` entries' most common error, or None when none says one
    (or the DLQ is empty). Cached until the DLQ's length or newest entry changes, so a page view
    costs two small reads, not a breakdown."""
    signature = _signature(client, key, stream)
    if signature is None:
        return None
    cache_key = headline_cache_key(key)
    cached = cache.get(cache_key)
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == signature:
        return cached[1] if isinstance(cached[1], Headline) else None
    read = of_stream if stream else of_list
    found = read(client, key, max_examined=HEADLINE_EXAMINED)
    errors = next(facet for facet in found.facets if facet.name == "error")
    line = None
    if errors.top and found.examined:
        noun = "reason" if stream else "error"
        line = Headline(found.examined, found.total, errors.top[0], errors.distinct, noun)
    cache.set(cache_key, (signature, line), HEADLINE_SECONDS)
    return line


def headline_cache_key(key: str) -> str:
    return f"dlq:headline:{dlq.fingerprint(key.encode())}"


def _signature(client: redis.Redis, key: str, stream: bool) -> tuple[int, str] | None:
    """The DLQ's length and newest entry (its id, or its bytes' fingerprint); None when empty."""
    if not stream:
        page = dlq.page(client, key, 0, 1, newest_first=True)
        return (page.total, page.entries[0].id) if page.total and page.entries else None
    (found,) = streams.ends(client, [key], last=True)
    if isinstance(found, redis.ResponseError):
        raise found
    length, newest = found
    return (length, newest) if length and newest else None


def bad_older(older: str, stream: bool) -> str:
    """Why ``older`` cannot say where to read back from ("" when it can, or is not given)."""
    if not older or (streams.is_entry_id(older) if stream else number(older, -1) >= 0):
        return ""
    what = "an entry id like 1700000000000-0" if stream else "a number of entries"
    return f"'older' must be {what}, as the 'Older entries' link gives it, not {older[:40]!r}."


def _newest(found: Breakdown) -> str:
    if found.complete:
        some = "the only entry" if found.examined == 1 else f"all {found.examined:,} entries"
    else:
        some = f"the newest {found.examined:,} of {found.total:,} entries"
    return f"{some} of {found.key}"


def _list_failure(entry: dlq.Entry) -> Failure:
    job = entry.job or {}
    return Failure(
        error_type=dlq.as_text(entry.field("error_type")),
        error=dlq.first_line(entry.field("error")),
        camera=dlq.as_text(job.get("camera_id")),
        failed_at=dlq.parse_time(entry.field("last_failed_at")),
        readable=entry.decoded.is_structured and isinstance(entry.payload, dict),
    )


def _stream_failure(entry: streams.StreamEntry) -> Failure:
    """A stream DLQ entry has a reason (``dlq_reason``) where a list entry has an error and its type."""
    return Failure(
        error_type=None,
        error=dlq.first_line(entry.fields.get("dlq_reason")),
        camera=dlq.as_text(entry.fields.get("camera_id")),
        failed_at=entry.failed_at,
        readable=True,
    )


def _tally(
    key: str,
    failures: Iterable[Failure | None],
    total: Callable[[], int],
    filters: Filters,
    labels: dict[str, str] | None = None,
) -> Breakdown:
    """Count the failures (None: an entry read that the filter does not pick); ``total`` is asked once
    they are all read (the list's length as last seen)."""
    counts: dict[str, Counter[str]] = {name: Counter() for name, *_ in FACETS}
    missing: Counter[str] = Counter()
    examined = matched = unreadable = 0
    times: list[float] = []
    for failure in failures:
        examined += 1
        if failure is None:
            continue
        matched += 1
        unreadable += not failure.readable
        if failure.failed_at is not None:
            times.append(failure.failed_at)
        for name, *_ in FACETS:
            value = getattr(failure, name)
            if value is None:
                missing[name] += 1
            else:
                counts[name][value] += 1
    facets = []
    for name, label, param in FACETS:
        label = (labels or {}).get(name, label)
        top = counts[name].most_common(TOP)
        values = [Value(text, count, _filter(filters, param, text)) for text, count in top]
        listed = sum(count for _, count in top)
        others = matched - missing[name] - listed
        facets.append(Facet(name, label, values, others, len(counts[name]), missing[name]))
    first = dlq.utc(min(times)) if times else None
    last = dlq.utc(max(times)) if times else None
    buckets, earlier = timeline(times, filters)
    return Breakdown(
        key, total(), examined, matched, filters, facets, unreadable, first, last, buckets, earlier
    )


def timeline(times: list[float], within: Filters | None = None) -> tuple[list[Bucket], int]:
    """Failures per stretch, up to the newest failure, and how many failed before the first one.

    The stretch is the shortest of ``STRETCHES`` that covers the newest 99 % of the times in
    ``MAX_BUCKETS`` (so one entry with a time years off cannot flatten the rest into one bar).
    """
    if not times:
        return [], 0
    ordered = sorted(times)
    low, last = ordered[len(ordered) // 100], ordered[-1]
    seconds = next((s for s in STRETCHES if (last - low) / s < MAX_BUCKETS), STRETCHES[-1])
    counts = Counter(int(moment // seconds) for moment in ordered)
    newest = int(last // seconds)
    oldest = max(int(ordered[0] // seconds), newest - MAX_BUCKETS + 1)  # from the first, if it fits
    buckets = []
    for index in range(oldest, newest + 1):
        start = dlq.utc(index * seconds)
        if start is not None:
            buckets.append(Bucket(start, seconds, counts[index], within or Filters()))
    return buckets, sum(count for index, count in counts.items() if index < oldest)


def _filter(within: Filters, param: str, text: str) -> dict[str, str] | None:
    """The breakdown's own filter narrowed to one value, or None if no filter can pick it."""
    if len(text) > FILTER_CHARS[param] or text != text.strip():
        return None  # the filter would not find it: too long for it, or it strips the spaces
    return within.as_query() | {param: text}
