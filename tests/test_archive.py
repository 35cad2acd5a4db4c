"""The archive of deleted entries: crash-safe delete, reconcile, byte-identical restore."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import RequestFactory, override_settings
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from console.models import JOB_KINDS, QUEUE_KINDS, ArchivedItem, AuditEntry, of_kinds
from queues import actions, archive, dlq, streams
from queues.actions import Filters
from tests.conftest import logged_in
from tests.test_api_queues import ENTRIES
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
    assert [raws.index(dlq.as_bytes(r)) for r in after] == [2, 3, 0, 1]
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


def test_restore_never_fills_a_retry_dlq_past_queue_max_size(redis_client: redis.Redis) -> None:
    """HSI rejects failures at a full retry DLQ; it appends to an overflow DLQ without a limit."""
    overflow = "dlq:overflow:detection_queue"
    redis_client.rpush(DLQ, *[failure(n) for n in range(3)])
    redis_client.rpush(overflow, *[failure(n) for n in range(3)])
    for key in (DLQ, overflow):
        archive.archive_and_delete(redis_client, key, dlq.page(redis_client, key).entries, "otto")
    redis_client.rpush(DLQ, failure(10))
    ids = list(ArchivedItem.objects.order_by("id").values_list("pk", flat=True))
    with override_settings(HSI_CONSOLE={"QUEUE_MAX_SIZE": 3}):
        result = archive.restore(redis_client, ids, "otto")
    assert result == {"restored": 5, "not_restored": 1}
    assert redis_client.llen(DLQ) == 3 and redis_client.llen(overflow) == 3
    left = ArchivedItem.objects.get(state=State.ARCHIVED)
    assert (left.key, bytes(left.raw)) == (DLQ, failure(2)), "the last of the DLQ's rows stays archived"


def test_restore_to_source_stops_at_queue_max_size_whatever_the_queue_is_called(
    redis_client: redis.Redis,
) -> None:
    redis_client.rpush("dlq:custom_work", *[failure(n) for n in range(3)])
    archive.archive_and_delete(
        redis_client, "dlq:custom_work", dlq.page(redis_client, "dlq:custom_work").entries, "otto"
    )
    ids = list(ArchivedItem.objects.order_by("id").values_list("pk", flat=True))
    with override_settings(HSI_CONSOLE={"QUEUE_MAX_SIZE": 2}):
        assert archive.restore(redis_client, ids, "otto", to_source=True) == {
            "restored": 2,
            "not_restored": 1,
        }
    assert redis_client.llen("custom_work") == 2


def archived(raws: list[bytes]) -> list[int]:
    """Archive rows of DLQ entries, as a delete would have left them; their ids in order."""
    rows = ArchivedItem.objects.bulk_create(
        ArchivedItem(key=DLQ, raw=raw, fingerprint=dlq.fingerprint(raw), size=len(raw), state=State.ARCHIVED)
        for raw in raws
    )
    return [row.pk for row in rows]


def test_restore_all_counts_a_stepped_over_row_once_across_full_stops(redis_client: redis.Redis) -> None:
    """A row with no job after the point a full target stopped the step is met again on resuming:
    it is counted when it is passed, not at every stop; each step knows what it restored."""
    raws = [failure(n) for n in range(150)] + [b"no job here"] + [failure(n) for n in range(150, 250)]
    archived(raws)
    steps = []
    with override_settings(HSI_CONSOLE={"QUEUE_MAX_SIZE": 100}):
        after = 0
        while True:
            run = archive.restore_all(redis_client, DLQ, "otto", to_source=True, after=after)
            steps.append((run.restored, run.not_restored, run.full, run.remaining))
            jobs = [dlq.decode(job).value["n"] for job in redis_client.lrange(TARGET, 0, -1)]
            assert run.fingerprints == [dlq.fingerprint(failure(n)) for n in jobs]
            if not run.full:
                break
            redis_client.delete(TARGET)  # HSI's workers took them
            after = run.after
    assert steps == [(100, 0, True, 151), (100, 1, True, 50), (50, 0, False, 0)]
    assert bytes(ArchivedItem.objects.get(state=State.ARCHIVED).raw) == b"no job here"


def test_restores_audit_the_fingerprints_they_put_back(redis_client: redis.Redis, operator) -> None:
    raws = [failure(n) for n in range(4)]
    ids = archived([*raws[:2], b"no job here", *raws[2:]])
    request = RequestFactory().post("/")
    request.user = operator
    actions.restore(redis_client, ids[:3], to_source=True, request=request)
    run, audit_id = actions.restore_all(redis_client, DLQ, to_source=False, request=request)
    picked = AuditEntry.objects.get(action="archive.restore")
    assert (picked.count, picked.detail["fingerprints"]) == (2, [dlq.fingerprint(r) for r in raws[:2]])
    assert picked.detail["ids"] == ids[:3] and picked.detail["not_restored"] == 1
    every = AuditEntry.objects.get(pk=audit_id)
    assert every.detail["fingerprints"] == [dlq.fingerprint(r) for r in (b"no job here", *raws[2:])]
    assert (every.count, run.restored, redis_client.llen(DLQ)) == (3, 3, 3)


def test_entry_gone_before_delete_leaves_no_row(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(1))
    entry = dlq.page(redis_client, DLQ).entries[0]
    redis_client.delete(DLQ)
    assert archive.archive_and_delete(redis_client, DLQ, [entry], "otto").done == 0
    assert not ArchivedItem.objects.exists()


def test_reconcile_fences_calls_that_never_ran_and_trusts_receipts(redis_client: redis.Redis) -> None:
    from queues.scripts import move_entries, new_token

    raws = [failure(n) for n in range(3)]
    redis_client.rpush(DLQ, *raws)

    def pending(token: str, index: int, raw: bytes) -> None:
        ArchivedItem.objects.create(
            key=DLQ, raw=raw, fingerprint="f", size=1, deleted_by="x", operation=token, batch_index=index
        )

    never_ran, ran = new_token(), new_token()
    pending(never_ran, 0, raws[0])  # crashed before its script: the entry is still in the DLQ
    pending(ran, 0, raws[1])  # crashed after its script removed the entry
    pending(ran, 1, failure(99))  # ... which did not find this one
    move_entries(redis_client, DLQ, None, [dlq.Move(1, raws[1]), dlq.Move(-1, failure(99))], token=ran)
    assert archive.reconcile(redis_client) == 3
    assert list(ArchivedItem.objects.values_list("operation", "batch_index", "state")) == [
        (ran, 0, State.ARCHIVED)
    ]
    assert move_entries(redis_client, DLQ, None, [dlq.Move(0, raws[0])], token=never_ran) == ["aborted"]
    assert redis_client.lrange(DLQ, 0, -1) == [raws[0], raws[2]], "the fenced call can no longer delete"


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


def test_archive_search_reads_stream_rows_by_their_fields(redis_client: redis.Redis) -> None:
    key = "detections:stream:dlq"
    ids = []
    for n in range(6):
        reason = "max_delivery_exceeded" if n < 3 else "poison"
        added = redis_client.xadd(key, {"camera_id": f"cam{n % 2}", "dlq_reason": reason, "n": str(n)})
        ids.append(dlq.as_bytes(added).decode())
    found = streams.read(redis_client, key, ids)
    archive.archive_and_delete_stream(redis_client, key, found, "otto")
    ArchivedItem.objects.create(key=key, raw=b"not an archived entry", fingerprint="f", size=1, kind="stream")
    chosen = Filters(text="poison", camera="cam1").select
    scan = archive.search(ArchivedItem.objects.filter(key=key), chosen, limit=50)
    assert [streams.Stored.from_archive(bytes(r.raw)).text.fields["n"] for r in scan.rows] == ["5", "3"]
    assert (scan.matched, scan.examined, scan.complete) == (2, 7, True), "the unreadable row matches nothing"


@hypothesis_settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raws=ENTRIES, text=st.text(max_size=30), camera=st.text(max_size=30).filter(str.strip))
def test_archive_search_answers_for_any_bytes_and_filter(
    operator: User, redis_client: redis.Redis, raws: list[bytes], text: str, camera: str
) -> None:
    ArchivedItem.objects.all().delete()
    ArchivedItem.objects.bulk_create(
        ArchivedItem(key=DLQ, raw=raw, fingerprint=dlq.fingerprint(raw), size=len(raw), state=State.ARCHIVED)
        for raw in raws
    )
    client = logged_in(operator)
    query = {"key": DLQ, "q": text, "camera": camera}
    page = client.get(reverse("admin:archive"), query)
    assert page.status_code == 200 and "<script>" not in page.content.decode()
    assert page.context["listing"].note.startswith(f"Searched {len(raws)} archived entr")
    confirm = client.get(reverse("admin:archive_restore_all"), query | {"to": "source"})
    assert confirm.status_code in (200, 302) and "<script>" not in confirm.content.decode()


def dlq_row(
    key: str, n: int, *, deletion: str = "", state: str = State.ARCHIVED, by: str = "op"
) -> ArchivedItem:
    raw = failure(n)
    return ArchivedItem(
        key=key,
        raw=raw,
        fingerprint=dlq.fingerprint(raw),
        size=len(raw),
        state=state,
        deletion=deletion,
        deleted_by=by,
    )


def test_a_delete_is_named_by_its_first_row_and_counts_only_its_dlq(
    admin_user: User, redis_client: redis.Redis
) -> None:
    """An API client may send one deletion id with two DLQs: the delete is the first one's."""
    other, deletion = "dlq:analysis_queue", "d" * 32
    ArchivedItem.objects.bulk_create(
        [dlq_row(DLQ, n, deletion=deletion, by="first") for n in range(3)]
        + [dlq_row(DLQ, 3, deletion=deletion, state=State.RESTORED, by="first")]
        + [dlq_row(other, n, deletion=deletion, by="second") for n in range(5)]
    )
    found = archive.Deletion.find(deletion)
    assert found is not None and (found.key, found.deleted_by, found.rows, found.archived) == (
        DLQ,
        "first",
        4,
        3,
    )
    assert archive.Deletion.find("e" * 32) is None and archive.Deletion.find("") is None
    client = logged_in(admin_user)
    page = client.get(reverse("admin:archive"), {"deletion": deletion})
    assert page.status_code == 200 and {item.key for item, _ in page.context["items"]} == {DLQ}
    assert page.context["page"].paginator.count == 4 and page.context["restorable"] == 3
    wrong = client.get(
        reverse("admin:archive_restore_all"), {"key": other, "deletion": deletion, "to": "dlq"}
    )
    assert wrong.status_code == 404


@pytest.mark.skipif(
    "sqlite" not in settings.DATABASES["default"]["ENGINE"],
    reason="query plans are SQLite's; PostgreSQL plans by its statistics",
)
def test_every_count_an_archive_page_makes_is_read_from_an_index(
    admin_user: User, redis_client: redis.Redis
) -> None:
    """At a million rows a count that reads the table takes 0.3-0.6 s (7 s cold): each count the
    archive pages make, with its parameters bound as the page binds them, is planned on an index."""
    deletion = "d" * 32
    ArchivedItem.objects.bulk_create(
        [dlq_row(DLQ, n, deletion=deletion) for n in range(3)] + [dlq_row(DLQ, 9, state=State.RESTORED)]
    )
    executed: list[tuple[str, Any]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append((sql, params))
        return execute(sql, params, many, context)

    client = logged_in(admin_user)
    archive_page, restore_all = reverse("admin:archive"), reverse("admin:archive_restore_all")
    pages = [
        (archive_page, {}),
        (archive_page, {"state": "archived"}),
        (archive_page, {"key": DLQ}),
        (archive_page, {"key": DLQ, "state": "restored"}),
        (archive_page, {"deletion": deletion}),
        (archive_page, {"deletion": deletion, "state": "archived"}),
        (restore_all, {"key": DLQ, "to": "dlq"}),
        (restore_all, {"key": DLQ, "deletion": deletion, "to": "source"}),
        (reverse("admin:job_archive"), {}),
    ]
    with connection.execute_wrapper(record):
        for address, query in pages:
            assert client.get(address, query).status_code == 200, (address, query)
    counts = [(sql, params) for sql, params in executed if "COUNT(" in sql and "console_archiveditem" in sql]
    assert len(counts) >= len(pages), "every page counts its rows"
    with connection.cursor() as cursor:
        for sql, params in counts:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
            from_index = "COVERING INDEX" in plan or "archive_queue_" in plan or "archive_job_id" in plan
            assert from_index and "SCAN console_archiveditem /" not in plan + " /", (sql, params, plan)


def test_the_archive_pages_kinds_are_all_the_row_kinds_once() -> None:
    assert sorted(QUEUE_KINDS + JOB_KINDS) == sorted(ArchivedItem.Kind.values)
    with pytest.raises(ValueError, match="not an archive's kinds"):
        of_kinds(("list", "x' OR 1=1 --"))


def test_archive_pages_read_only_the_head_of_entries_of_megabytes(operator: User) -> None:
    """The database cuts them (archive.with_heads), as Redis cuts them for the DLQ pages: the page
    and a filtered search hold no archived entry whole, and restoring one still moves it whole."""
    body = "x" * (8 * 1024 * 1024)
    head = '{{"original_job": {{"camera_id": "cam{n}"}}, "error": "frame {n} failed", "body": "'
    raws = [(head.format(n=n) + body + '"}').encode() for n in range(3)]
    ids = archived(raws)
    client = logged_in(operator)
    for query in ({}, {"key": DLQ, "camera": "cam1"}):
        tracemalloc.start()
        response = client.get(reverse("admin:archive"), query)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        html = response.content.decode()
        assert response.status_code == 200 and "frame 1 failed" in html, query
        assert peak < 8 * 1024 * 1024, f"{peak:,} bytes at the peak of an archive page of 24 MB of entries"
    assert f"only the first 65,536 of {len(raws[1]):,} bytes were read" in html
    assert "frame 0 failed" not in html, "the filter read the camera before the cut"
    item = client.get(reverse("admin:archive_item", args=[ids[2]])).content.decode()
    assert "frame 2 failed" in item and f"{len(raws[2]):,} bytes" in item
    assert archive.listed(ArchivedItem.objects.get(pk=ids[0])) == (raws[0], None), "a row read whole"
