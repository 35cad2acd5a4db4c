"""Delete with an archive that survives a crash, and restore from it.

Each Lua call is named by a token stored on its rows. ``reconcile`` first fences a call off
(its receipt key, SET NX), so a call still in flight can no longer act; if the call already
ran, its receipt says exactly which rows it settled. No guess from the list's contents is
needed, which also keeps identical entries apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any, NamedTuple

import redis
from django.db import connection, transaction
from django.db.models import BinaryField, F, Q, QuerySet
from django.db.models.functions import Greatest, Substr
from django.utils import timezone

from console.models import ArchivedItem
from queues import dlq, inventory, keys, streams
from queues.conf import conf
from queues.scripts import fence, new_token, push_entries
from queues.search import walk

State = ArchivedItem.State
Kind = ArchivedItem.Kind


def archive_and_delete(
    client: redis.Redis, key: str, entries: Sequence[dlq.Entry], username: str, *, deletion: str = ""
) -> dlq.Outcome:
    """Archive rows are committed as pending first, then the entries leave Redis, then rows settle.

    ``deletion`` names the delete action the rows belong to, so that it can be undone as a whole.
    """
    outcome = dlq.Outcome(key, None)
    removed: list[int] = []
    for run in dlq.runs(entries):  # cut entries are read whole a few megabytes at a time
        batch = dlq.read_whole(client, key, run, removed)
        for _ in range(len(run) - len(batch)):
            outcome.count("missing")
        delete = partial(dlq.delete, client, key, batch, removed=removed)
        dlq.merge(outcome, _archive_batch(key, batch, username, deletion, delete))
    outcome.remaining = None
    return outcome


def archive_and_rotate(
    client: redis.Redis, key: str, window: dlq.Window, username: str, *, deletion: str = ""
) -> tuple[int, dlq.Outcome]:
    """``dlq.sweep``'s delete: the window's chosen entries archived and deleted as above, the rest
    moved to the tail in the same script call."""
    handled = 0

    def remove(token: str) -> dlq.Outcome:
        nonlocal handled
        handled, outcome = dlq.rotate(client, key, window, None, token=token)
        return outcome

    chosen = [entry for entry, reason in window if reason is None]
    outcome = _archive_batch(key, chosen, username, deletion, remove)
    return handled, outcome


def _archive_batch(
    key: str, entries: Sequence[dlq.Entry], username: str, deletion: str, remove: Callable[..., dlq.Outcome]
) -> dlq.Outcome:
    """Rows for ``entries`` committed as pending, ``remove`` (one script call named by the token)
    deletes them, then the rows of the entries it deleted are kept and the others dropped."""
    token = new_token()
    rows = [
        Pending(key, e.raw, e.id, len(e.raw), username, deletion, token, i) for i, e in enumerate(entries)
    ]
    _insert_pending(rows)
    try:
        outcome = remove(token=token)
    except redis.exceptions.NoPermissionError:  # an ACL refused the call before it ran: nothing left
        _settle_deleted(token, [])
        raise
    deleted = {id(entry) for entry in outcome.moved}
    _settle_deleted(token, [i for i, entry in enumerate(entries) if id(entry) in deleted])
    return outcome


def archive_and_delete_stream(
    client: redis.Redis, key: str, entries: Sequence[streams.Stored], username: str, *, deletion: str = ""
) -> streams.StreamOutcome:
    """The same for stream entries: rows (id and fields) committed as pending, XDEL by id, settle."""
    outcome = streams.StreamOutcome(key, None)
    for start in range(0, len(entries), streams.BATCH_SIZE):
        batch = entries[start : start + streams.BATCH_SIZE]
        part = _archive_stream_batch(client, key, batch, username, deletion)
        streams.merge(outcome, part)
    outcome.remaining = None
    return outcome


def _archive_stream_batch(
    client: redis.Redis, key: str, entries: Sequence[streams.Stored], username: str, deletion: str
) -> streams.StreamOutcome:
    token = new_token()
    rows = []
    for i, entry in enumerate(entries):
        raw = entry.archived()
        fingerprint = dlq.fingerprint(raw)
        rows.append(
            Pending(key, raw, fingerprint, entry.size, username, deletion, token, i, Kind.STREAM, entry.id)
        )
    _insert_pending(rows)
    try:
        outcome = streams.delete_entries(client, key, entries, token=token)
    except redis.exceptions.NoPermissionError:  # an ACL refused the call before it ran: nothing left
        _settle_deleted(token, [])
        raise
    _settle_deleted(token, [i for i, status in enumerate(outcome.statuses) if status == "ok"])
    return outcome


class Pending(NamedTuple):
    """An archive row about to be written as pending, in ``_insert_pending``'s column order."""

    key: str
    raw: bytes
    fingerprint: str
    size: int
    deleted_by: str
    deletion: str
    operation: str
    batch_index: int
    kind: str = Kind.LIST.value
    entry_id: str = ""


def _insert_pending(rows: Sequence[Pending]) -> None:
    """Write a batch's rows as pending with one ``executemany`` (committed before the entries leave
    Redis). The ORM's ``bulk_create`` spent about 76 µs a row building them, most of a delete-all's
    time (bench/archive.py); the columns it would fill from defaults are filled here."""
    if not rows:
        return
    columns = (*Pending._fields, "state", "deleted_at", "restored_by", "restored_to")
    quoted = ", ".join(connection.ops.quote_name(name) for name in columns)
    table = connection.ops.quote_name(ArchivedItem._meta.db_table)
    sql = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608 - fixed names
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, [(*row, State.PENDING.value, now, "", "") for row in rows])


def _settle_deleted(token: str, done: list[int]) -> None:
    with transaction.atomic():
        pending = ArchivedItem.objects.filter(operation=token, state=State.PENDING)
        pending.filter(batch_index__in=done).update(state=State.ARCHIVED)
        pending.exclude(batch_index__in=done).delete()


def reconcile(client: redis.Redis, *, older_than_seconds: float = 0) -> int:
    """Settle rows whose call crashed (or is fenced off now); returns how many rows were settled."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = ArchivedItem.objects.filter(
        Q(state=State.PENDING, deleted_at__lte=cutoff) | Q(state=State.RESTORING, restored_at__lte=cutoff)
    )
    tokens = set(stale.values_list("operation", "state").distinct())
    settled = stale.count()
    for token, state in tokens:
        receipt = fence(client, token)
        if state == State.PENDING:
            statuses = receipt.split(",") if receipt else []
            _settle_deleted(token, [i for i, status in enumerate(statuses) if status == "ok"])
        else:
            _settle_restored(token, int(receipt) if receipt else 0)
    return settled


def _settle_restored(token: str, pushed: int) -> None:
    """The call named ``token`` pushed its rows' entries in id order: the first ``pushed`` went back."""
    with transaction.atomic():
        claimed = ArchivedItem.objects.filter(operation=token, state=State.RESTORING)
        ids = list(claimed.order_by("pk").values_list("pk", flat=True))
        claimed.filter(pk__in=ids[:pushed]).update(state=State.RESTORED)
        claimed.filter(pk__in=ids[pushed:]).update(state=State.ARCHIVED, restored_at=None, restored_by="")


@dataclass
class Restored:
    """What one restore call did with the archive rows it was asked for."""

    asked: list[int]
    restored: dict[int, str] = field(default_factory=dict)  # row id -> fingerprint, pushed back
    left: list[int] = field(default_factory=list)  # claimed, not pushed: the target reached its size

    @property
    def result(self) -> dict[str, int]:
        return {"restored": len(self.restored), "not_restored": len(self.asked) - len(self.restored)}

    @property
    def fingerprints(self) -> list[str]:
        return list(self.restored.values())


def restore(
    client: redis.Redis, ids: Sequence[int], username: str, *, to_source: bool = False
) -> dict[str, int]:
    """Put archived entries back (to their DLQ, or their job straight to the source queue)."""
    return restore_rows(client, ids, username, to_source=to_source).result


@dataclass
class RestoreRun:
    """Where a restore of a whole key's archive stands: resumed after the row id ``after``."""

    key: str
    target: str
    restored: int = 0
    not_restored: int = 0  # rows it stepped over (no job to restore, or restored by someone else)
    passed: int = 0  # rows the filter did not pick: they stay archived
    full: bool = False  # the target reached QUEUE_MAX_SIZE: the rest stays archived
    after: int = 0
    remaining: int = 0  # archived rows of the key after ``after``
    fingerprints: list[str] = field(default_factory=list)  # of the rows restored, in order

    def outcome(self) -> dlq.Outcome:
        """The run as a DLQ action's outcome (rows stepped over count as skipped), for its sentence."""
        done = dlq.Outcome(self.key, self.target, done=self.restored, full=self.full)
        done.remaining = self.remaining
        if self.not_restored:
            done.skipped[NOT_RESTORED] = self.not_restored
        if self.passed:
            done.skipped[NOT_MATCHING] = self.passed
        return done


NOT_RESTORED = "not restored (no job to rebuild, or restored meanwhile by someone else)"
NOT_MATCHING = "left archived (not matching the filter)"


def restore_summary(outcome: dlq.Outcome) -> str:
    """A restore of a DLQ's archive (one step or the whole run) as a sentence."""
    text = f"Restored {outcome.done:,} archived entries of {outcome.key} to {outcome.target}"
    if outcome.full:
        text += outcome.stopped_full
    for reason in (NOT_RESTORED, NOT_MATCHING):
        if outcome.skipped[reason]:
            text += f"; {outcome.skipped[reason]:,} {reason}"
    if outcome.remaining:
        text += f"; {outcome.remaining:,} still to restore"
    return text + "."


def restorable(key: str, deletion: str = "") -> QuerySet[ArchivedItem]:
    """A DLQ's archived rows (of one delete action, if given), oldest first: their order in the DLQ.

    A DLQ's rows are all list or stream entries (job keys have keys of their own family), and
    ``restore_rows`` passes over any other kind, so the rows are found by key and state alone."""
    rows = ArchivedItem.objects.filter(key=key, state=State.ARCHIVED)
    return (rows.filter(deletion=deletion) if deletion else rows).order_by("pk")


@dataclass(frozen=True)
class Deletion:
    """One delete action as the archive holds it: which DLQ, who, when, how many rows, how many
    still archived (the rest restored since). Found by its first row: that row's DLQ, user and time
    (only DLQ rows carry a deletion; an API client that sent one id with two DLQs gets the first
    one's rows). The rest is read when asked for, each an index lookup or an index-only count
    (grouping the rows read every one: 5 s for a delete of a million entries); a restore's steps
    ask for none of it."""

    id: str
    key: str
    deleted_by: str
    first: datetime

    @classmethod
    def find(cls, deletion: str) -> Deletion | None:
        if not deletion:
            return None
        rows = ArchivedItem.objects.filter(deletion=deletion).order_by("pk")
        first = rows.values("key", "deleted_by", "deleted_at").first()
        return cls(deletion, first["key"], first["deleted_by"], first["deleted_at"]) if first else None

    @property
    def _rows(self) -> QuerySet[ArchivedItem]:
        return ArchivedItem.objects.filter(deletion=self.id, key=self.key)

    @cached_property
    def last(self) -> datetime:
        return self._rows.order_by("-pk").values_list("deleted_at", flat=True).first() or self.first

    @cached_property
    def rows(self) -> int:
        return self._rows.count()

    @cached_property
    def archived(self) -> int:
        return self._rows.filter(state=State.ARCHIVED).count()


def restore_all(
    client: redis.Redis,
    key: str,
    username: str,
    *,
    to_source: bool = False,
    after: int = 0,
    budget_seconds: float = 3.0,
    deletion: str = "",
    select: Select | None = None,
) -> RestoreRun:
    """Restore every archived row of ``key`` (of one delete action, if ``deletion``; only those
    ``select`` picks, if given) after the row id ``after``, a script call's batch at a time, until
    done, the target is full, or the time budget is spent (then resume from ``after``)."""
    run = RestoreRun(key, _target_key(key, to_source), after=after)
    rows = restorable(key, deletion)
    size = streams.BATCH_SIZE if keys.classify(key).name == "stream_dlq" else dlq.BATCH_SIZE
    deadline = time.monotonic() + budget_seconds
    while True:
        if select is None:
            looked = ids = list(rows.filter(pk__gt=run.after).values_list("pk", flat=True)[:size])
        else:
            found = list(rows.filter(pk__gt=run.after)[:size])
            looked, ids = [row.pk for row in found], [row.pk for row in found if picks(select, row)]
        if not looked:
            break
        batch = restore_rows(client, ids, username, to_source=to_source)
        run.restored += len(batch.restored)
        run.fingerprints += batch.fingerprints
        run.after = looked[-1]
        if batch.left:  # the target is full: resume with the first row it had no room for
            run.full, run.after = True, min(batch.left) - 1
        # Rows stepped over, counted once: those after a full stop are met again on resuming.
        run.not_restored += sum(pk <= run.after and pk not in batch.restored for pk in ids)
        run.passed += sum(pk <= run.after for pk in set(looked) - set(ids))
        if run.full:
            break
        if time.monotonic() >= deadline:
            break
    run.remaining = rows.filter(pk__gt=run.after).count()
    return run


Select = Callable[[dlq.Entry | streams.StreamEntry], bool]
SEARCH_ROWS = 5_000  # rows one archive search examines (each is decoded in Python)
SEARCH_CHUNK = 500


def with_heads(rows: QuerySet[ArchivedItem]) -> QuerySet[ArchivedItem]:
    """``rows`` without their bytes, each with what a page reads of a list entry instead
    (``listed``): the first ``READ_WHOLE`` bytes and the last ``READ_TAIL``, cut by the database, so
    an archive page of entries of megabytes does not load them."""
    return rows.defer("raw").annotate(
        head=Substr("raw", 1, dlq.READ_WHOLE, output_field=BinaryField()),
        tail=Substr(
            "raw", Greatest(F("size") - dlq.READ_TAIL + 1, 1), dlq.READ_TAIL, output_field=BinaryField()
        ),
    )


def listed(row: ArchivedItem) -> tuple[bytes, dlq.Cut | None]:
    """A row's bytes as a page reads a list entry: whole, or its head and ``Cut`` when it is larger
    than ``READ_WHOLE`` and the row came through ``with_heads``."""
    head = getattr(row, "head", None)
    if head is None:
        return bytes(row.raw), None
    if row.size > dlq.READ_WHOLE:
        return bytes(head), dlq.Cut(row.size, bytes(getattr(row, "tail", b"")))
    return bytes(head), None


def entry_of(row: ArchivedItem) -> dlq.Entry | streams.StreamEntry | None:
    """What a DLQ filter looks at in an archived row: the list entry, or the stream entry's fields
    (None for a row that holds neither)."""
    if row.kind == Kind.STREAM:
        raw, cut = listed(row)
        try:  # a stream entry's archive form is JSON: only its whole bytes say anything
            return streams.Stored.from_archive(raw if cut is None else bytes(row.raw)).text
        except ValueError:
            return None
    return dlq.Entry(row.key, -1, *listed(row)) if row.kind == Kind.LIST else None


def picks(select: Select, row: ArchivedItem) -> bool:
    entry = entry_of(row)
    return entry is not None and select(entry)


@dataclass(frozen=True)
class RowScan:
    """A bounded filtered read of archive rows, newest first: the matches among those examined."""

    rows: list[ArchivedItem]
    matched: int
    examined: int
    last: int | None  # the id of the last row examined: continue before it
    complete: bool  # no row is left after ``last``


def search(
    rows: QuerySet[ArchivedItem],
    select: Select,
    *,
    before: int | None = None,
    limit: int | None = None,
    max_examined: int | None = None,
) -> RowScan:
    """Examine at most ``max_examined`` of ``rows``, newest first, from before the id ``before``;
    with ``limit`` it stops after that many matches (a page), without it only counts."""
    newest = rows.order_by("-id")
    seen: dict[str, int | None] = {"last": None}

    def examined() -> Iterator[ArchivedItem]:
        cursor, left = before, max_examined or SEARCH_ROWS
        while left > 0:
            chunk = list((newest.filter(pk__lt=cursor) if cursor else newest)[: min(SEARCH_CHUNK, left)])
            if not chunk:
                return
            for row in chunk:
                seen["last"] = cursor = row.pk
                yield row
            left -= len(chunk)

    walked = walk(examined(), partial(picks, select), limit)
    last = seen["last"]
    complete = last is None or not newest.filter(pk__lt=last).exists()
    return RowScan(walked.found, walked.matched, walked.examined, last, complete)


def restore_rows(client: redis.Redis, ids: Sequence[int], username: str, *, to_source: bool) -> Restored:
    """``restore``, saying which rows went back (with their fingerprints) and which were left
    archived because their target reached QUEUE_MAX_SIZE."""
    done = Restored(list(ids))
    wanted: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    fingerprints: dict[int, str] = {}
    for row in ArchivedItem.objects.filter(pk__in=ids, state=State.ARCHIVED).order_by("id"):
        if row.kind not in (Kind.LIST, Kind.STREAM):
            continue  # a job key (queues.jobs_archive): restored from the jobs pages, never pushed to a list
        target = _target_key(row.key, to_source)
        try:
            wanted.setdefault((target, row.kind), []).append((row.pk, _payload(row, to_source)))
        except dlq.NotRetryable:
            continue  # cannot become a job again; it stays archived
        fingerprints[row.pk] = row.fingerprint
    # One commit for the batch's claims, before anything is pushed. It starts with a write, so on
    # SQLite it waits for a concurrent writer rather than failing to upgrade a read lock.
    groups: dict[tuple[str, str], tuple[str, list[Any], list[int]]] = {}
    with transaction.atomic():
        for (target, kind), items in wanted.items():
            token = new_token()
            # Compare-and-set, one UPDATE per target: of two concurrent restores only one claims a
            # row (SQLite has no SELECT ... FOR UPDATE, so the state check is in the UPDATE itself),
            # and each finds its rows again by its own token. They are pushed in id order.
            ArchivedItem.objects.filter(pk__in=[pk for pk, _ in items], state=State.ARCHIVED).update(
                state=State.RESTORING,
                restored_to=target,
                restored_at=timezone.now(),
                restored_by=username,
                operation=token,
            )
            claimed = set(ArchivedItem.objects.filter(operation=token).values_list("pk", flat=True))
            mine = [(pk, payload) for pk, payload in items if pk in claimed]
            groups[(target, kind)] = (token, [payload for _, payload in mine], [pk for pk, _ in mine])
    try:
        for (target, kind), (token, payloads, claimed_ids) in groups.items():
            if kind == Kind.STREAM:  # archived fields re-added with new ids, nothing trimmed
                limit = conf("QUEUE_MAX_SIZE") if to_source else 0
                pushed = streams.push_entries(client, target, payloads, limit, token)
            else:  # never past the size where HSI stops writing (a full retry DLQ drops failures)
                limit = conf("QUEUE_MAX_SIZE") if to_source else inventory.limit_of(target) or 0
                pushed = push_entries(client, target, payloads, limit, token)
            if limit > 0 and pushed >= 0:  # -1: fenced off by reconcile, which settles the rows
                done.left += claimed_ids[pushed:]
            pushed = max(pushed, 0)
            _settle_restored(token, pushed)
            done.restored |= {pk: fingerprints[pk] for pk in claimed_ids[:pushed]}
    except redis.exceptions.NoPermissionError:  # an ACL refused a call before it ran: rows stay archived
        for token, *_ in groups.values():
            _settle_restored(token, 0)
        raise
    return done


def _target_key(key: str, to_source: bool) -> str:
    return (keys.source_queue(key) or key) if to_source else key


def _payload(row: ArchivedItem, to_source: bool) -> bytes | streams.Fields:
    raw = bytes(row.raw)
    if row.kind == Kind.STREAM:
        return _stream_fields(raw, to_source)
    return dlq.Entry.of(row.key, -1, raw).retry_payload() if to_source else raw


def _stream_fields(raw: bytes, to_source: bool) -> streams.Fields:
    """The fields to XADD: all of them back to the DLQ stream, the original ones to the source."""
    try:
        entry = streams.Stored.from_archive(raw)
    except ValueError as exc:
        raise dlq.NotRetryable(str(exc)) from None
    fields = entry.job_fields if to_source else entry.fields
    if not fields:
        raise dlq.NotRetryable(dlq.STATUS_REASONS["empty"])
    return fields
