"""Queues and DLQs as lists: pages of entries, and retry/delete by exact bytes in Lua batches."""

from __future__ import annotations

import hashlib
import json
import re
import time
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import redis

from queues import keys, scripts
from queues.codec import Decoded, decode, decode_head, encode_payload, encode_text, inflate
from queues.conf import conf
from queues.scripts import READ_BUDGET, READ_TAIL, READ_WHOLE, Move, move_entries, retry_run

BATCH_SIZE = 250  # per Lua call: about 2 ms of Redis time, so no single command blocks for long
SEARCH_WINDOW = 500
SCRIPT_RUN = 32  # entries in a row worth handing back to retry_run.lua's own decoding
MOVED_KEPT = 1000  # moved entries an outcome remembers (for the audit), however many moved
ERROR_CHARS = 120  # an error is known by its first line, cut here (breakdown groups, exact filter)
REQUIRED_FIELDS = (
    "original_job",
    "error",
    "attempt_count",
    "first_failed_at",
    "last_failed_at",
    "queue_name",
)


STATUS_REASONS = {
    "missing": "already gone (retried or deleted by someone else)",
    "aborted": "interrupted by a concurrent clean-up; try again",
    "empty": "no original fields to re-add",
}


class NotRetryable(Exception):
    """An entry that stays in the DLQ, with the reason."""


def as_bytes(value: bytes | str) -> bytes:
    """redis-py's types say ``bytes | str``; the console's client always returns bytes."""
    return value if isinstance(value, bytes) else value.encode()


JOB_HEAD = re.compile(rb'\{[ \t\n\r\f\v]*"original_job"[ \t\n\r\f\v]*:[ \t\n\r\f\v]*(?=\{)')
PRINTABLE = re.compile(rb"[ -~]*")
_JSON = json.JSONDecoder()
_STRING = rb'"[^"\\\x00-\x1f\x7f-\xff]*"'  # printable ASCII, no escapes
_PAIR = (
    _STRING
    + rb": (?:"
    + _STRING
    + rb"|-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null)"
)
# A flat job as json.dumps writes it: valid JSON by construction, which Python's json reads as a
# dict ending where the match ends (integers of 19 digits or more are left to it: it caps digits).
FLAT_JOB = re.compile(rb"\{(?:" + _PAIR + rb"(?:, " + _PAIR + rb")*)?\}")


def job_span(raw: bytes) -> bytes | None:
    """The exact bytes of ``original_job`` when an entry starts with it and ends like an object.

    The rule ``retry_run.lua`` applies in Redis: such a job is retried as HSI's producer wrote it,
    byte for byte. The object must be printable-ASCII JSON, as Python's ``json.dumps`` writes it.
    """
    head = JOB_HEAD.match(raw)
    if head is None or not raw.endswith(b"}"):
        return None
    flat = FLAT_JOB.match(raw, head.end())  # most jobs: a third of the time decoding takes
    return raw[head.end() : flat.end()] if flat is not None else decoded_span(raw, head.end())


def decoded_span(raw: bytes, start: int) -> bytes | None:
    """``job_span`` by decoding the JSON object at ``start``: what it says of any job."""
    try:
        value, end = _JSON.raw_decode(raw.decode("latin-1"), start)
    except (ValueError, RecursionError):
        return None
    span = raw[start:end]
    return span if isinstance(value, dict) and PRINTABLE.fullmatch(span) else None


def fingerprint(raw: bytes) -> str:
    """A stable id for an entry's exact bytes (identical entries share it, which is harmless).

    Of an entry over ``READ_WHOLE`` bytes, from what a page reads of it (``Cut``): its size, its
    head and its end. Actions still compare the whole bytes before they move anything.
    """
    return _digest(*cut_of(raw)) if len(raw) > READ_WHOLE else _digest(raw)


def cut_of(raw: bytes) -> tuple[bytes, Cut]:
    """What a page reads of an entry over ``READ_WHOLE`` bytes: its head and its ``Cut``."""
    return raw[:READ_WHOLE], Cut(len(raw), raw[-READ_TAIL:])


def _digest(head: bytes, cut: Cut | None = None) -> str:
    digest = hashlib.blake2b(head, digest_size=10)
    if cut is not None:
        digest.update(b"\x00%d\x00" % cut.size)
        digest.update(cut.tail)
    return digest.hexdigest()


@dataclass(frozen=True)
class Cut:
    """An entry too large for a page to read whole: ``Entry.raw`` holds its first ``READ_WHOLE``
    bytes, this its size and last ``READ_TAIL`` bytes."""

    size: int
    tail: bytes


@dataclass(frozen=True)
class Criteria:
    """What a DLQ filter asks of an entry, list or stream (``actions.Filters`` reads it from a query)."""

    text: str = ""  # in the error or its type (a stream entry: its reason), in any case
    camera: str = ""
    since: float | None = None  # failed at or after (epoch seconds)
    until: float | None = None
    error_type: str = ""  # exactly (the breakdown's links; the text filter also finds it inside another)
    error: str = ""  # the error's first line exactly (a stream DLQ: its reason's)


@dataclass(frozen=True)
class Entry:
    key: str
    index: int
    raw: bytes
    cut: Cut | None = None  # read for a page in part: ``raw`` is its head (actions read entries whole)

    @classmethod
    def of(cls, key: str, index: int, raw: bytes) -> Entry:
        return cls(key, index, raw)

    @cached_property
    def decoded(self) -> Decoded:
        """Decoded on first use: retrying HSI's entries needs only ``job_span``."""
        return decode(self.raw) if self.cut is None else decode_head(self.raw, self.cut.size)

    @property
    def id(self) -> str:
        return fingerprint(self.raw) if self.cut is None else _digest(self.raw, self.cut)

    def light(self) -> Entry:
        """The entry as a page holds it, a large one cut (what a run keeps of it for the audit)."""
        if self.cut is not None or len(self.raw) <= READ_WHOLE:
            return self
        return Entry(self.key, self.index, *cut_of(self.raw))

    @property
    def ref(self) -> str:
        """What a form or API client sends back: index hint and fingerprint."""
        return f"{self.index}:{self.id}"

    @property
    def payload(self) -> Any:
        return self.decoded.value if self.decoded.is_structured else None

    @property
    def job(self) -> dict[str, Any] | None:
        """The failed job: ``original_job`` of a retry DLQ entry, decoded ``data`` of an overflow one."""
        value = self.payload
        if not isinstance(value, dict):
            return None
        if self.decoded.kind == "overflow" and self.decoded.inner is not None:
            inner = self.decoded.inner.value
            return inner if isinstance(inner, dict) else None
        job = value.get("original_job")
        return job if isinstance(job, dict) else None

    @property
    def problem(self) -> str:
        """Why the entry cannot be read as a DLQ entry, or ``""``."""
        if self.cut is not None:
            return f"too large to read whole here ({self.decoded.note})"
        if not self.decoded.is_structured:
            return f"not JSON ({self.decoded.kind}{': ' + self.decoded.note if self.decoded.note else ''})"
        if self.decoded.kind == "overflow":
            return "" if self.job is not None else "overflow data is not a JSON object"
        if not isinstance(self.payload, dict):
            return "JSON but not an object"
        missing = [name for name in REQUIRED_FIELDS if name not in self.payload]
        return f"missing {', '.join(missing)}" if missing else ""

    def field(self, name: str) -> Any:
        return self.payload.get(name) if isinstance(self.payload, dict) else None

    def retry_payload(self) -> bytes:
        """The bytes HSI's producer would have pushed for this job (built once per entry).

        Kept as ``cached_property`` would keep it, without the lock Python 3.11 takes on every
        miss: retry-all builds it once for each of its entries, on one thread."""
        built = self.__dict__.get("_retry_payload")
        if built is None:
            try:
                built = self._build_retry_payload()
            except NotRetryable as reason:
                built = reason
            object.__setattr__(self, "_retry_payload", built)  # a cache, not a change of the entry
        if isinstance(built, NotRetryable):
            raise built
        return built

    def _inflated(self) -> bytes | None:
        """The text of a ``Z:`` entry, from its decoding when a filter has decoded it already (one
        decompression per entry, not two)."""
        decoded = self.__dict__.get("decoded")
        if isinstance(decoded, Decoded) and decoded.kind == "zstd" and decoded.inner is not None:
            return decoded.inner.raw
        return inflate(self.raw)

    def _build_retry_payload(self) -> bytes:
        span = job_span(self.raw)
        if span is None and (text := self._inflated()) is not None and (inner := job_span(text)):
            span = encode_text(inner)  # the job as HSI's producer stores it: Z: again when large
        if span is not None:
            return span
        if self.decoded.kind == "overflow":
            data = self.field("data")
            if self.job is None or not isinstance(data, str):
                raise NotRetryable("overflow entry without decodable data")
            return data.encode()
        job = self.job
        if job is None:
            raise NotRetryable(self.problem or "no original_job")
        return encode_payload(job)

    def matches(self, criteria: Criteria) -> bool:
        """The DLQ filters: error text or type, camera, failure time window (epoch seconds), and the
        exact ones the breakdown links with: error type, error (its first line)."""
        text, camera, since, until = criteria.text, criteria.camera, criteria.since, criteria.until
        if text:
            haystack = f"{self.field('error') or ''} {self.field('error_type') or ''}".lower()
            if text.lower() not in haystack:
                return False
        if criteria.error_type and as_text(self.field("error_type")) != criteria.error_type:
            return False
        if criteria.error and first_line(self.field("error")) != criteria.error:
            return False
        if camera and (self.job or {}).get("camera_id") != camera:
            return False
        failed = parse_time(self.field("last_failed_at"))
        if since is not None and (failed is None or failed < since):
            return False
        return not (until is not None and (failed is None or failed > until))


def as_text(value: Any) -> str | None:
    """A field's value as text (a non-string as its repr); None when it is missing or empty."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else repr(value)


def first_line(value: Any) -> str | None:
    """An error's first line, cut at ``ERROR_CHARS``: what the breakdown counts as one error, and what
    the exact error filter compares."""
    text = as_text(value)
    if text is None:
        return None
    return text.strip().split("\n", 1)[0][:ERROR_CHARS].strip() or None


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an ISO string or a number, None unless it is a time ``utc`` can show
    (HSI's JSON may hold anything: 1e300 or NaN are numbers too)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = datetime.fromisoformat(value).timestamp()
        except (ValueError, OverflowError):
            return None
    else:
        return None
    return seconds if utc(seconds) is not None else None


def utc(seconds: float) -> datetime | None:
    """Epoch seconds as a UTC time; None for NaN, infinities and times outside years 1 to 9999."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None


@dataclass(frozen=True)
class Page:
    key: str
    total: int
    offset: int
    limit: int
    newest_first: bool
    entries: list[Entry]

    @property
    def unread(self) -> int:
        """Entries of the page the read stopped before (its budget went on large entries)."""
        return max(min(self.limit, self.total - self.offset), 0) - len(self.entries)


def page(client: redis.Redis, key: str, offset: int = 0, limit: int = 50, newest_first: bool = False) -> Page:
    """One page of a list at any depth, in one script call (``peek``): large entries cut inside
    Redis, and fewer entries than asked (``Page.unread``) once it has read ``READ_BUDGET`` bytes."""
    limit = max(1, min(limit, 100))
    offset = max(0, offset)
    if newest_first:
        start, stop = -(offset + limit), -(offset + 1)
    else:
        start, stop = offset, offset + limit - 1
    stretch = _one(peek(client, [key], start, stop, backward=newest_first))
    return Page(key, stretch.length, offset, limit, newest_first, stretch.entries)


@dataclass(frozen=True)
class Stretch:
    """What ``peek`` read of one list: its length and the entries read, in the order read."""

    length: int
    entries: list[Entry]


def peek(
    client: redis.Redis,
    keys_: Sequence[str],
    start: int,
    stop: int,
    *,
    backward: bool = False,
    cut: bool = True,
) -> list[Stretch | redis.ResponseError]:
    """Each list's length and its entries ``start``..``stop`` (LRANGE's; ``backward`` from ``stop``),
    read by ``peek.lua`` in one call: entries over ``READ_WHOLE`` bytes are cut inside Redis, and the
    call stops once it has read ``READ_BUDGET`` bytes (after one entry at least), so a page never
    carries, nor costs Redis, more than its share whatever the entries weigh. For a key of another
    type, Redis's WRONGTYPE error in its place. Without ``cut``, entries come whole (what an action
    moves), still at most ``READ_BUDGET`` bytes of them past the first."""
    whole = READ_WHOLE if cut else 0
    replies = scripts.peek(client, keys_, start, stop, whole, READ_TAIL, READ_BUDGET, backward)
    found: list[Stretch | redis.ResponseError] = []
    for key, reply in zip(keys_, replies, strict=True):
        if isinstance(reply, redis.ResponseError):
            found.append(_naming(key, reply))
            continue
        first, step = int(reply[1]), -1 if backward else 1
        entries = [Entry(key, first + step * i, *_peeked(item)) for i, item in enumerate(reply[2:])]
        found.append(Stretch(int(reply[0]), entries))
    return found


def _naming(key: str, error: redis.ResponseError) -> redis.ResponseError:
    """A key's error in a script's reply, naming the key as pipelines do."""
    return redis.ResponseError(f"(LLEN {key}) {error}")


def _one(found: list[Stretch | redis.ResponseError]) -> Stretch:
    (stretch,) = found
    if isinstance(stretch, redis.ResponseError):
        raise stretch
    return stretch


def _peeked(item: Any) -> tuple[bytes, Cut | None]:
    if isinstance(item, list):
        size, head, tail = item
        return as_bytes(head), Cut(int(size), as_bytes(tail))
    return as_bytes(item), None


def entry_at(client: redis.Redis, key: str, index: int, fingerprint_: str) -> Entry | None:
    """The entry with this fingerprint, at or near ``index`` (the list may have shifted), as a page
    shows it (a large one cut)."""
    found = resolve(client, key, [(index, fingerprint_)], whole=False)
    return found[0] if found else None


def parse_refs(refs: Iterable[str]) -> list[tuple[int, str]]:
    parsed = []
    for ref in refs:
        hint, _, fp = ref.partition(":")
        if not fp:
            hint, fp = "-1", hint
        parsed.append((int(hint) if hint.lstrip("-").isdigit() else -1, fp))
    return parsed


def resolve(
    client: redis.Redis, key: str, refs: Sequence[tuple[int, str]], *, whole: bool = True
) -> list[Entry]:
    """Find entries by fingerprint near their index hints; bounded reads, missing ones left out.

    The windows are read as pages read them; ``whole`` (what an action needs) then reads each large
    entry found in full, by its index.
    """
    wanted = {fp: hint for hint, fp in refs}
    found: dict[str, Entry] = {}
    windows = sorted({max(hint - SEARCH_WINDOW // 2, 0) for hint in wanted.values() if hint >= 0} | {0})
    for start in windows:
        at, end = start, start + SEARCH_WINDOW - 1
        while at <= end and len(found) < len(wanted):
            read = _one(peek(client, [key], at, end)).entries
            found |= {e.id: e for e in read if e.id in wanted and e.id not in found}
            at = read[-1].index + 1 if read else end + 1
        if len(found) == len(wanted):
            break
    entries = [found[fp] for fp in wanted if fp in found]
    return read_whole(client, key, entries) if whole else entries


def read_whole(
    client: redis.Redis, key: str, entries: Sequence[Entry], removed: Sequence[int] = ()
) -> list[Entry]:
    """The entries with the cut ones read whole, by index (an action reads them just before it moves
    them, a few megabytes at a time: ``runs``). ``removed`` are the hints of
    entries the action removed ahead of them (``_apply``), which moved them up. One that is not
    where it should be (the list moved meanwhile) is looked for near there as a page would, and
    read again at the index found; one not found is left out, as if already gone."""
    cut = [entry for entry in entries if entry.cut is not None]
    if not cut:
        return list(entries)
    read = _read_at(client, key, [(rehint(entry.index, removed), entry) for entry in cut])
    lost = {entry.id: entry for entry in cut if entry.id not in read}
    if lost:
        hints = [(rehint(entry.index, removed), entry.id) for entry in lost.values()]
        moved = resolve(client, key, hints, whole=False)
        read |= _read_at(client, key, [(found.index, lost[found.id]) for found in moved])
    return [
        entry if entry.cut is None else read[entry.id]
        for entry in entries
        if entry.cut is None or entry.id in read
    ]


def _read_at(client: redis.Redis, key: str, places: Sequence[tuple[int, Entry]]) -> dict[str, Entry]:
    """Each entry read whole at the index given with it, by id, keeping the index it was seen at
    (the hint ``_apply`` moves up past removed entries); an index holding another entry gives none."""
    pipe = client.pipeline(transaction=False)
    for index, _ in places:
        pipe.lindex(key, index)
    found = {}
    for (_, entry), raw in zip(places, pipe.execute(), strict=True):
        if raw is not None and fingerprint(whole := as_bytes(raw)) == entry.id:
            found[entry.id] = Entry.of(key, entry.index, whole)
    return found


def runs(entries: Sequence[Entry]) -> Iterator[list[Entry]]:
    """``entries`` in runs of at most ``BATCH_SIZE`` whose whole bytes (a cut entry's whole size)
    stay within ``READ_BUDGET``, one entry at least: what an action holds whole at once."""
    run: list[Entry] = []
    spent = 0
    for entry in entries:
        size = entry.cut.size if entry.cut is not None else len(entry.raw)
        if run and (len(run) == BATCH_SIZE or spent + size > READ_BUDGET):
            yield run
            run, spent = [], 0
        run.append(entry)
        spent += size
    if run:
        yield run


@dataclass
class Outcome:
    """What a retry or delete did; entries skipped keep their reason."""

    key: str
    target: str | None
    done: int = 0
    examined: int = 0
    full: bool = False
    skipped: Counter[str] = field(default_factory=Counter)
    moved: list[Entry] = field(default_factory=list)
    remaining: int | None = None
    unmatched: int = 0  # examined, not matching the action's filter, left in place
    put_back: int = 0  # not examined: the run ended early and moved them behind the ones it left

    def count(self, status: str, entry: Entry | None = None) -> None:
        """Tally one script status: "ok", "full", or why the entry was left alone."""
        self.examined += 1
        if status == "ok":
            self.done += 1
            if entry is not None and len(self.moved) < MOVED_KEPT:
                self.moved.append(entry)
        elif status == "full":
            self.full = True
        else:
            self.skipped[STATUS_REASONS.get(status, STATUS_REASONS["missing"])] += 1

    def done_with(self, entries: Sequence[Entry]) -> None:
        """Tally entries acted on ("ok"), in one step: a retry-all window is hundreds of them."""
        self.examined += len(entries)
        self.done += len(entries)
        self.moved.extend(entries[: max(MOVED_KEPT - len(self.moved), 0)])

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "target": self.target,
            "done": self.done,
            "skipped": self.skipped_count,
            "skipped_reasons": dict(self.skipped),
            "full": self.full,
            "remaining": self.remaining,
            "unmatched": self.unmatched,
            "put_back": self.put_back,
        }

    @property
    def stopped_full(self) -> str:
        """The clause a summary adds when the target filled up and the action stopped there."""
        return f"; stopped: {self.target} is full (QUEUE_MAX_SIZE {conf('QUEUE_MAX_SIZE'):,})"

    def summary(self, verb: str) -> str:
        text = f"{verb} {self.done:,}{' (archived)' if verb == 'Deleted' else ''} of {self.key}"
        if self.target and verb == "Retried":
            text += f" to {self.target}"
        if self.full:
            text += self.stopped_full
        if self.skipped:
            reasons = "; ".join(f"{count:,} {reason}" for reason, count in self.skipped.most_common(3))
            text += f"; skipped {self.skipped_count:,} ({reasons})"
        if self.unmatched:
            text += f"; {self.unmatched:,} did not match the filter (left in place)"
        if self.remaining:
            text += f"; {self.remaining:,} not examined yet"
        if self.put_back:
            text += (
                f"; ended early: the {self.put_back:,} not examined went back behind the others, "
                "so the DLQ is in its old order"
            )
        return text + "."


def target_of(key: str) -> str:
    target = keys.source_queue(key)
    if target is None:
        raise NotRetryable(f"{key} is not a dead-letter queue")
    return target


def retry(client: redis.Redis, key: str, entries: Sequence[Entry]) -> Outcome:
    """Retry chosen entries to their source queue, each removed in the same atomic step; cut
    entries (as pages read them) are read whole a few megabytes at a time (``runs``)."""
    outcome = Outcome(key, target_of(key))
    removed: list[int] = []
    for run in runs(entries):
        part = Outcome(key, outcome.target)  # merged, it keeps the entries moved cut (``light``)
        whole = read_whole(client, key, run, removed)
        for _ in range(len(run) - len(whole)):
            part.count("missing")
        moves = []
        for entry in whole:
            try:
                moves.append((entry, Move(entry.index, entry.raw, entry.retry_payload())))
            except NotRetryable as reason:
                part.skipped[str(reason)] += 1
        _apply(client, part, moves, removed=removed)
        merge(outcome, part)
        if outcome.full:
            break
    return outcome


def retry_edited(client: redis.Redis, key: str, entry: Entry, job: dict[str, Any]) -> Outcome:
    """Retry one entry with an edited job, removing the entry in the same atomic step."""
    outcome = Outcome(key, target_of(key))
    _apply(client, outcome, [(entry, Move(entry.index, entry.raw, encode_payload(job)))])
    return outcome


def delete(
    client: redis.Redis,
    key: str,
    entries: Sequence[Entry],
    token: str | None = None,
    removed: list[int] | None = None,
) -> Outcome:
    """Delete chosen entries by exact bytes (``queues.archive`` archives them first, batch by batch,
    passing the same ``removed`` to each so later hints account for earlier deletes)."""
    outcome = Outcome(key, None)
    _apply(client, outcome, [(entry, Move(entry.index, entry.raw)) for entry in entries], token, removed)
    return outcome


def _apply(
    client: redis.Redis,
    outcome: Outcome,
    moves: Sequence[tuple[Entry, Move]],
    token: str | None = None,
    removed: list[int] | None = None,
) -> None:
    """Run the moves, ``BATCH_SIZE`` per script call (a token names one call: pass at most one batch).

    A call removes its entries only at its end, so hints hold within it; the next call's hints are
    moved up past the entries removed ahead of them (``removed``: their hints as seen, sorted).
    """
    max_len = conf("QUEUE_MAX_SIZE") if outcome.target else 0
    removed = [] if removed is None else removed
    for start in range(0, len(moves), BATCH_SIZE):
        chunk = moves[start : start + BATCH_SIZE]
        sent = [replace(move, hint=rehint(move.hint, removed)) for _, move in chunk]
        statuses = move_entries(client, outcome.key, outcome.target, sent, max_len, token)
        for (entry, move), status in zip(chunk, statuses, strict=True):
            outcome.count(status, entry)
            if status == "ok" and move.hint >= 0:
                insort(removed, move.hint)
        if outcome.full:
            return


def rehint(hint: int, removed: Sequence[int]) -> int:
    """Where an entry seen at ``hint`` is once the entries seen at ``removed`` (sorted) are gone."""
    return hint - bisect_left(removed, hint) if hint >= 0 else hint


Keep = Callable[[Entry], str | None]
"""For a sweep: ``None`` acts on the entry, ``""`` leaves it quietly, a reason leaves it and counts."""

Window = Sequence[tuple[Entry, str | None]]
"""Entries read at the head of a DLQ, each with what ``Keep`` said of it."""

Act = Callable[[redis.Redis, str, Window], tuple[int, Outcome]]
"""Acts on a window's entries that ``Keep`` passed; returns how many of the window it handled."""


def retry_keep(select: Callable[[Entry], bool] | None = None) -> Keep:
    def keep(entry: Entry) -> str | None:
        if select is not None and not select(entry):
            return ""
        try:
            entry.retry_payload()
        except NotRetryable as reason:
            return str(reason)
        return None

    return keep


def delete_keep(select: Callable[[Entry], bool] | None = None) -> Keep:
    return lambda entry: "" if select is not None and not select(entry) else None


def rotate(
    client: redis.Redis, key: str, window: Window, target: str | None, token: str | None = None
) -> tuple[int, Outcome]:
    """Retry (to ``target``) or delete (no target) a head window's chosen entries; the others go,
    in order, to the tail. Stops early at an entry that changed since it was read, or a full target."""
    outcome = Outcome(key, target)
    pairs = [
        (entry.raw, None if reason is not None else entry.retry_payload() if target else b"")
        for entry, reason in window
    ]
    max_len = conf("QUEUE_MAX_SIZE") if target else 0
    handled, stop = scripts.rotate(client, key, target, pairs, max_len, token)
    outcome.done_with([entry for entry, reason in window[:handled] if reason is None])
    outcome.full = stop == "full"
    return handled, outcome


def retry_window(client: redis.Redis, key: str, window: Window) -> tuple[int, Outcome]:
    return rotate(client, key, window, target_of(key))


def delete_window(client: redis.Redis, key: str, window: Window) -> tuple[int, Outcome]:
    """Delete without archiving (``queues.archive.archive_and_rotate`` archives first)."""
    return rotate(client, key, window, None)


def put_back(
    client: redis.Redis,
    key: str,
    *,
    budget_seconds: float = 5.0,
    start: int = 0,
    unexamined: int | None = None,
) -> tuple[Outcome, int]:
    """End a bulk run that stopped halfway, putting the DLQ back in its old order: the ``unexamined``
    entries still at its head go, unread and in order, to the tail, behind the ``start`` entries the
    run examined and left there (``put_back.lua``, ``BATCH_SIZE`` per call, within the budget).

    Exactly the run's own count moves: entries HSI appended meanwhile sit among the kept ones, and
    are not taken for unexamined ones (without the count: ``LLEN - start``, which counts them). A
    run that left nothing at the tail (``start`` 0) has no order to put back. Returns the outcome
    (``put_back``, ``remaining``) and the run's position, as ``sweep`` does."""
    outcome = Outcome(key, None, remaining=0)
    if start <= 0:
        return outcome, 0
    length = client.llen(key)
    left = min(unexamined if unexamined is not None else max(length - start, 0), length)
    deadline = time.monotonic() + budget_seconds
    while left > 0:
        moved = scripts.put_back(client, key, min(BATCH_SIZE, left))
        outcome.put_back += moved
        left = left - moved if moved else 0
        if time.monotonic() >= deadline:
            break
    outcome.remaining = left
    return outcome, start + outcome.put_back


ScriptRun = Callable[[redis.Redis, str, int, Outcome], str]
"""Retries up to so many entries from the head inside Redis, counted in; returns why it stopped."""


def sweep(
    client: redis.Redis,
    key: str,
    act: Act,
    keep: Keep,
    *,
    budget_seconds: float = 5.0,
    start: int = 0,
    script_run: ScriptRun | None = None,
    unexamined: int | None = None,
    overlap: bool = False,
) -> tuple[Outcome, int]:
    """Examine entries from the head, ``BATCH_SIZE`` per script call, within a time budget: ``act``
    takes those ``keep`` passes, and the others move, in order, to the tail (``rotate.lua``).

    Every call touches only the two ends of the list, so the cost per entry is the same at any
    depth. The returned position counts the entries examined and kept so far: pass it back as
    ``start`` and the sweep examines the ``LLEN - start`` entries still ahead of them; a caller that
    counts the run's entries itself passes how many it has not examined as ``unexamined``, and
    exactly that many are examined: someone deleting entries the run kept (which shortens the list)
    or HSI appending new failures (which lengthens it, among the kept ones) changes neither which
    entries are the run's nor their order.

    With ``script_run`` (retry-all), runs the script can decode itself never pass through Python:
    Python reads a window only where the script stops ("defer"), and leaves a trailing run of at
    least ``SCRIPT_RUN`` such entries to it.

    With ``overlap`` (for an ``act`` that touches nothing but Redis, so it can run on another
    thread), while Redis acts on one window the next one, read ahead, is examined here: a retry's
    decoding and Redis's work take turns no longer. The read-ahead is only a guess at what will be
    at the head: ``act`` compares every entry's bytes as always, and a window that did not go whole
    is dropped with what was read after it, and read again.
    """
    deadline = time.monotonic() + budget_seconds
    outcome = Outcome(key, None)
    kept = start
    length = client.llen(key)
    left = min(unexamined if unexamined is not None else max(length - start, 0), length)
    ask_script = script_run is not None
    first = True  # every chunk examines at least one batch, however short its budget
    ready: Ahead | None = None  # the next window, read and examined while Redis acted on the last
    with ThreadPoolExecutor(1, thread_name_prefix="dlq-act") if overlap else nullcontext() as pool:
        while left > 0 and (first or time.monotonic() < deadline):
            first = False
            if script_run is not None and ask_script and ready is None:
                before = outcome.done
                stop = script_run(client, key, min(BATCH_SIZE, left), outcome)
                left = 0 if stop == "end" else left - (outcome.done - before)
                if stop == "more":
                    continue
                if stop != "defer":
                    break
            if ready is not None:
                window, after = ready.window, ready.after
                read = cut = len(window)
                ready = None
            else:
                raws = _read(client, key, 0, left)  # up to BATCH_SIZE, fewer when they are large
                if not raws:
                    left = 0
                    break
                read, cut = len(raws), len(raws) if script_run is None else _python_part(raws)
                window, after = examine(key, raws[:cut], keep), None
            if isinstance(pool, ThreadPoolExecutor) and cut == read and not after:
                after = _read(client, key, len(window), left - len(window))
            if isinstance(pool, ThreadPoolExecutor) and after:
                handled, part, ready = _act_while_examining(
                    pool, client, key, (act, keep), window, after, left, script_run is not None
                )
            else:
                handled, part = act(client, key, window)
            merge(outcome, part)
            kept += tally(outcome, window[:handled])
            left -= handled
            if part.full:
                break
            # Ask the script first when a run of its own follows, or when the window changed under
            # us; after a whole batch of Python's entries, the next one is most likely Python's too.
            ask_script = handled < len(window) or cut < read
    outcome.remaining = left
    return outcome, kept


@dataclass(frozen=True)
class Ahead:
    """A window read ahead and examined (all of it), and what was read after it."""

    window: Window
    after: list[bytes]


def tally(outcome: Outcome, window: Window) -> int:
    """Count the reasons of a window's entries left in the DLQ; returns how many were left."""
    left = 0
    for _, reason in window:
        if reason is not None:
            left += 1
            if reason:
                outcome.skipped[reason] += 1
            else:
                outcome.unmatched += 1
    return left


def _read(client: redis.Redis, key: str, start: int, count: int) -> list[bytes]:
    """The whole bytes of ``count`` entries from ``start``, ``BATCH_SIZE`` at most (fewer when large)."""
    if count <= 0:
        return []
    stop = start + min(count, BATCH_SIZE) - 1
    (reply,) = scripts.peek(client, [key], start, stop, 0, READ_TAIL, READ_BUDGET)  # 0: all whole
    if isinstance(reply, redis.ResponseError):
        raise _naming(key, reply)
    return [as_bytes(item) for item in reply[2:]]


def examine(key: str, raws: Sequence[bytes], keep: Keep) -> list[tuple[Entry, str | None]]:
    """A window read at the head: each entry with what ``keep`` says of it."""
    return [(entry, keep(entry)) for entry in (Entry.of(key, i, raw) for i, raw in enumerate(raws))]


def _act_while_examining(
    pool: ThreadPoolExecutor,
    client: redis.Redis,
    key: str,
    work: tuple[Act, Keep],
    window: Window,
    after: list[bytes],
    left: int,
    scripted: bool,
) -> tuple[int, Outcome, Ahead | None]:
    """``act`` on ``window`` on the pool's thread, then read what follows ``after``; meanwhile,
    here, examine ``after`` (the window that will then be at the head). Returns what ``act`` did
    and, if the window went whole, ``after`` examined, ready to act on next."""
    act, keep = work
    more = left - len(window) - len(after)

    def act_then_read() -> tuple[int, Outcome, list[bytes] | None]:
        handled, part = act(client, key, window)
        whole = handled == len(window) and not part.full
        return handled, part, _read(client, key, len(after), more) if whole else None

    acting = pool.submit(act_then_read)
    try:  # a window with a run the script takes itself is read again, in the script's turn
        examined = examine(key, after, keep) if not scripted or _python_part(after) == len(after) else None
    finally:
        handled, part, following = acting.result()  # never left acting behind an error here
    if following is None or not examined:  # the window did not go whole, or the script's turn
        return handled, part, None
    return handled, part, Ahead(examined, following)  # ``after`` is at the head now


def retry_all(
    client: redis.Redis,
    key: str,
    *,
    budget_seconds: float = 5.0,
    start: int = 0,
    unexamined: int | None = None,
) -> tuple[Outcome, int]:
    """Retry every entry, within a budget: ``sweep`` with ``retry_window``, where runs of HSI's own entries
    are read and moved by ``retry_run.lua`` without passing through Python. The rest (``Z:``
    compressed entries, overflow wrappers) Python decodes, and ``rotate.lua`` moves them while they
    are still the bytes read; entries that cannot be retried go, with their reason, to the tail.
    """
    target = target_of(key)
    max_len = conf("QUEUE_MAX_SIZE")

    def script_run(client: redis.Redis, key: str, count: int, outcome: Outcome) -> str:
        sample = min(max(MOVED_KEPT - len(outcome.moved), 0), count)
        run = retry_run(client, key, target, count, max_len, sample)
        outcome.done += run.retried
        outcome.examined += run.retried
        outcome.moved.extend(Entry(key, -1, *_peeked(item)) for item in run.sample)
        outcome.full = outcome.full or run.stop == "full"
        return run.stop

    outcome, position = sweep(
        client,
        key,
        retry_window,
        retry_keep(),
        budget_seconds=budget_seconds,
        start=start,
        script_run=script_run,
        unexamined=unexamined,
        overlap=True,
    )
    outcome.target = target
    return outcome, position


def _python_part(raws: Sequence[bytes]) -> int:
    """How many of the entries read retry-all's Python path takes: all of them, but for a trailing
    run of at least ``SCRIPT_RUN`` that the script can take itself (the first is always Python's:
    the script deferred it). Short runs of plain entries between compressed ones stay here, so a
    DLQ that mixes both is not read once per switch."""
    plain = 0
    while plain < len(raws) - 1 and job_span(raws[-1 - plain]) is not None:
        plain += 1
    return len(raws) - plain if plain >= SCRIPT_RUN else len(raws)


def merge(total: Outcome, part: Outcome) -> None:
    """Add one chunk's outcome to a running total (the latest chunk's ``remaining`` wins)."""
    total.target = part.target
    total.remaining = part.remaining
    total.done += part.done
    total.examined += part.examined
    total.full = total.full or part.full
    total.skipped.update(part.skipped)
    total.unmatched += part.unmatched
    total.put_back += part.put_back
    total.moved.extend(entry.light() for entry in part.moved[: max(MOVED_KEPT - len(total.moved), 0)])


def as_json(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "index": entry.index,
        "size": entry.decoded.size,
        "encoding": entry.decoded.encodings,
        "payload": entry.payload if entry.cut is None else None,  # not the whole of it
        "error": entry.problem or None,
    }
