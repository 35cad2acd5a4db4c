"""Delete stale job keys archived first, and restore them: the DLQ archive's pattern for job keys.

A row (``console.models.ArchivedItem``, kind ``job`` or ``jobindex``) is committed as pending before
the Lua call that deletes, tagged with that call's receipt token, so ``queues.archive.reconcile``
settles a crashed call exactly as it does for DLQ entries. Kind ``job`` keeps the key's exact value;
kind ``jobindex`` keeps ``{"job_id", "indexes": {index: score}}`` of an index entry whose job key
expired. Restore sets the key only when it is absent (never over a job HSI wrote since).
"""

from __future__ import annotations

import json
from typing import Any

import redis
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from console import audit
from console.models import JOB_KINDS, ArchivedItem, of_kinds
from queues import keys
from queues.archive import _settle_deleted, _settle_restored
from queues.dlq import fingerprint
from queues.jobs import INDEXES, Job, JobConflict, JobMissing, forget
from queues.scripts import RECEIPT_SECONDS, new_token, receipt_key, script, status_text

KEY_KIND = ArchivedItem.Kind.JOB.value
INDEX_KIND = ArchivedItem.Kind.JOBINDEX.value
KINDS = JOB_KINDS  # KEY_KIND and INDEX_KIND, as the archive's partial index holds them
State = ArchivedItem.State


def archived_jobs() -> QuerySet[ArchivedItem]:
    return ArchivedItem.objects.filter(of_kinds(KINDS)).defer("raw")


def _index_keys(indexes: Any) -> list[str]:
    return [index for index in INDEXES if index in indexes]


def delete_stale(
    client: redis.Redis, job: Job, *, expected: str = "", username: str, request: Any = None
) -> tuple[ArchivedItem, int]:
    """Archive, then delete, one stale job key (or its expired index entries); 409 when it changed."""
    if not job.stale:
        raise JobConflict(f"Job {job.id[:80]!r} is not stale: only stale job keys can be deleted here.")
    if expected and fingerprint(job.raw if job.exists else job.id.encode()) != expected:
        raise JobConflict(f"{job.key} changed since the page was drawn: nothing was deleted; reload.")
    token = new_token()
    if job.exists:
        kind, raw, arg = KEY_KIND, job.raw, job.raw
        key, index_keys = job.key, []
    else:
        kind, arg = INDEX_KIND, job.id.encode()
        raw = json.dumps({"job_id": job.id, "indexes": job.indexes}).encode()
        key, index_keys = keys.job_status_key(job.id), _index_keys(job.indexes)
    row = ArchivedItem.objects.create(
        key=key,
        kind=kind,
        raw=raw,
        fingerprint=fingerprint(raw),
        size=len(raw),
        deleted_by=username,
        operation=token,
        batch_index=0,
    )
    run = script("job_delete")
    mode = "key" if kind == KEY_KIND else "index"
    try:
        reply = run.call(client, [receipt_key(token), key, *index_keys], [RECEIPT_SECONDS, mode, arg])
    except redis.exceptions.NoPermissionError:  # an ACL refused the call before it ran: nothing left
        _settle_deleted(token, [])
        raise
    status = status_text(reply)
    _settle_deleted(token, [0] if status == "ok" else [])
    if status == "changed":
        raise JobConflict(f"{key} changed since it was read: nothing was deleted; reload.")
    if status != "ok":
        raise JobMissing(f"{key} was already gone: nothing was deleted.")
    row.refresh_from_db()
    forget()
    what = "expired index entries of" if kind == INDEX_KIND else "stale key"
    entry = audit.record(
        getattr(request, "user", None),
        "job_delete",
        key=key,
        count=1,
        detail={
            "job_id": job.id,
            "archive_id": row.pk,
            "what": what,
            "stale": job.stale,
            "indexes": index_keys,
        },
        request=request,
    )
    return row, entry.pk


def _run_restore(client: redis.Redis, row: ArchivedItem, token: str) -> Any:
    raw = bytes(row.raw)
    run = script("job_restore")
    if row.kind == KEY_KIND:
        return run.call(client, [receipt_key(token), row.key], [RECEIPT_SECONDS, "key", raw])
    saved = json.loads(raw)
    index_keys = _index_keys(saved["indexes"])
    scores = [saved["indexes"][index] for index in index_keys]
    keys_ = [receipt_key(token), row.key, *index_keys]
    return run.call(client, keys_, [RECEIPT_SECONDS, "index", saved["job_id"], *scores])


def restore(client: redis.Redis, pk: int, *, username: str, request: Any = None) -> bool:
    """Put one archived job key (only if absent) or index entry back; False when it was not restored."""
    row = ArchivedItem.objects.filter(of_kinds(KINDS), pk=pk, state=State.ARCHIVED).first()
    if row is None:
        raise JobMissing(f"Archive entry #{pk} is not an archived job key (or was restored already).")
    token = new_token()
    claimed = ArchivedItem.objects.filter(pk=pk, state=State.ARCHIVED).update(
        state=State.RESTORING,
        restored_to=row.key,
        restored_at=timezone.now(),
        restored_by=username,
        operation=token,
        batch_index=0,
    )
    if not claimed:
        raise JobConflict(f"Archive entry #{pk} is being restored by someone else.")
    try:
        reply = _run_restore(client, row, token)
    except redis.exceptions.NoPermissionError:  # an ACL refused the call before it ran: still archived
        _settle_restored(token, 0)
        raise
    restored = max(int(reply), 0)
    with transaction.atomic():
        _settle_restored(token, restored)
    forget()
    audit.record(
        getattr(request, "user", None),
        "job_restore",
        key=row.key,
        count=restored,
        detail={"archive_id": pk, "kind": row.kind, "restored": bool(restored)},
        request=request,
    )
    return bool(restored)
