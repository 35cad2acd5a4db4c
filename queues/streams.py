"""Streams and stream DLQs: pages of entries by id; retry, delete and restore in Lua.

An entry is named by its id. Stream entries never change once added, so the fields read by id
are exactly the fields that a later XDEL by that id removes: archiving them first is exact.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from queues import dlq
from queues.conf import conf
from queues.scripts import ABORTED, RECEIPT_SECONDS, new_token, receipt_key, script, status_text
from queues.search import MAX_EXAMINED, walk

DLQ_FIELDS = ("original_message_id", "dlq_reason", "dlq_timestamp", "delivery_count")
ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")  # a stream entry id, "<ms>-<seq>"
MAX_ID_PART = 2**64 - 1
# Ids per Lua call: a stream entry costs Redis about 10 us (XRANGE, XADD, XDEL) where a list entry
# costs 1.5, so 125 keep a call near 1.3 ms, 2.6 at worst (bench/streams.py; 250 reached 5.5).
BATCH_SIZE = 125
KEPT_COUNT_LIMIT = 1000  # entries left behind a sweep's position that are counted exactly
STOP_STATUSES = ("full", "aborted")
SEARCH_CHUNK = 500  # entries per XRANGE of a filtered read (which looks at MAX_EXAMINED at most)
ARCHIVE_FORMAT = 1

Fields = tuple[tuple[bytes, bytes], ...]


def as_text(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def is_entry_id(text: str) -> bool:
    """``<ms>-<seq>`` with both parts in Redis's 64-bit range (anything else makes XDEL raise)."""
    if not ENTRY_ID.fullmatch(text):
        return False
    ms, seq = text.split("-")
    return int(ms) <= MAX_ID_PART and int(seq) <= MAX_ID_PART


def entry_ids(values: Sequence[str]) -> list[str]:
    """The valid entry ids among ``values``, de-duplicated, in order."""
    return list(dict.fromkeys(v.strip() for v in values if is_entry_id(v.strip())))


@dataclass(frozen=True)
class StreamEntry:
    id: str
    fields: dict[str, str]

    @property
    def job(self) -> dict[str, str]:
        return {k: v for k, v in self.fields.items() if k not in DLQ_FIELDS}

    @property
    def added_at(self) -> float:
        """When Redis added the entry (epoch seconds): the milliseconds part of its id."""
        return int(self.id.split("-", 1)[0]) / 1000

    @property
    def added(self) -> datetime | None:
        """``added_at`` as a time, None for an id beyond year 9999 (Redis takes any 64-bit id)."""
        return dlq.utc(self.added_at)

    @property
    def failed_at(self) -> float:
        """A DLQ entry's ``dlq_timestamp`` (epoch seconds, as HSI writes it), else when it was added."""
        try:
            seconds = float(self.fields.get("dlq_timestamp", ""))
        except ValueError:
            return self.added_at
        return seconds if dlq.utc(seconds) is not None else self.added_at

    @property
    def failed(self) -> datetime | None:
        return dlq.utc(self.failed_at)

    def matches(self, criteria: dlq.Criteria) -> bool:
        """The DLQ filters on a stream DLQ entry: reason text, camera, failure time window, and the
        reason's first line exactly (``error``). It has no error type, so that filter finds none."""
        if criteria.error_type:
            return False
        if criteria.text and criteria.text.lower() not in self.fields.get("dlq_reason", "").lower():
            return False
        if criteria.error and dlq.first_line(self.fields.get("dlq_reason")) != criteria.error:
            return False
        if criteria.camera and self.fields.get("camera_id") != criteria.camera:
            return False
        since, until = criteria.since, criteria.until
        failed = self.failed_at
        return not ((since is not None and failed < since) or (until is not None and failed > until))


@dataclass(frozen=True)
class Stored:
    """A stream entry as Redis holds it: its id and the exact bytes of its fields, in order."""

    id: str
    fields: Fields

    @classmethod
    def of(cls, entry_id: bytes | str, fields: Mapping[Any, Any]) -> Stored:
        return cls(as_text(entry_id), tuple((dlq.as_bytes(k), dlq.as_bytes(v)) for k, v in fields.items()))

    @property
    def size(self) -> int:
        return sum(len(name) + len(value) for name, value in self.fields)

    @property
    def job_fields(self) -> Fields:
        """The original fields: without those the DLQ added (what a retry re-adds to the stream)."""
        return tuple((k, v) for k, v in self.fields if as_text(k) not in DLQ_FIELDS)

    @property
    def text(self) -> StreamEntry:
        return StreamEntry(self.id, {as_text(k): as_text(v) for k, v in self.fields})

    def archived(self) -> bytes:
        """What an archive row keeps: ``{"id", "fields"}`` as JSON, the fields as text when every
        name and value is UTF-8, else all of them base64 with ``"encoding": "base64"``."""
        record: dict[str, Any] = {"format": ARCHIVE_FORMAT, "id": self.id}
        try:
            record["fields"] = {k.decode("utf-8"): v.decode("utf-8") for k, v in self.fields}
        except UnicodeDecodeError:
            record["encoding"] = "base64"
            record["fields"] = {_b64(k): _b64(v) for k, v in self.fields}
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_archive(cls, raw: bytes) -> Stored:
        """The entry an archive row holds; ``ValueError`` when the row is not one."""
        try:
            record = json.loads(raw)
            entry_id, fields = record["id"], record["fields"]
            if not (isinstance(entry_id, str) and isinstance(fields, dict)):
                raise TypeError
            if record.get("encoding") == "base64":
                pairs = tuple((base64.b64decode(k), base64.b64decode(v)) for k, v in fields.items())
            else:
                pairs = tuple((str(k).encode(), str(v).encode()) for k, v in fields.items())
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError("not an archived stream entry") from exc
        return cls(entry_id, pairs)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


@dataclass(frozen=True)
class StreamPage:
    key: str
    total: int
    entries: list[StreamEntry]
    next_id: str | None


def page(
    client: redis.Redis, key: str, after: str = "-", limit: int = 50, newest_first: bool = False
) -> StreamPage:
    """Entries after (or, newest first, before) an id: XRANGE with an exclusive start, bounded."""
    limit = max(1, min(limit, 100))
    pipe = client.pipeline(transaction=False)
    pipe.xlen(key)
    if newest_first:
        pipe.xrevrange(key, max="+" if after == "-" else f"({after}", min="-", count=limit)
    else:
        pipe.xrange(key, min="-" if after == "-" else f"({after}", max="+", count=limit)
    total, rows = pipe.execute()
    entries = [StreamEntry(as_text(i), {as_text(k): as_text(v) for k, v in f.items()}) for i, f in rows]
    next_id = entries[-1].id if len(entries) == limit else None
    return StreamPage(key, int(total), entries, next_id)


@dataclass(frozen=True)
class StreamScan:
    """A bounded filtered read of a stream: the matches among ``examined`` entries of ``total``.

    ``last_id`` is the last entry examined (a follow-up search continues after it); ``complete``
    when the search reached the stream's end.
    """

    entries: list[StreamEntry]
    matched: int
    examined: int
    total: int
    last_id: str | None
    complete: bool


def search(
    client: redis.Redis,
    key: str,
    select: Callable[[StreamEntry], bool],
    *,
    after: str = "-",
    newest_first: bool = False,
    limit: int | None = None,
    max_examined: int = MAX_EXAMINED,
) -> StreamScan:
    """Examine at most ``max_examined`` entries after (newest first: before) id ``after``.

    With ``limit`` it stops after that many matches (the item browser); without, it only counts.
    """
    seen: dict[str, Any] = {"last": None, "end": False}  # scan sets them as it reads
    entries = scan(client, key, after=after, newest_first=newest_first, max_examined=max_examined, seen=seen)
    total = length(client, key)
    walked = walk(entries, select, limit)
    return StreamScan(walked.found, walked.matched, walked.examined, total, seen["last"], seen["end"])


def scan(
    client: redis.Redis,
    key: str,
    *,
    after: str = "-",
    newest_first: bool = False,
    max_examined: int = MAX_EXAMINED,
    seen: dict[str, Any] | None = None,
) -> Iterator[StreamEntry]:
    """At most ``max_examined`` entries after (newest first: before) id ``after``, ``SEARCH_CHUNK`` per
    read, as they are consumed; ``seen`` says the last id given and whether the stream's end (newest
    first: its start) came with it."""
    seen = {} if seen is None else seen
    seen.update(last=None, end=False)
    position, examined = (None if after == "-" else after), 0
    while examined < max_examined:
        count = min(SEARCH_CHUNK, max_examined - examined)
        start = ("+" if newest_first else "-") if position is None else f"({position}"
        rows: Any = (
            client.xrevrange(key, max=start, min="-", count=count)
            if newest_first
            else client.xrange(key, min=start, max="+", count=count)
        )
        examined += len(rows)
        short = len(rows) < count  # this read reached the stream's end (newest first: its start)
        for n, (entry_id, fields) in enumerate(rows, 1):
            entry = Stored.of(entry_id, fields).text
            position = seen["last"] = entry.id
            seen["end"] = short and n == len(rows)
            yield entry
        if short:
            seen["end"] = True
            return


def read(client: redis.Redis, key: str, ids: Sequence[str]) -> list[Stored]:
    """The entries with these ids that are still in the stream, in the order asked (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(key, min=entry_id, max=entry_id, count=1)
    return [Stored.of(*rows[0]) for rows in pipe.execute() if rows]


def entries_after(client: redis.Redis, key: str, after: str, count: int) -> list[Stored]:
    rows: Any = client.xrange(key, min="-" if after == "-" else f"({after}", max="+", count=count)
    return [Stored.of(entry_id, fields) for entry_id, fields in rows]


def length(client: redis.Redis, key: str) -> int:
    return int(client.xlen(key))


@dataclass
class StreamOutcome(dlq.Outcome):
    """A stream action's outcome: ``acted`` are the entries retried or deleted, ``statuses`` one
    script status per entry handed to the action, in order."""

    acted: list[Stored] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def tally(self, status: str, entry: Stored) -> None:
        self.count(status)
        self.statuses.append(status)
        if status == "ok":
            self.acted.append(entry)


def merge(total: StreamOutcome, part: StreamOutcome) -> None:
    dlq.merge(total, part)
    total.acted.extend(part.acted)
    total.statuses.extend(part.statuses)


def _texts(statuses: Any) -> list[str]:
    return [status_text(status) for status in statuses]


def retry_entries(client: redis.Redis, key: str, entries: Sequence[Stored]) -> StreamOutcome:
    """Move entries back to their stream with their original fields, ``BATCH_SIZE`` ids per call.

    The script checks each id is still there (XRANGE id id) in the same atomic step as the XADD
    and XDEL, so an entry is never retried twice (two tabs, two operators, a replayed request).
    """
    target = dlq.target_of(key)
    outcome = StreamOutcome(key, target)
    for start in range(0, len(entries), BATCH_SIZE):
        chunk = entries[start : start + BATCH_SIZE]
        ids = [entry.id for entry in chunk]
        statuses = script("stream_retry").call(client, [key, target], [conf("QUEUE_MAX_SIZE"), *ids])
        for entry, status in zip(chunk, _texts(statuses), strict=True):
            outcome.tally(status, entry)
        if outcome.full:
            break
    return outcome


def retry(client: redis.Redis, key: str, ids: Sequence[str]) -> StreamOutcome:
    """Retry stream DLQ entries by id; ids no longer there count as skipped."""
    found = read(client, key, ids) if ids else []
    outcome = retry_entries(client, key, found)
    for _ in range(len(ids) - len(found)):
        outcome.count("missing")
    return outcome


def delete_entries(
    client: redis.Redis, key: str, entries: Sequence[Stored], token: str | None = None
) -> StreamOutcome:
    """XDEL the entries by id in one call named by ``token`` (``queues.archive`` archives them first)."""
    outcome = StreamOutcome(key, None)
    if not entries:
        return outcome
    if len(entries) > BATCH_SIZE:
        raise ValueError(f"at most {BATCH_SIZE} entries per call")
    keys_ = [key, receipt_key(token or new_token())]
    statuses = _texts(
        script("stream_delete").call(client, keys_, [RECEIPT_SECONDS, *[e.id for e in entries]])
    )
    if statuses == [ABORTED]:
        statuses = [ABORTED] * len(entries)
    for entry, status in zip(entries, statuses, strict=True):
        outcome.tally(status, entry)
    return outcome


def push_entries(
    client: redis.Redis, target: str, entries: Sequence[Fields], max_len: int = 0, token: str | None = None
) -> int:
    """XADD entries (their fields) while the stream has room; how many were added (-1: aborted)."""
    if not entries:
        return 0
    args: list[bytes | int] = [max_len, RECEIPT_SECONDS]
    for fields in entries:
        args.append(len(fields))
        for name, value in fields:
            args += [name, value]
    keys_ = [target, receipt_key(token or new_token())]
    return int(script("stream_push").call(client, keys_, args))


Action = Callable[[redis.Redis, str, Sequence[Stored]], StreamOutcome]


def sweep(
    client: redis.Redis,
    key: str,
    action: Action,
    *,
    budget_seconds: float = 5.0,
    after: str = "-",
    select: Callable[[StreamEntry], bool] | None = None,
    kept_before: int | None = None,
) -> tuple[StreamOutcome, str, int]:
    """Apply ``action`` to the entries after id ``after`` (those ``select`` picks, if given),
    ``BATCH_SIZE`` at a time, within a budget.

    Returns the outcome, the position (the last id dealt with: a follow-up call continues after
    it) and how many entries are still in the stream at or before it (left there: not picked, or
    with no original fields to re-add). ``remaining`` counts the entries after the position. When
    the target fills up (or a call was fenced off) the position stops before that entry.

    ``kept_before`` (the previous call's count, 0 from the start) makes the count this call's
    own tally; without it the entries at or before the position are counted in Redis, exactly up
    to ``KEPT_COUNT_LIMIT`` (a filter leaves many more behind).
    """
    deadline = time.monotonic() + budget_seconds
    outcome = StreamOutcome(key, None)
    position, exhausted, passed = after, False, 0
    while True:  # at least one batch per call, so every call makes progress
        batch = entries_after(client, key, position, BATCH_SIZE)
        if not batch:
            exhausted = True
            break
        chosen = batch if select is None else [entry for entry in batch if select(entry.text)]
        part = action(client, key, chosen)
        merge(outcome, part)
        stop = next((i for i, s in enumerate(part.statuses) if s in STOP_STATUSES), None)
        gone = sum(s in ("ok", "missing") for s in part.statuses[:stop])  # no longer in the stream
        if stop is not None:
            at = next(i for i, entry in enumerate(batch) if entry.id == chosen[stop].id)
            position = batch[at - 1].id if at else position
            passed += at - gone
            outcome.unmatched += at - stop  # of the entries before the stop, those not chosen
            break
        position = batch[-1].id
        passed += len(batch) - gone
        outcome.unmatched += len(batch) - len(chosen)
        if time.monotonic() >= deadline:
            break
    if kept_before is None:
        kept, total = _kept(client, key, position)
    else:
        kept, total = kept_before + passed, length(client, key)
    outcome.remaining = 0 if exhausted else max(total - kept, 0)
    if not outcome.remaining and not exhausted and entries_after(client, key, position, 1):
        outcome.remaining = 1  # others removed entries left behind, so the count fell short: go on
    return outcome, position, kept


def _kept(client: redis.Redis, key: str, position: str) -> tuple[int, int]:
    """Entries at or before ``position`` (exact up to ``KEPT_COUNT_LIMIT``) and the stream's length."""
    pipe = client.pipeline(transaction=False)
    pipe.xlen(key)
    if position != "-":
        pipe.xrange(key, min="-", max=position, count=KEPT_COUNT_LIMIT)
    replies = pipe.execute()
    return (len(replies[1]) if position != "-" else 0), int(replies[0])


def as_json(entry: StreamEntry) -> dict[str, Any]:
    return {"id": entry.id, "fields": entry.fields}
