"""The archive of deleted entries: crash-safe delete, reconcile, byte-identical restore."""

from __future__ import annotations

import pytest
import redis

from console.models import ArchivedItem, AuditEntry
from queues import actions, archive, dlq
from tests.test_dlq_core import DLQ, TARGET, failure

pytestmark = pytest.mark.django_db
State = ArchivedItem.State


def test_delete_archives_bytes_then_restore_puts_them_back(redis_client: redis.Redis) -> None:
    raws = [failure(n, big=n == 1) for n in range(4)]
    redis_client.rpush(DLQ, *raws)
    entries = dlq.page(redis_client, DLQ).entries
    outcome = archive.archive_and_delete(redis_client, DLQ, entries[:2], "otto")
    assert outcome.done == 2 and redis_client.lrange(DLQ, 0, -1) == raws[2:]
    rows = list(ArchivedItem.objects.order_by("id"))
    assert [bytes(r.raw) for r in rows] == raws[:2] and {r.state for r in rows} == {State.ARCHIVED}
    assert archive.restore(redis_client, [r.pk for r in rows], "otto") == {"restored": 2, "not_restored": 0}
    after = redis_client.lrange(DLQ, 0, -1)
    assert [raws.index(r) for r in after] == [2, 3, 0, 1]
    assert set(ArchivedItem.objects.values_list("state", flat=True)) == {State.RESTORED}
    assert archive.restore(redis_client, [r.pk for r in rows], "otto")["restored"] == 0, "restored only once"


def test_restore_to_source_pushes_the_job(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(5), b"garbage")
    archive.archive_and_delete(redis_client, DLQ, dlq.page(redis_client, DLQ).entries, "otto")
    ids = list(ArchivedItem.objects.order_by("id").values_list("pk", flat=True))
    result = archive.restore(redis_client, ids, "otto", to_source=True)
    assert result == {"restored": 1, "not_restored": 1}
    assert dlq.decode(redis_client.lindex(TARGET, 0)).value["n"] == 5
    assert ArchivedItem.objects.get(pk=ids[1]).state == State.ARCHIVED


def test_entry_gone_before_delete_leaves_no_row(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(1))
    entry = dlq.page(redis_client, DLQ).entries[0]
    redis_client.delete(DLQ)
    assert archive.archive_and_delete(redis_client, DLQ, [entry], "otto").done == 0
    assert not ArchivedItem.objects.exists()


def test_reconcile_settles_what_a_crash_left(redis_client: redis.Redis) -> None:
    still_in_dlq, already_gone, restored_back = failure(1), failure(2), failure(3)
    redis_client.rpush(DLQ, still_in_dlq, restored_back)
    make = ArchivedItem.objects.create
    make(key=DLQ, raw=still_in_dlq, fingerprint="a", size=1, deleted_by="x", state=State.PENDING)
    gone = make(key=DLQ, raw=already_gone, fingerprint="b", size=1, deleted_by="x", state=State.PENDING)
    back = make(key=DLQ, raw=restored_back, fingerprint="c", size=1, deleted_by="x", state=State.RESTORING)
    back.restored_to = DLQ
    back.save()
    assert archive.reconcile(redis_client) == 3
    assert set(ArchivedItem.objects.values_list("fingerprint", "state")) == {
        ("b", State.ARCHIVED),
        ("c", State.RESTORED),
    }
    assert gone.pk in ArchivedItem.objects.values_list("pk", flat=True)


def test_actions_audit_every_mutation(redis_client: redis.Redis, operator) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(3)])
    request = type("Req", (), {"user": operator, "META": {"REMOTE_ADDR": "10.0.0.9"}})()
    refs = [e.ref for e in dlq.page(redis_client, DLQ).entries[:2]]
    outcome, audit_id = actions.act_on_selected(redis_client, DLQ, refs, verb="retry", request=request)
    entry = AuditEntry.objects.get(pk=audit_id)
    assert (entry.action, entry.key, entry.count, entry.username) == ("dlq.retry", DLQ, 2, "otto")
    assert entry.ip_address == "10.0.0.9" and len(entry.detail["fingerprints"]) == 2
    assert entry.detail["target"] == TARGET and entry.detail["snapshot"]
    outcome, _, audit_id = actions.act_on_matching(
        redis_client, DLQ, actions.Filters(), verb="delete", request=request
    )
    assert outcome.done == 1 and AuditEntry.objects.get(pk=audit_id).action == "dlq.delete_all"


def test_filters_read_queries_and_explain_bad_dates() -> None:
    filters = actions.Filters.from_query({"q": " timeout ", "camera": "porch", "since": "2026-02-11T22:00"})
    assert (filters.text, filters.camera) == ("timeout", "porch") and filters.since is not None
    with pytest.raises(actions.BadFilter, match="'until' must be a date and time"):
        actions.Filters.from_query({"until": "yesterday"})


def test_a_nonce_is_accepted_once(redis_client: redis.Redis) -> None:
    assert actions.first_submission(redis_client, "abc")
    assert not actions.first_submission(redis_client, "abc")
