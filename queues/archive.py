"""Delete with an archive that survives a crash, and restore from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis
from django.db import transaction
from django.utils import timezone

from console.models import ArchivedItem
from queues import dlq, keys
from queues.conf import conf
from queues.scripts import push_entries

State = ArchivedItem.State


def archive_and_delete(
    client: redis.Redis, key: str, entries: Sequence[dlq.Entry], username: str
) -> dlq.Outcome:
    """Archive rows are committed as pending first, then the entries leave Redis, then rows settle."""
    rows = ArchivedItem.objects.bulk_create(
        ArchivedItem(key=key, raw=e.raw, fingerprint=e.id, size=len(e.raw), deleted_by=username)
        for e in entries
    )
    outcome = dlq.delete(client, key, entries)
    deleted = {id(entry) for entry in outcome.moved}
    kept = [row.pk for row, entry in zip(rows, entries, strict=True) if id(entry) in deleted]
    with transaction.atomic():
        ArchivedItem.objects.filter(pk__in=kept).update(state=State.ARCHIVED)
        ArchivedItem.objects.filter(pk__in=[row.pk for row in rows], state=State.PENDING).delete()
    return outcome


def reconcile(client: redis.Redis) -> int:
    """Settle rows a crash left behind; returns how many were settled."""
    settled = 0
    for row in ArchivedItem.objects.filter(state__in=[State.PENDING, State.RESTORING]):
        raw = bytes(row.raw)
        if row.state == State.PENDING and client.lpos(row.key, cast(Any, raw)) is not None:
            row.delete()  # the delete never happened: the entry is still in its DLQ
        elif row.state == State.PENDING:
            ArchivedItem.objects.filter(pk=row.pk).update(state=State.ARCHIVED)
        else:
            back = (
                client.lpos(row.restored_to, cast(Any, _payload(row, row.restored_to != row.key))) is not None
            )
            ArchivedItem.objects.filter(pk=row.pk).update(state=State.RESTORED if back else State.ARCHIVED)
        settled += 1
    return settled


def restore(
    client: redis.Redis, ids: Sequence[int], username: str, *, to_source: bool = False
) -> dict[str, int]:
    """Put archived entries back (to their DLQ, or their job straight to the source queue)."""
    with transaction.atomic():
        rows = list(
            ArchivedItem.objects.select_for_update().filter(pk__in=ids, state=State.ARCHIVED).order_by("id")
        )
        by_target: dict[str, list[tuple[ArchivedItem, bytes]]] = {}
        for row in rows:
            try:
                payload = _payload(row, to_source)
            except dlq.NotRetryable:
                continue  # cannot become a job again; it stays archived
            target = _target(row, to_source)
            # Compare-and-set: of two concurrent restores only one claims a row (SQLite has no
            # SELECT ... FOR UPDATE, so the state check must be in the UPDATE itself).
            if ArchivedItem.objects.filter(pk=row.pk, state=State.ARCHIVED).update(
                state=State.RESTORING, restored_to=target
            ):
                by_target.setdefault(target, []).append((row, payload))
    restored = 0
    for target, group in by_target.items():
        limit = conf("QUEUE_MAX_SIZE") if to_source else 0
        pushed = push_entries(client, target, [payload for _, payload in group], limit)
        ArchivedItem.objects.filter(pk__in=[r.pk for r, _ in group[:pushed]]).update(
            state=State.RESTORED, restored_at=timezone.now(), restored_by=username
        )
        ArchivedItem.objects.filter(pk__in=[r.pk for r, _ in group[pushed:]]).update(state=State.ARCHIVED)
        restored += pushed
    return {"restored": restored, "not_restored": len(ids) - restored}


def _target(row: ArchivedItem, to_source: bool) -> str:
    return (keys.source_queue(row.key) or row.key) if to_source else row.key


def _payload(row: ArchivedItem, to_source: bool) -> bytes:
    raw = bytes(row.raw)
    return dlq.Entry.of(row.key, -1, raw).retry_payload() if to_source else raw
