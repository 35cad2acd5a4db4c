"""HSI's background jobs in both keyspaces, read at bounded cost, and the two job actions.

* JobTracker: ``job:{id}`` JSON, no index; found by a bounded ``SCAN job:*`` (skipping
  ``job:*:status`` and ``job:status:list``). Cancelled is stored as ``failed`` + ``error="Cancelled by
  user"``.
* JobStatusService: ``job:{id}:status`` JSON, indexed by the sorted sets ``job:status:list`` (created),
  ``jobs:active`` and ``jobs:completed``; an index entry whose job key expired is shown as stale.

The list is one summary of both (SCAN + ZRANGE, values read by MGET + TTLs in chunks of 500),
cached for ``JOB_CACHE_SECONDS``: filters, counts and order come from it, and only the shown page's
values are read again. The summary is cached as columns of plain values with its counts
already made: unpickling 20,000+ small objects (and the garbage collections they set off) cost a
warm page more than everything else it does. Actions (abort, cancel) use WATCH/MULTI on the job
key, so a job whose status changed since the page was drawn is refused.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import redis
from django.core.cache import cache

from console import audit
from queues import keys
from queues.codec import decode
from queues.conf import conf

TRACKER = "tracker"
STATUS = "status"
SOURCES = {TRACKER: "JobTracker", STATUS: "JobStatusService"}
CANCELLED_ERROR = "Cancelled by user"
CANCELLED_MESSAGE = "Job cancelled by user request"
FINISHED = frozenset({"completed", "failed", "cancelled"})
OPEN = frozenset({"queued", "pending", "running"})
STATUSES = ("queued", "pending", "running", "completed", "failed", "cancelled")
COMPLETED_JOB_TTL = 3600
CHUNK = 500
INDEX_SLICE = 500
CACHE_KEY = "console:jobs:snapshot"
INDEXES = (keys.JOB_STATUS_LIST, keys.JOBS_ACTIVE, keys.JOBS_COMPLETED)
FIELDS = ("job_id", "job_type", "status", "progress", "message", "created_at", "started_at", "completed_at")


class JobConflict(Exception):
    """The job is not in the state the action needs (or changed since the page was drawn): 409."""


class JobMissing(Exception):
    """No such job key (any more): 404."""


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Job:
    """One job as stored, with what the pages show; ``problem`` says why a value is not a readable job."""

    id: str
    source: str
    key: str
    raw: bytes = b""
    ttl: int = -2  # seconds; -1 no expiry, -2 the key does not exist
    data: dict[str, Any] = field(default_factory=dict)
    problem: str = ""
    indexes: dict[str, float] = field(default_factory=dict)  # index key -> score
    stale: list[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.ttl != -2

    @property
    def stored_status(self) -> str:
        value = self.data.get("status")
        return value if isinstance(value, str) else ""

    @property
    def status(self) -> str:
        """The status as people mean it: JobTracker's failed + "Cancelled by user" is cancelled."""
        if not self.exists:
            return "expired"
        if self.problem:
            return "unreadable"
        status = self.stored_status or "unknown"
        if self.source == TRACKER and status == "failed" and self.data.get("error") == CANCELLED_ERROR:
            return "cancelled"
        return status

    @property
    def type(self) -> str:
        value = self.data.get("job_type")
        return value if isinstance(value, str) else ""

    @property
    def progress(self) -> int | None:
        value = self.data.get("progress")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return max(0, min(100, int(value)))

    @property
    def message(self) -> str:
        value = self.data.get("message")
        return value if isinstance(value, str) else ("" if value is None else json.dumps(value))

    def moment(self, name: str) -> datetime | None:
        return _moment(self.data.get(name))

    @property
    def created(self) -> datetime | None:
        return self.moment("created_at")

    @property
    def started(self) -> datetime | None:
        return self.moment("started_at")

    @property
    def completed(self) -> datetime | None:
        return self.moment("completed_at")

    @property
    def sort_time(self) -> float:
        created = self.created
        if created is not None:
            return created.timestamp()
        return max(self.indexes.values(), default=0.0)

    @property
    def duration(self) -> float | None:
        start = self.started or self.created
        if start is None:
            return None
        end = self.completed or (datetime.now(UTC) if self.status in OPEN else None)
        return max((end - start).total_seconds(), 0.0) if end else None

    @property
    def fields(self) -> list[tuple[str, str]]:
        """Every stored field, pretty-printed (the template escapes them)."""
        return [(name, _pretty(value)) for name, value in self.data.items()]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "key": self.key,
            "type": self.type,
            "status": self.status,
            "stored_status": self.stored_status,
            "progress": self.progress,
            "message": self.message,
            "created_at": _text(self.data.get("created_at")),
            "started_at": _text(self.data.get("started_at")),
            "completed_at": _text(self.data.get("completed_at")),
            "ttl": self.ttl,
            "stale": bool(self.stale),
            "stale_reasons": list(self.stale),
            "problem": self.problem,
        }


def _str(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def strict(value: Any) -> Any:
    """``value`` made strictly JSON: NaN and Infinity (which HSI's values may hold) become strings."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return json.loads(json.dumps(value), parse_constant=str)
    return value


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def parse(job_id: str, source: str, raw: bytes | None, ttl: int) -> Job:
    """A job from its stored value; never raises (bad values get a ``problem``)."""
    key = keys.job_key(job_id) if source == TRACKER else keys.job_status_key(job_id)
    job = Job(job_id, source, key, raw=raw or b"", ttl=ttl if raw is not None else -2)
    if raw is None:
        return job
    decoded = decode(raw)
    if not isinstance(decoded.value, dict):
        job.problem = f"not a JSON object ({decoded.kind}{': ' + decoded.note if decoded.note else ''})"
        return job
    job.data = decoded.value
    missing = [name for name in ("status", "job_type") if name not in job.data]
    if missing:
        job.problem = "missing " + ", ".join(missing)
    elif not isinstance(job.data.get("status"), str) or job.stored_status not in STATUSES:
        job.problem = f"unknown status {job.data.get('status')!r}"[:200]
    return job


def flag(job: Job, now: float, stale_after: int) -> Job:
    """Why a job looks stale: stuck while open, finished without expiry, index entry without key."""
    job.stale = []
    if not job.exists:
        if job.indexes:
            job.stale.append("index entry whose job key has expired")
        return job
    if job.status in OPEN:
        latest = max(
            (m.timestamp() for m in (job.created, job.started) if m is not None),
            default=max(job.indexes.values(), default=None),
        )
        if latest is not None and now - latest > stale_after:
            job.stale.append(f"{job.status} with no news for more than {stale_after} s")
    elif job.status in FINISHED and job.ttl == -1:
        job.stale.append("finished but its key never expires")
    return job


def _read(client: redis.Redis, wanted: list[tuple[str, str]]) -> list[Job]:
    """Value and TTL of each (id, source): one MGET and pipelined TTLs per chunk.

    MGET answers nil for a key that is not a string, where TTL says it exists: those few get a
    TYPE and are shown as not a string key. One MGET instead of a GET per job halves the commands
    redis-py packs and parses, most of a cold list's time.
    """
    found: list[Job] = []
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        names = [
            keys.job_key(job_id) if source == TRACKER else keys.job_status_key(job_id)
            for job_id, source in part
        ]
        pipe = client.pipeline(transaction=False)
        pipe.mget(names)
        for name in names:
            pipe.ttl(name)
        values, *ttls = pipe.execute()
        odd = [
            i for i, (raw, ttl) in enumerate(zip(values, ttls, strict=True)) if raw is None and int(ttl) != -2
        ]
        types = dict(zip(odd, _types(client, [names[i] for i in odd]), strict=True))
        for i, (job_id, source) in enumerate(part):
            if i in types:
                job = parse(job_id, source, b"", int(ttls[i]))
                job.problem = f"not a string key (WRONGTYPE: it is a {types[i]})"
            else:
                job = parse(job_id, source, values[i], int(ttls[i]))
            found.append(job)
    return found


def _types(client: redis.Redis, names: list[str]) -> list[str]:
    """TYPE of each key (only the few that MGET could not read)."""
    if not names:
        return []
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.type(name)
    return [_str(kind) for kind in pipe.execute()]


def tracker_id(key: str) -> str | None:
    """The job id of a JobTracker key, ``None`` for JobStatusService's keys."""
    if not key.startswith("job:") or key == keys.JOB_STATUS_LIST or key.endswith(":status"):
        return None
    return key[4:] or None


class Entry(NamedTuple):
    """What the list needs of one job to filter, count and order it; the page reads the rest."""

    id: str
    source: str
    at: float  # created (or the newest index score when the value has no readable created_at)
    status: str
    type: str
    stale: bool
    indexes: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(cls, job: Job) -> Entry:
        return cls(
            job.id,
            job.source,
            job.sort_time,
            job.status,
            job.type,
            bool(job.stale),
            tuple(job.indexes.items()),
        )


@dataclass
class Snapshot:
    """The summary of both keyspaces, newest first, as columns (row ``i`` is ``entry(i)``)."""

    ids: list[str]
    sources: list[str]
    at: list[float]
    statuses: list[str]
    job_types: list[str]
    stale: list[bool]
    indexes: dict[str, tuple[tuple[str, float], ...]]  # JobStatusService id -> its index entries
    scanned: int
    scan_complete: bool
    indexed: int
    index_complete: bool
    taken_at: float
    counts: dict[str, int] = field(default_factory=dict)
    types: list[str] = field(default_factory=list)
    stale_count: int = 0

    @classmethod
    def of(
        cls, entries: list[Entry], scanned: int, scan_complete: bool, indexed: int, index_complete: bool
    ) -> Snapshot:
        """Columns of ``entries`` (already in order); repeated strings interned so they pickle once."""
        intern = sys.intern
        return cls(
            ids=[e.id for e in entries],
            sources=[intern(e.source) for e in entries],
            at=[e.at for e in entries],
            statuses=[intern(e.status) for e in entries],
            job_types=[intern(e.type) for e in entries],
            stale=[e.stale for e in entries],
            indexes={e.id: e.indexes for e in entries if e.source == STATUS and e.indexes},
            scanned=scanned,
            scan_complete=scan_complete,
            indexed=indexed,
            index_complete=index_complete,
            taken_at=time.time(),
            counts=counts(e.status for e in entries),
            types=sorted({e.type for e in entries if e.type}),
            stale_count=sum(e.stale for e in entries),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def entry(self, row: int) -> Entry:
        job_id, source = self.ids[row], self.sources[row]
        indexes = self.indexes.get(job_id, ()) if source == STATUS else ()
        return Entry(
            job_id, source, self.at[row], self.statuses[row], self.job_types[row], self.stale[row], indexes
        )


def snapshot(client: redis.Redis, *, fresh: bool = False) -> Snapshot:
    """Both keyspaces, summarised at bounded cost and cached for ``JOB_CACHE_SECONDS``."""
    seconds = conf("JOB_CACHE_SECONDS")
    if not fresh and seconds:
        cached = cache.get(CACHE_KEY)
        if isinstance(cached, Snapshot):
            return cached
    taken = _take(client)
    if seconds:
        cache.set(CACHE_KEY, taken, seconds)
    return taken


def forget() -> None:
    cache.delete(CACHE_KEY)


def _take(client: redis.Redis) -> Snapshot:
    limit, count = conf("SCAN_LIMIT"), conf("SCAN_COUNT")
    scanned, cursor, tracker_ids = 0, 0, []
    while True:
        cursor, batch = client.scan(cursor=cursor, match="job:*", count=count)
        scanned += len(batch)
        for raw_key in batch:
            job_id = tracker_id(_str(raw_key))
            if job_id is not None:
                tracker_ids.append(job_id)
        if cursor == 0 or scanned >= limit:
            break
    index_limit = conf("JOB_INDEX_LIMIT")
    pipe = client.pipeline(transaction=False)
    for index in INDEXES:
        pipe.zcard(index)
    sizes = [int(size) for size in pipe.execute()]
    pipe = client.pipeline(transaction=False)
    ranges = []  # ZREVRANGE in slices of INDEX_SLICE members: no single command is long
    for index, size in zip(INDEXES, sizes, strict=True):
        for start in range(0, min(size, index_limit), INDEX_SLICE):
            stop = min(start + INDEX_SLICE, index_limit) - 1
            pipe.zrevrange(index, start, stop, withscores=True)
            ranges.append(index)
    indexed: dict[str, dict[str, float]] = {}
    for index, members in zip(ranges, pipe.execute(), strict=True):
        for member, score in members:
            indexed.setdefault(_str(member), {})[index] = float(score)
    index_complete = all(size <= index_limit for size in sizes)
    wanted = [(job_id, TRACKER) for job_id in dict.fromkeys(tracker_ids)]
    wanted += [(job_id, STATUS) for job_id in indexed]
    entries = [Entry.of(job) for job in load(client, wanted, indexed)]
    entries.sort(key=lambda e: (e.at, e.id), reverse=True)
    return Snapshot.of(entries, scanned, cursor == 0, len(indexed), index_complete)


def load(
    client: redis.Redis, wanted: list[tuple[str, str]], indexed: dict[str, dict[str, float]] | None = None
) -> list[Job]:
    """The jobs named, read now (pipelined GET and TTL), with their index entries and stale flags."""
    found = _read(client, wanted)
    now, stale_after = time.time(), conf("JOB_STALE_SECONDS")
    for job in found:
        if job.source == STATUS and indexed is not None:
            job.indexes = indexed.get(job.id, {})
        flag(job, now, stale_after)
    return found


def page(client: redis.Redis, taken: Snapshot, rows: list[int]) -> list[Job]:
    """The full jobs of one page of the list (rows of ``taken``): only these values are read."""
    entries = [taken.entry(row) for row in rows]
    indexed = {e.id: dict(e.indexes) for e in entries if e.source == STATUS}
    return load(client, [(e.id, e.source) for e in entries], indexed)


@dataclass(frozen=True)
class Query:
    status: str = ""
    type: str = ""
    since: float | None = None
    until: float | None = None
    stale: bool = False

    def keep(self, taken: Snapshot, row: int) -> bool:
        if self.status and taken.statuses[row] != self.status:
            return False
        if self.type and taken.job_types[row] != self.type:
            return False
        if self.since is not None and taken.at[row] < self.since:
            return False
        if self.until is not None and taken.at[row] > self.until:
            return False
        return not self.stale or taken.stale[row]


def select(taken: Snapshot, query: Query) -> list[int]:
    """The rows of ``taken`` that ``query`` keeps, in order (all of them without filters)."""
    if query == Query():
        return list(range(len(taken)))
    return [row for row in range(len(taken)) if query.keep(taken, row)]


def counts(statuses: Iterable[str]) -> dict[str, int]:
    counted = Counter(statuses)
    return {status: counted[status] for status in sorted(counted, key=_status_rank)}


def _status_rank(status: str) -> tuple[int, str]:
    order = (*STATUSES, "unreadable", "expired")
    return (order.index(status) if status in order else len(order), status)


def find(client: redis.Redis, job_id: str) -> list[Job]:
    """The job in each keyspace that holds it (read now, not from the snapshot)."""
    jobs = _read(client, [(job_id, TRACKER), (job_id, STATUS)])
    pipe = client.pipeline(transaction=False)
    for index in INDEXES:
        pipe.zscore(index, job_id)
    scores = pipe.execute()
    status_job = jobs[1]
    status_job.indexes = {i: float(s) for i, s in zip(INDEXES, scores, strict=True) if s is not None}
    now, stale_after = time.time(), conf("JOB_STALE_SECONDS")
    return [flag(job, now, stale_after) for job in jobs if job.exists or job.indexes]


def pick(client: redis.Redis, job_id: str, source: str = "") -> Job:
    """One job; ``source`` is needed only when both keyspaces hold this id."""
    found = [job for job in find(client, job_id) if job.exists]
    if source:
        found = [job for job in found if job.source == source]
    if not found:
        raise JobMissing(f"There is no job {job_id[:80]!r}{' in ' + SOURCES[source] if source else ''}.")
    if len(found) > 1:
        raise JobConflict(
            f"Job {job_id[:80]!r} exists in both keyspaces: say which (source tracker or status)."
        )
    return found[0]


# --- Actions -------------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _change(client: redis.Redis, job: Job, expected: str, allowed: frozenset[str], edit: Any) -> Any:
    """WATCH the key, check its status, then run ``edit(pipe, data)`` in MULTI; 409 on any change."""
    with client.pipeline() as pipe:
        try:
            pipe.watch(job.key)
            try:
                stored = pipe.get(job.key)
            except redis.ResponseError as exc:
                raise JobConflict(f"{job.key} cannot be changed: it is not a string key ({exc}).") from None
            now = parse(job.id, job.source, _bytes(stored), int(pipe.ttl(job.key)))
            if not now.exists:
                raise JobMissing(f"Job {job.id[:80]!r} no longer exists ({job.key} expired or was deleted).")
            if now.problem:
                raise JobConflict(f"{job.key} cannot be changed: its value is unreadable ({now.problem}).")
            if expected and now.status != expected:
                raise JobConflict(
                    f"Job {job.id[:80]!r} is {now.status} now, not {expected} as when the page was drawn: "
                    "nothing was done; reload."
                )
            if now.status not in allowed:
                raise JobConflict(
                    f"Job {job.id[:80]!r} is {now.status}: this needs a {' or '.join(sorted(allowed))} job."
                )
            pipe.multi()
            edit(pipe, now.data)
            return pipe.execute()
        except redis.WatchError:
            raise JobConflict(
                f"Job {job.id[:80]!r} changed while this ran: nothing was done; reload."
            ) from None


def control_message(reason: str) -> str:
    return json.dumps({"action": "abort", "reason": reason})


def abort(
    client: redis.Redis, job: Job, reason: str, *, expected: str = "", request: Any = None
) -> tuple[int, int]:
    """Publish HSI's abort signal for a running job; returns (subscribers that received it, audit id).

    JobTracker's record also gets ``message="Aborting: {reason}"`` (TTL kept), as HSI's abort writes.
    """
    reason = reason.strip()[:500] or "Aborted from the HSI console"
    channel = keys.job_control_channel(job.id)

    def edit(pipe: Any, data: dict[str, Any]) -> None:
        if job.source == TRACKER:
            data["message"] = f"Aborting: {reason}"
            pipe.set(job.key, json.dumps(data), keepttl=True)
        pipe.publish(channel, control_message(reason))

    replies = _change(client, job, expected, frozenset({"running"}), edit)
    receivers = int(replies[-1])
    forget()
    entry = audit.record(
        getattr(request, "user", None),
        "job_abort",
        key=job.key,
        count=1,
        detail={
            "job_id": job.id,
            "source": job.source,
            "reason": reason,
            "channel": channel,
            "receivers": receivers,
        },
        request=request,
    )
    return receivers, entry.pk


def cancel(client: redis.Redis, job: Job, *, expected: str = "", request: Any = None) -> int:
    """Cancel a pending (or queued) job the way its keyspace encodes it; returns the audit id."""
    ttl = COMPLETED_JOB_TTL
    before = job.status

    def edit(pipe: Any, data: dict[str, Any]) -> None:
        data["status"] = "failed" if job.source == TRACKER else "cancelled"
        data["error"] = CANCELLED_ERROR
        data["completed_at"] = _now_iso()
        if job.source == TRACKER:
            data["message"] = CANCELLED_MESSAGE
        pipe.set(job.key, json.dumps(data), ex=ttl)
        if job.source == STATUS:
            pipe.zrem(keys.JOBS_ACTIVE, job.id)
            pipe.zadd(keys.JOBS_COMPLETED, {job.id: time.time()})

    _change(client, job, expected, frozenset({"queued", "pending"}), edit)
    forget()
    entry = audit.record(
        getattr(request, "user", None),
        "job_cancel",
        key=job.key,
        count=1,
        detail={"job_id": job.id, "source": job.source, "status_before": before, "ttl": ttl},
        request=request,
    )
    return entry.pk


# --- Live rows (sampled by the relay) --------------------------------------------------------------

LIVE_LIMIT = 200  # jobs one live sample reads at most
LIVE_FIELDS = ("id", "source", "status", "progress", "message", "updated_at")
LIVE_MESSAGE_CHARS = 300  # of a job's message in a live row (the list shows 80)


def live_row(job: Job, sampled_at: str) -> dict[str, Any]:
    """What a live ``jobs`` message says of one job (docs: /tmp/notes/live-protocol-jobs.md)."""
    data = job.data
    updated = next(
        (
            data[name]
            for name in ("updated_at", "completed_at", "started_at")
            if isinstance(data.get(name), str)
        ),
        None,
    )
    return {
        "id": job.id,
        "source": job.source,
        "status": job.status,
        "progress": job.progress,
        "message": job.message[:LIVE_MESSAGE_CHARS],
        "updated_at": updated or sampled_at,
    }


def tracker_open_ids(client: redis.Redis, cursor: int = 0) -> tuple[list[str], int]:
    """Open (pending or running) JobTracker jobs among one bounded SCAN from ``cursor``; the next cursor.

    JobTracker has no index, so the relay walks ``job:*`` SCAN_LIMIT keys at a time, resuming where
    the previous discovery stopped: a keyspace larger than SCAN_LIMIT is covered over several turns.
    """
    scan_limit, count = conf("SCAN_LIMIT"), conf("SCAN_COUNT")
    scanned, ids = 0, []
    while True:
        cursor, batch = client.scan(cursor=cursor, match="job:*", count=count)
        scanned += len(batch)
        ids += [job_id for job_id in (tracker_id(_str(key)) for key in batch) if job_id is not None]
        if cursor == 0 or scanned >= scan_limit:
            break
    found = _read(client, [(job_id, TRACKER) for job_id in dict.fromkeys(ids)])
    return [job.id for job in found if job.status in OPEN], int(cursor)


@dataclass
class LiveSampler:
    """Rows of the jobs that are moving, and which of them changed since the previous sample.

    One sample is ``ZREVRANGE jobs:active 0 LIVE_LIMIT-1`` plus one MGET and pipelined TTLs of the jobs
    (the active JobStatusService jobs, the open JobTracker jobs found by ``discover``, and the jobs
    of the previous sample, so a job that just finished is sent once more with its final status).
    """

    limit: int = LIVE_LIMIT
    tracker_ids: list[str] = field(default_factory=list)
    last: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    cursor: int = 0  # where the next discovery's SCAN resumes

    def discover(self, client: redis.Redis) -> None:
        """Add the open JobTracker jobs of the next stretch of ``job:*`` (closed ones leave in ``sample``)."""
        found, self.cursor = tracker_open_ids(client, self.cursor)
        self.tracker_ids = list(dict.fromkeys(self.tracker_ids + found))[: self.limit]

    def sample(self, client: redis.Redis, sampled_at: str) -> list[dict[str, Any]]:
        """The rows that changed since the previous call (all of them the first time)."""
        members: list[bytes] = client.zrevrange(keys.JOBS_ACTIVE, 0, self.limit - 1)  # type: ignore[assignment]
        listed = [(_str(member), STATUS) for member in members]
        listed += [(job_id, TRACKER) for job_id in self.tracker_ids]
        followed = set(listed)  # remembered while listed, so an orphan in jobs:active is sent once
        changed, seen = [], {}
        for job in _read(client, list(dict.fromkeys(listed + list(self.last)))[: 2 * self.limit]):
            state = (job.status, job.progress, job.message[:LIVE_MESSAGE_CHARS], job.data.get("updated_at"))
            ident = (job.id, job.source)
            if self.last.get(ident) != state:
                changed.append(live_row(job, sampled_at))
            if job.status in OPEN or ident in followed:
                seen[ident] = state
        self.tracker_ids = [
            job_id for (job_id, source), state in seen.items() if source == TRACKER and state[0] in OPEN
        ]
        self.last = seen
        return changed
