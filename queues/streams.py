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
from queues.scripts import (
    ABORTED,
    READ_BUDGET,
    READ_WHOLE,
    RECEIPT_SECONDS,
    new_token,
    receipt_key,
    script,
    status_text,
)
from queues.search import MAX_EXAMINED, walk

DLQ_FIELDS = ("original_message_id", "dlq_reason", "dlq_timestamp", "delivery_count")
ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")  # a stream entry id, "<ms>-<seq>"
MAX_ID_PART = 2**64 - 1
# Ids per Lua call: a stream entry costs Redis about 10 us (XRANGE, XADD, XDEL) where a list entry
# costs 1.5, so 125 keep a call near 1.3 ms, 2.6 at worst (bench/streams.py; 250 reached 5.5).
BATCH_SIZE = 125
KEPT_COUNT_LIMIT = 1000  # entries left behind a sweep's position that are counted exactly
STOP_STATUSES = ("full", "aborted")
# Entries per read of a filtered read (which looks at MAX_EXAMINED at most): read into a script
# (stream_peek.lua), each of HSI's entries costs Redis about 12 us, so 250 keep a call near 3 ms.
SEARCH_CHUNK = 250
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
    cut: dict[str, int] = field(default_factory=dict)  # values read only in part: their whole size

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
    """A stream entry as Redis holds it: its id and the exact bytes of its fields, in order.

    An entry a page read (``peek``) may hold only the first ``READ_WHOLE`` bytes of a larger value:
    ``cut`` names those values with their whole size. Such an entry is for showing, never for acting on.
    """

    id: str
    fields: Fields
    cut: tuple[tuple[bytes, int], ...] = ()

    @classmethod
    def of(cls, entry_id: bytes | str, fields: Mapping[Any, Any]) -> Stored:
        return cls(as_text(entry_id), tuple((dlq.as_bytes(k), dlq.as_bytes(v)) for k, v in fields.items()))

    @classmethod
    def peeked(cls, reply: Sequence[Any]) -> Stored:
        """An entry as ``stream_peek.lua`` sends it (from the console's client, which returns bytes):
        ``[id, [name, value, ...]]``, a value it cut as ``[size, head]``."""
        entry_id, flat = reply
        names, values = flat[::2], flat[1::2]
        if all(type(value) is bytes for value in values):  # nothing cut: every entry of HSI's
            return cls(entry_id.decode(), tuple(zip(names, values, strict=True)))
        cut = tuple(
            (name, int(value[0])) for name, value in zip(names, values, strict=True) if type(value) is list
        )
        heads = (value[1] if type(value) is list else value for value in values)
        return cls(entry_id.decode(), tuple(zip(names, heads, strict=True)), cut)

    def light(self) -> Stored:
        """The entry as a page holds it, values over ``READ_WHOLE`` bytes cut (what a run keeps of it
        for the audit)."""
        if all(len(value) <= READ_WHOLE for _, value in self.fields):
            return self
        cut = tuple((name, len(value)) for name, value in self.fields if len(value) > READ_WHOLE)
        return Stored(
            self.id, tuple((name, value[:READ_WHOLE]) for name, value in self.fields), self.cut + cut
        )

    @property
    def size(self) -> int:
        """Its names and values in bytes (a cut value counted whole)."""
        read = sum(len(name) + len(value) for name, value in self.fields)
        sizes = dict(self.cut)
        return read + sum(size - len(value) for name, value in self.fields if (size := sizes.get(name)))

    @property
    def job_fields(self) -> Fields:
        """The original fields: without those the DLQ added (what a retry re-adds to the stream)."""
        return tuple((k, v) for k, v in self.fields if as_text(k) not in DLQ_FIELDS)

    @property
    def text(self) -> StreamEntry:
        cut = {as_text(name): size for name, size in self.cut}
        fields = {
            k.decode("utf-8", "backslashreplace"): v.decode("utf-8", "backslashreplace")
            for k, v in self.fields
        }
        return StreamEntry(self.id, fields, cut)

    def archived(self) -> bytes:
        """What an archive row keeps: ``{"id", "fields"}`` as JSON, the fields as text when every
        name and value is UTF-8, else all of them base64 with ``"encoding": "base64"``."""
        if self.cut:
            raise ValueError(f"entry {self.id} was read only in part: it cannot be archived")
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


# A stream this small is read with a plain XRANGE instead of through stream_peek.lua, which costs
# Redis about 12 us an entry against 2.4 (bench/streams.py): whatever a read of it asks for stays
# under READ_BUDGET (a value's bytes never exceed its node's; names and numbers read back may
# double a small entry). Asking MEMORY USAGE costs 20 us at 10,000 entries, 2 ms at a million,
# hence the limit on entries too. HSI's streams (MAXLEN 10,000, about 170 bytes an entry) are read so.
# (An entry added between the check and the XRANGE is read as it is: one producer's moment of work.)
PLAIN_ENTRIES = 50_000
PLAIN_BYTES = READ_BUDGET // 4
PLAIN = -1  # stream_peek.lua's `reached` for a stream to read plainly


@dataclass(frozen=True)
class Peeked:
    """What ``stream_peek.lua`` read: the stream's length, the entries in the order read, and how
    far it got: for a range 1 when it got to its end (0: the budget or the count stopped it), for
    ids how many of them it looked at."""

    total: int
    entries: list[Stored]
    reached: int

    @property
    def done(self) -> bool:
        return self.reached == 1


def _peek(client: redis.Redis, key: str, cut: bool, args: Sequence[Any]) -> Peeked:
    whole = READ_WHOLE if cut else 0
    reply = script("stream_peek").call_ro(client, [key], [whole, READ_BUDGET, *args])
    return Peeked(int(reply[0]), [Stored.peeked(row) for row in reply[2:]], int(reply[1]))


def ends(
    client: redis.Redis, keys_: Sequence[str], *, last: bool = False
) -> list[tuple[int, str | None] | redis.ResponseError]:
    """Each stream's length and the id of its first entry (``last``: its newest; None when empty),
    or Redis's error for a key of another type; read in one call that sends no entry's fields."""
    if not keys_:
        return []
    replies = script("stream_peek").call_ro(client, keys_, [0, 0, "ends", int(last)])
    return [
        reply
        if isinstance(reply, redis.ResponseError)
        else (int(reply[0]), as_text(reply[1]) if reply[1] else None)
        for reply in replies
    ]


def peek(
    client: redis.Redis,
    key: str,
    count: int,
    *,
    after: str = "-",
    newest_first: bool = False,
    cut: bool = True,
) -> Peeked:
    """Up to ``count`` entries after (newest first: before) id ``after``, read in one call that stops
    once it has read ``READ_BUDGET`` bytes (after one entry at least), so a read never costs Redis,
    nor carries, more than its share whatever the entries weigh. With ``cut``, values over
    ``READ_WHOLE`` bytes come as their head (``Stored.cut``); without, whole (what an action needs)."""
    bound = _beyond(after, newest_first)
    if bound is None:
        return Peeked(length(client, key), [], 1)
    low, high = ("-", bound) if newest_first else (bound, "+")
    read = _peek(client, key, cut, ["range", low, high, count, int(newest_first), PLAIN_ENTRIES, PLAIN_BYTES])
    if read.reached != PLAIN:
        return read
    rows: Any = (
        client.xrevrange(key, high, low, count=count)
        if newest_first
        else client.xrange(key, low, high, count=count)
    )
    entries = [Stored(entry_id.decode(), tuple(fields.items())) for entry_id, fields in rows]
    return Peeked(
        read.total, [entry.light() for entry in entries] if cut else entries, int(len(rows) < count)
    )


def _beyond(after: str, newest_first: bool = False) -> str | None:
    """XRANGE's bound for the entries after (newest first: before) id ``after`` ('-': from the
    start, or the end); None when none can be there: Redis refuses an exclusive bound past the
    largest id or before 0-0 rather than answering with nothing."""
    if after == "-":
        return "+" if newest_first else "-"
    edge = 0 if newest_first else MAX_ID_PART
    if all(int(part) == edge for part in after.split("-")):
        return None
    return f"({after}"


@dataclass(frozen=True)
class StreamPage:
    key: str
    total: int
    entries: list[StreamEntry]
    next_id: str | None
    short: bool = False  # the read stopped at its byte budget before ``limit`` entries


def page(
    client: redis.Redis, key: str, after: str = "-", limit: int = 50, newest_first: bool = False
) -> StreamPage:
    """Entries after (or, newest first, before) an id, bounded in number and in bytes (``peek``)."""
    limit = max(1, min(limit, 100))
    read = peek(client, key, limit, after=after, newest_first=newest_first)
    entries = [entry.text for entry in read.entries]
    next_id = entries[-1].id if entries and not read.done else None
    return StreamPage(key, read.total, entries, next_id, short=not read.done and len(entries) < limit)


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
    position, examined = after, 0
    while examined < max_examined:
        read = peek(
            client, key, min(SEARCH_CHUNK, max_examined - examined), after=position, newest_first=newest_first
        )
        examined += len(read.entries)
        for n, stored in enumerate(read.entries, 1):
            entry = stored.text
            position = seen["last"] = entry.id
            seen["end"] = read.done and n == len(read.entries)
            yield entry
        if read.done:
            seen["end"] = True
            return


def read_groups(
    client: redis.Redis, key: str, ids: Sequence[str], *, cut: bool = False
) -> Iterator[tuple[list[Stored], int]]:
    """The entries with these ids that are still in the stream, in the order asked, one call at a
    time: a call stops once it has read ``READ_BUDGET`` bytes (after one entry at least), and each
    gives what it found and how many of the ids it looked at. Whole (what an action archives), or
    with ``cut`` as a page shows them."""
    left = list(ids)
    while left:
        read = _peek(client, key, cut, ["ids", *left])
        looked = max(read.reached, 1)
        yield read.entries, looked
        left = left[looked:]


def read(client: redis.Redis, key: str, ids: Sequence[str]) -> list[Stored]:
    """``read_groups``, whole, all at once."""
    return [entry for found, _ in read_groups(client, key, ids) for entry in found]


def read_shown(client: redis.Redis, key: str, ids: Sequence[str]) -> list[Stored]:
    """``read_groups`` for a page: values over ``READ_WHOLE`` bytes cut."""
    return [entry for found, _ in read_groups(client, key, ids, cut=True) for entry in found]


def entries_after(client: redis.Redis, key: str, after: str, count: int) -> list[Stored]:
    """Up to ``count`` entries after id ``after``, whole; fewer once ``READ_BUDGET`` bytes are read."""
    return peek(client, key, count, after=after, cut=False).entries


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
    """Add one batch's outcome to a running total, which keeps the entries acted on cut (``light``)."""
    dlq.merge(total, part)
    total.acted.extend(entry.light() for entry in part.acted)
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


SAMPLE = 5  # retried entries a run sends back, cut (the audit's snapshot keeps the first five)


def retry_run(client: redis.Redis, key: str, after: str, count: int) -> tuple[list[Stored], StreamOutcome]:
    """Retry up to ``count`` entries after id ``after`` in one call that reads them itself
    (``stream_retry_run.lua``; fewer once ``READ_BUDGET`` bytes are read, and none past the first
    the source has no room for). Returns the entries read, in order (the first ``SAMPLE`` retried
    with their fields, cut; the others by id only), and the outcome."""
    target, start = dlq.target_of(key), _beyond(after)
    if start is None:
        return [], StreamOutcome(key, target)
    args = [conf("QUEUE_MAX_SIZE"), start, count, READ_BUDGET, SAMPLE, READ_WHOLE]
    statuses, samples = script("stream_retry_run").call(client, [key, target], args)
    sampled = {entry.id: entry for entry in map(Stored.peeked, samples)}
    outcome, read = StreamOutcome(key, target), []
    for entry_id, status in zip(statuses[::2], statuses[1::2], strict=True):
        entry = sampled.get(as_text(entry_id)) or Stored(as_text(entry_id), ())
        read.append(entry)
        outcome.tally(status_text(status), entry)
    return read, outcome


def retry(client: redis.Redis, key: str, ids: Sequence[str]) -> StreamOutcome:
    """Retry stream DLQ entries by id, read a few megabytes at a time (``read_groups``); ids no
    longer there count as skipped."""
    outcome = StreamOutcome(key, dlq.target_of(key))
    for found, looked in read_groups(client, key, ids):
        merge(outcome, retry_entries(client, key, found))
        for _ in range(looked - len(found)):
            outcome.count("missing")
        if outcome.full:
            break
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
    ``BATCH_SIZE`` at a time, within a budget. A retry of every entry is read and moved by one
    script call per batch (``retry_run``); otherwise each batch is read here, then acted on.

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
        if action is retry_entries and select is None:  # the script reads what it retries
            batch, part = retry_run(client, key, position, BATCH_SIZE)
            chosen = batch
        else:
            batch = entries_after(client, key, position, BATCH_SIZE)
            chosen = batch if select is None else [entry for entry in batch if select(entry.text)]
            part = action(client, key, chosen) if batch else StreamOutcome(key, None)
        if not batch:
            exhausted = True
            break
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
    """An entry for the API: ``cut`` gives the whole size of each value of which only the first
    ``READ_WHOLE`` bytes were read (and are in ``fields``)."""
    return {"id": entry.id, "fields": entry.fields, "cut": entry.cut}
