"""Stream DLQs (``S:dlq`` -> ``S``): delete with an archive, restore, retry-all, on a real Redis.

Services, pages, the API and the dlq command, each role's permissions, and a console process
SIGKILLed at pinned points of a stream delete-all (every entry ends in the DLQ or the archive).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.models import ArchivedItem, AuditEntry
from queues import actions, archive, dlq, streams, views
from queues.scripts import new_token
from tests.conftest import logged_in
from tests.redis_server import RedisServer
from tests.test_dlq_faults import (
    Workers,
    archive_db,
    archive_rows,
    held_at_script,
    wait_until,
    writes_paused,
)
from tests.test_queue_pages import undo_of

pytestmark = pytest.mark.django_db
State, Kind = ArchivedItem.State, ArchivedItem.Kind

DLQ, STREAM = "detections:stream:dlq", "detections:stream"
LIST_DLQ = "dlq:detection_queue"
BINARY = b"\x89PNG\r\n\x1a\n\xff\xfe"


def fields_of(n: int) -> dict[str, str]:
    """A detection moved to the DLQ stream by HSI's move_to_dlq: original fields plus the DLQ's."""
    return {
        "camera_id": f"cam{n % 3}",
        "detection_id": str(n),
        "file_path": f"/export/cam/{n}.jpg",
        "original_message_id": f"1700000000000-{n}",
        "dlq_reason": "max_delivery_exceeded",
        "dlq_timestamp": "1700000100",
        "delivery_count": "3",
    }


def fill(client: redis.Redis, count: int, start: int = 0, key: str = DLQ) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for n in range(start, start + count):
        pipe.xadd(key, fields_of(n))  # type: ignore[arg-type]
    return [streams.as_text(i) for i in pipe.execute()]


def ids_in(client: redis.Redis, key: str = DLQ) -> list[str]:
    rows: Any = client.xrange(key)
    return [streams.as_text(i) for i, _ in rows]


def numbers(client: redis.Redis, key: str) -> list[int]:
    rows: Any = client.xrange(key)
    return [int(fields[b"detection_id"]) for _, fields in rows if b"detection_id" in fields]


def last_fields(client: redis.Redis, key: str) -> dict[bytes, bytes]:
    rows: Any = client.xrevrange(key, count=1)
    return dict(rows[0][1])


def stub(user: User | None = None) -> Any:
    """What the services read from a request: its user and address."""
    return type("Req", (), {"user": user, "META": {"REMOTE_ADDR": "10.0.0.7"}})()


def stream_state(client: redis.Redis) -> dict[str, Any]:
    keys_ = sorted(k.decode() for k in client.scan_iter() if not k.startswith(b"console:"))
    return {
        "redis": {key: client.dump(key) for key in keys_},
        "archive": list(ArchivedItem.objects.values_list("pk", "state")),
    }


def shown_messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def last_message(response: Any) -> str:
    """The message this response added (earlier unread ones wait in the same session too)."""
    return shown_messages(response)[-1]


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


# --- Delete with an archive, restore ------------------------------------------------------------


def test_delete_archives_id_and_exact_fields_then_xdels(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 4)
    found = streams.read(redis_client, DLQ, [ids[0], ids[2]])
    outcome = archive.archive_and_delete_stream(redis_client, DLQ, found, "otto")
    assert (outcome.done, outcome.skipped_count) == (2, 0)
    assert ids_in(redis_client) == [ids[1], ids[3]]
    rows = list(ArchivedItem.objects.order_by("batch_index"))
    assert [(r.kind, r.state, r.entry_id, r.key) for r in rows] == [
        (Kind.STREAM, State.ARCHIVED, ids[0], DLQ),
        (Kind.STREAM, State.ARCHIVED, ids[2], DLQ),
    ]
    assert json.loads(bytes(rows[0].raw)) == {"format": 1, "id": ids[0], "fields": fields_of(0)}
    assert rows[1].size == sum(len(k) + len(v) for k, v in fields_of(2).items())
    assert rows[0].fingerprint == dlq.fingerprint(bytes(rows[0].raw))


def test_entries_gone_before_the_xdel_leave_no_row(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 3)
    found = streams.read(redis_client, DLQ, ids)
    redis_client.xdel(DLQ, ids[1])  # another operator got there first
    outcome = archive.archive_and_delete_stream(redis_client, DLQ, found, "otto")
    assert (outcome.done, dict(outcome.skipped)) == (2, {dlq.STATUS_REASONS["missing"]: 1})
    assert sorted(ArchivedItem.objects.values_list("entry_id", flat=True)) == sorted([ids[0], ids[2]])
    assert not ArchivedItem.objects.exclude(state=State.ARCHIVED).exists()


def test_restore_to_the_dlq_adds_every_field_again_with_a_new_id(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 3)
    archive.archive_and_delete_stream(redis_client, DLQ, streams.read(redis_client, DLQ, ids[:2]), "otto")
    rows = list(ArchivedItem.objects.order_by("id").values_list("pk", flat=True))
    assert archive.restore(redis_client, rows, "rita") == {"restored": 2, "not_restored": 0}
    after = ids_in(redis_client)
    assert after[0] == ids[2] and len(after) == 3 and not set(after[1:]) & set(ids)
    assert numbers(redis_client, DLQ) == [2, 0, 1]
    assert {k.decode(): v.decode() for k, v in last_fields(redis_client, DLQ).items()} == fields_of(1)
    restored = ArchivedItem.objects.filter(state=State.RESTORED)
    assert restored.count() == 2 and set(restored.values_list("restored_to", "restored_by")) == {
        (DLQ, "rita")
    }
    assert archive.restore(redis_client, rows, "rita")["restored"] == 0, "restored only once"
    assert redis_client.xlen(DLQ) == 3


def test_restore_to_the_source_re_adds_original_fields_until_full(
    redis_client: redis.Redis, settings
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 3}
    redis_client.xadd(STREAM, {"camera_id": "busy"})
    ids = fill(redis_client, 4)
    archive.archive_and_delete_stream(redis_client, DLQ, streams.read(redis_client, DLQ, ids), "otto")
    rows = list(ArchivedItem.objects.order_by("id").values_list("pk", flat=True))
    result = archive.restore(redis_client, rows, "rita", to_source=True)
    assert result == {"restored": 2, "not_restored": 2}
    assert redis_client.xlen(STREAM) == 3, "stopped when full; nothing trimmed"
    assert numbers(redis_client, STREAM) == [0, 1]
    assert last_fields(redis_client, STREAM) == {
        b"camera_id": b"cam1",
        b"detection_id": b"1",
        b"file_path": b"/export/cam/1.jpg",
    }
    left = ArchivedItem.objects.filter(state=State.ARCHIVED).order_by("id")
    assert list(left.values_list("entry_id", flat=True)) == ids[2:]
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 10}
    assert archive.restore(redis_client, [r.pk for r in left], "rita", to_source=True)["restored"] == 2
    assert numbers(redis_client, STREAM) == [0, 1, 2, 3]


def test_binary_fields_survive_delete_and_restore_byte_for_byte(redis_client: redis.Redis) -> None:
    entry_id = streams.as_text(
        redis_client.xadd(DLQ, {"camera_id": "porch", "thumb": BINARY, "dlq_reason": "x"})
    )
    archive.archive_and_delete_stream(redis_client, DLQ, streams.read(redis_client, DLQ, [entry_id]), "o")
    row = ArchivedItem.objects.get()
    assert json.loads(bytes(row.raw))["encoding"] == "base64"
    assert redis_client.xlen(DLQ) == 0
    assert archive.restore(redis_client, [row.pk], "o", to_source=True)["restored"] == 1
    assert last_fields(redis_client, STREAM) == {b"camera_id": b"porch", b"thumb": BINARY}


def test_entries_with_only_dlq_fields_cannot_go_to_the_source(redis_client: redis.Redis) -> None:
    entry_id = streams.as_text(redis_client.xadd(DLQ, {"dlq_reason": "x", "delivery_count": "3"}))
    archive.archive_and_delete_stream(redis_client, DLQ, streams.read(redis_client, DLQ, [entry_id]), "o")
    row = ArchivedItem.objects.get()
    assert archive.restore(redis_client, [row.pk], "o", to_source=True) == {"restored": 0, "not_restored": 1}
    assert not redis_client.exists(STREAM) and ArchivedItem.objects.get().state == State.ARCHIVED
    assert archive.restore(redis_client, [row.pk], "o")["restored"] == 1, "it can go back to its DLQ"


def test_reconcile_fences_stream_deletes_that_never_ran_and_trusts_receipts(
    redis_client: redis.Redis,
) -> None:
    ids = fill(redis_client, 3)
    entries = streams.read(redis_client, DLQ, ids)

    def pending(token: str, index: int, entry: streams.Stored) -> None:
        raw = entry.archived()
        ArchivedItem.objects.create(
            key=DLQ, kind=Kind.STREAM, entry_id=entry.id, raw=raw, fingerprint="f", size=1,
            deleted_by="x", operation=token, batch_index=index,
        )  # fmt: skip

    never_ran, ran = new_token(), new_token()
    pending(never_ran, 0, entries[0])  # crashed before its script: the entry is still in the DLQ
    pending(ran, 0, entries[1])  # crashed after its script deleted the entry
    pending(ran, 1, streams.Stored("1-1", ((b"a", b"b"),)))  # ... which did not find this one
    assert streams.delete_entries(redis_client, DLQ, [entries[1], streams.Stored("1-1", ())], ran).done == 1
    assert archive.reconcile(redis_client) == 3
    assert list(ArchivedItem.objects.values_list("entry_id", "state")) == [(ids[1], State.ARCHIVED)]
    late = streams.delete_entries(redis_client, DLQ, [entries[0]], never_ran)
    assert late.statuses == ["aborted"] and late.done == 0
    assert ids_in(redis_client) == [ids[0], ids[2]], "the fenced call can no longer delete"


def test_reconcile_settles_a_stream_restore_that_crashed(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 2)
    archive.archive_and_delete_stream(redis_client, DLQ, streams.read(redis_client, DLQ, ids), "otto")
    token = new_token()
    rows = list(ArchivedItem.objects.order_by("batch_index"))
    for index, row in enumerate(rows):
        ArchivedItem.objects.filter(pk=row.pk).update(
            state=State.RESTORING,
            operation=token,
            batch_index=index,
            restored_to=DLQ,
            restored_at=timezone.now(),
        )
    entry = streams.Stored.from_archive(bytes(rows[0].raw))
    assert streams.push_entries(redis_client, DLQ, [entry.fields], 0, token) == 1  # then the crash
    assert archive.reconcile(redis_client) == 2
    states = dict(ArchivedItem.objects.values_list("entry_id", "state"))
    assert states == {ids[0]: State.RESTORED, ids[1]: State.ARCHIVED}
    assert numbers(redis_client, DLQ) == [0]


def test_a_wrong_typed_key_is_refused_with_a_sentence_and_nothing_changes(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 1)
    redis_client.rpush(STREAM, b"a list")
    with pytest.raises(redis.ResponseError, match="detections:stream is a list, not a stream"):
        streams.retry(redis_client, DLQ, ids)
    with pytest.raises(redis.ResponseError, match="is a list, not a stream: nothing was added"):
        streams.push_entries(redis_client, STREAM, [((b"a", b"b"),)])
    assert ids_in(redis_client) == ids and redis_client.llen(STREAM) == 1


def test_a_confirm_page_for_a_wrong_typed_source_says_why(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    ids = fill(redis_client, 1)
    redis_client.rpush(STREAM, b"a list")
    for page in (
        operator_client.get(url("stream_selected", DLQ, "retry"), {"id": ids}),
        operator_client.get(url("stream_all", DLQ, "retry")),
    ):
        assert page.status_code == 503
        assert "detections:stream is a list, not a stream: nothing was done" in page.content.decode()
    assert ids_in(redis_client) == ids


# --- Actions and their audit --------------------------------------------------------------------


def test_every_stream_action_is_audited(redis_client: redis.Redis, operator: User) -> None:
    ids = fill(redis_client, 6)
    request = stub(operator)
    outcome, audit_id = actions.delete_stream(redis_client, DLQ, [ids[0], "9-9"], request=request)
    entry = AuditEntry.objects.get(pk=audit_id)
    assert (entry.action, entry.key, entry.count, entry.username, entry.ip_address) == (
        "dlq.delete", DLQ, 1, "otto", "10.0.0.7"
    )  # fmt: skip
    assert entry.detail["entry_ids"] == [ids[0]] and entry.detail["snapshot"][0]["fields"] == fields_of(0)
    assert entry.detail["skipped_reasons"] == {"not found (already retried or deleted?)": 1}
    assert ArchivedItem.objects.get().deleted_by == "otto"
    _, audit_id = actions.retry_stream(redis_client, DLQ, [ids[1]], request=request)
    entry = AuditEntry.objects.get(pk=audit_id)
    assert (entry.action, entry.count, entry.detail["target"]) == ("dlq.retry", 1, STREAM)
    outcome, position, kept, audit_id = actions.act_on_stream(
        redis_client, DLQ, verb="retry", request=request
    )
    entry = AuditEntry.objects.get(pk=audit_id)
    assert (outcome.done, position, kept) == (4, ids[5], 0)
    assert (entry.action, entry.count, entry.detail["position"]) == ("dlq.retry_all", 4, ids[5])
    result = actions.restore(redis_client, [ArchivedItem.objects.get().pk], to_source=False, request=request)
    assert result["restored"] == 1
    assert AuditEntry.objects.filter(action="archive.restore", count=1).exists()


# --- Pages ---------------------------------------------------------------------------------------


@pytest.fixture
def operator_client(operator: User) -> Client:
    return logged_in(operator)


def chunk(client: Client, verb: str, data: dict[str, Any], *, as_json: bool = True) -> Any:
    headers: dict[str, Any] = {"HTTP_ACCEPT": "application/json"} if as_json else {}
    return client.post(url("stream_all", DLQ, verb), data, **headers)


def test_operator_sees_stream_actions_and_a_viewer_does_not(
    redis_client: redis.Redis, operator: User, viewer: User
) -> None:
    fill(redis_client, 3)
    html = logged_in(operator).get(url("queue_items", DLQ)).content.decode()
    assert len(re.findall(r'name="id" value="\d+-\d+"', html)) == 3
    for control in ("Retry selected", "Delete selected", "Retry all…", "Delete all…"):
        assert control in html
    assert url("stream_all", DLQ, "delete") in html and url("queue_selection", DLQ) in html
    assert '<button type="submit" class="button queues-danger" name="then" value="delete">' in html
    html = logged_in(viewer).get(url("queue_items", DLQ)).content.decode()
    for control in ('name="id"', "Retry selected", "Delete selected", "Retry all", "Delete all"):
        assert control not in html


def test_delete_selected_confirms_then_archives_once(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    ids = fill(redis_client, 4)
    before = stream_state(redis_client)
    page = operator_client.get(url("stream_selected", DLQ, "delete"), {"id": [ids[1], ids[3], "junk"]})
    html = page.content.decode()
    assert page.status_code == 200 and f"Delete 2 selected entries of {DLQ}." in html
    assert (
        html.count('type="hidden" name="id"') == 2 and "archive" in html and "Yes, delete 2 entries" in html
    )
    assert stream_state(redis_client) == before, "the confirmation page changes nothing"
    data = {"id": [ids[1], ids[3]], "nonce": "del-1", "back": "size=10"}
    done = operator_client.post(url("stream_selected", DLQ, "delete"), data)
    assert done.status_code == 302 and done["Location"] == url("queue_items", DLQ) + "?size=10"
    assert shown_messages(done) == [undo_of(f"Deleted 2 (archived) of {DLQ}.")]
    assert ids_in(redis_client) == [ids[0], ids[2]]
    assert sorted(ArchivedItem.objects.values_list("entry_id", flat=True)) == [ids[1], ids[3]]
    deletion = ArchivedItem.objects.values_list("deletion", flat=True)[0]
    scope = {"key": DLQ, "to": "dlq", "deletion": deletion, "nonce": "undo-1", "start": "0"}
    undone = operator_client.post(reverse("admin:archive_restore_all"), scope)
    assert shown_messages(undone)[-1] == f"Restored 2 archived entries of {DLQ} to {DLQ}."
    assert len(ids_in(redis_client)) == 4 and numbers(redis_client, DLQ)[2:] == [1, 3], "re-added, new ids"
    again = operator_client.post(url("stream_selected", DLQ, "delete"), data)
    assert last_message(again) == views.DUPLICATE
    assert ArchivedItem.objects.count() == 2 and AuditEntry.objects.filter(action="dlq.delete").count() == 1


def test_retry_selected_confirms_then_retries(redis_client: redis.Redis, operator_client: Client) -> None:
    ids = fill(redis_client, 3)
    page = operator_client.get(
        url("stream_selected", DLQ, "retry"), {"id": [ids[0]], "back": "after=" + ids[0]}
    )
    assert f"Retry 1 selected entry of {DLQ} to {STREAM}." in page.content.decode()
    assert (
        f"{STREAM} can take 10,000 more entries before HSI's XADD MAXLEN 10,000 would trim"
        in page.content.decode()
    )
    done = operator_client.post(url("stream_selected", DLQ, "retry"), {"id": [ids[0]], "nonce": "r-1"})
    assert shown_messages(done) == [f"Retried 1 of {DLQ} to {STREAM}."]
    assert numbers(redis_client, STREAM) == [0] and ids_in(redis_client) == ids[1:]
    gone = operator_client.get(url("stream_selected", DLQ, "retry"), {"id": [ids[0]]})
    assert gone.status_code == 302
    assert last_message(gone) == f"None of the selected entries is still in {DLQ}."
    empty = operator_client.post(url("stream_selected", DLQ, "retry"), {"id": ["x"], "nonce": "r-2"})
    assert last_message(empty) == "Select between 1 and 100 stream entries first."


def test_retry_all_runs_in_chunks_with_progress_to_the_end(
    redis_client: redis.Redis, operator_client: Client, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setattr(streams, "BATCH_SIZE", 3)
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0}  # one batch per request
    ids = fill(redis_client, 8)
    confirm = operator_client.get(url("stream_all", DLQ, "retry"))
    html = confirm.content.decode()
    assert f"Retry all 8 entries of {DLQ} to {STREAM}." in html and 'name="start" value="-"' in html
    first = chunk(operator_client, "retry", {"nonce": "a-0", "start": "-"}, as_json=False)
    assert first.status_code == 200 and "queues/progress.html" in [t.name for t in first.templates]
    page = first.content.decode()
    assert f'name="start" value="{ids[2]}"' in page and url("stream_all", DLQ, "retry") in page
    assert "3 of 8 entries dealt with" in page
    data = {"nonce": "a-1", "start": ids[2], "tally": first.context["state"].tally.dumps()}
    replies = []
    while True:
        reply = chunk(operator_client, "retry", data).json()
        replies.append(reply)
        if reply["finished"]:
            break
        data = {"nonce": reply["nonce"], "start": reply["start"], "tally": reply["tally"]}
    assert [r["handled"] for r in replies] == [6, 8] and replies[-1]["planned"] == 8
    assert replies[-1]["summary"] == f"Retried 8 of {DLQ} to {STREAM}." and replies[-1]["level"] == "success"
    assert numbers(redis_client, STREAM) == list(range(8)) and redis_client.xlen(DLQ) == 0
    assert AuditEntry.objects.filter(action="dlq.retry_all").count() == 3


def test_retry_all_stops_when_the_stream_is_full(
    redis_client: redis.Redis, operator_client: Client, settings
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 5}
    fill(redis_client, 8)
    done = chunk(operator_client, "retry", {"nonce": "f-1", "start": "-"}, as_json=False)
    assert done.status_code == 302
    assert shown_messages(done) == [
        f"Retried 5 of {DLQ} to {STREAM}; stopped: {STREAM} is full (QUEUE_MAX_SIZE 5); 3 not examined yet."
    ]
    assert redis_client.xlen(STREAM) == 5 and numbers(redis_client, DLQ) == [5, 6, 7]


def test_delete_all_archives_every_entry_and_duplicates_are_refused(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    ids = fill(redis_client, 7)
    confirm = operator_client.get(url("stream_all", DLQ, "delete"))
    assert f"Delete all 7 entries of {DLQ}." in confirm.content.decode()
    reply = chunk(operator_client, "delete", {"nonce": "d-1", "start": "-"}).json()
    assert reply["finished"] and reply["summary"] == f"Deleted 7 (archived) of {DLQ}."
    assert redis_client.xlen(DLQ) == 0
    (deletion,) = set(ArchivedItem.objects.values_list("deletion", flat=True))
    assert reply["undo"] == reverse("admin:archive") + f"?deletion={deletion}"
    assert sorted(
        ArchivedItem.objects.filter(state=State.ARCHIVED).values_list("entry_id", flat=True)
    ) == sorted(ids)
    again = chunk(operator_client, "delete", {"nonce": "d-1", "start": "-"})
    assert again.status_code == 409 and again.json()["error"] == views.DUPLICATE
    bad = chunk(operator_client, "delete", {"nonce": "d-2", "start": "x-y"})
    assert bad.status_code == 400 and "'start' must be a stream entry id" in bad.json()["detail"]
    assert AuditEntry.objects.filter(action="dlq.delete_all").count() == 1


ACTIONS = [
    ("get", "stream_selected", "retry"),
    ("get", "stream_selected", "delete"),
    ("post", "stream_selected", "retry"),
    ("post", "stream_selected", "delete"),
    ("get", "stream_all", "retry"),
    ("get", "stream_all", "delete"),
    ("post", "stream_all", "retry"),
    ("post", "stream_all", "delete"),
]


def test_viewer_gets_403_on_every_stream_action_and_nothing_changes(
    redis_client: redis.Redis, viewer: User
) -> None:
    ids = fill(redis_client, 3)
    client = logged_in(viewer)
    before = stream_state(redis_client)
    for method, name, verb in ACTIONS:
        response = getattr(client, method)(url(name, DLQ, verb), {"id": ids, "nonce": "v", "start": "-"})
        assert response.status_code == 403, (method, name, verb)
    assert stream_state(redis_client) == before
    assert not AuditEntry.objects.exists() and not ArchivedItem.objects.exists()


def test_anonymous_and_roleless_are_sent_to_login(redis_client: redis.Redis, roleless: User) -> None:
    ids = fill(redis_client, 2)
    for client in (Client(), logged_in(roleless)):
        for method, name, verb in ACTIONS:
            response = getattr(client, method)(url(name, DLQ, verb), {"id": ids, "nonce": "n"})
            assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert ids_in(redis_client) == ids


def test_stream_actions_on_other_keys_or_verbs_are_404(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    for target in (
        url("stream_selected", LIST_DLQ, "retry"),
        url("stream_all", STREAM, "retry"),
        url("stream_all", DLQ, "explode"),
        url("stream_selected", "job:abc", "delete"),
    ):
        assert operator_client.get(target, {"id": "1-0"}).status_code == 404, target


def test_archive_pages_show_and_restore_stream_entries(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    ids = fill(redis_client, 2)
    operator_client.post(url("stream_selected", DLQ, "delete"), {"id": ids, "nonce": "x-1"})
    listing = operator_client.get(url("archive")).content.decode()
    assert f'<code title="stream entry id">{ids[0]}</code>' in listing
    row = ArchivedItem.objects.get(entry_id=ids[0])
    detail = operator_client.get(url("archive_item", row.pk)).content.decode()
    assert "What failed" in detail and "max_delivery_exceeded" in detail and "/export/cam/0.jpg" in detail
    assert "missing original_job" not in detail
    done = operator_client.post(url("archive_restore"), {"id": [row.pk], "to": "source", "nonce": "x-2"})
    assert shown_messages(done) == ["Restored 1 archived entries to their source queue."]
    assert last_fields(redis_client, STREAM)[b"detection_id"] == b"0"
    assert b"dlq_reason" not in last_fields(redis_client, STREAM)


# --- API ------------------------------------------------------------------------------------------


def api(kind: str, key: str = DLQ) -> str:
    return f"/api/dlq/{quote(key, safe='')}/{kind}/"


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json")


def test_api_deletes_and_retries_stream_entries_by_id(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    ids = fill(redis_client, 5)
    deleted = post(operator_client, api("delete"), {"ids": [ids[0], ids[1], "99-0"]})
    assert deleted.status_code == 200
    body = deleted.json()
    assert set(body) == {"deleted", "archived", "skipped", "skipped_reasons", "remaining", "position"} | {
        "unmatched",
        "put_back",
        "audit_id",
        "detail",
        "deletion",
    }
    assert set(ArchivedItem.objects.values_list("deletion", flat=True)) == {body["deletion"]}
    assert (body["deleted"], body["archived"], body["skipped"], body["position"]) == (2, 2, 1, None)
    assert AuditEntry.objects.get(pk=body["audit_id"]).action == "dlq.delete"
    retried = post(operator_client, api("retry"), {"ids": [ids[2]], "nonce": "api-r"})
    body = retried.json()
    assert (body["retried"], body["target"], body["full"], body["skipped_reasons"]) == (1, STREAM, False, {})
    assert numbers(redis_client, STREAM) == [2] and ids_in(redis_client) == ids[3:]
    again = post(operator_client, api("retry"), {"ids": [ids[2]], "nonce": "api-r"})
    assert again.status_code == 409 and again.json()["error"] == "duplicate_submission"
    archived = operator_client.get("/api/archive/").json()["items"]
    assert {(a["kind"], a["entry_id"]) for a in archived} == {("stream", ids[0]), ("stream", ids[1])}
    pks = [a["id"] for a in archived]
    restored = post(operator_client, "/api/archive/restore/", {"ids": pks, "to_source": True})
    assert restored.json() == {"restored": 2, "not_restored": 0}
    assert sorted(numbers(redis_client, STREAM)) == [0, 1, 2]


def test_api_retry_all_resumes_after_the_position(
    redis_client: redis.Redis, operator_client: Client, settings
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 4}
    ids = fill(redis_client, 6)
    first = post(operator_client, api("retry"), {"all": True}).json()
    assert (first["retried"], first["full"], first["remaining"], first["position"]) == (4, True, 2, ids[3])
    assert first["detail"].endswith(f"{STREAM} is full (QUEUE_MAX_SIZE 4); 2 not examined yet.")
    redis_client.delete(STREAM)
    rest = post(operator_client, api("retry"), {"all": True, "after": first["position"]}).json()
    assert (rest["retried"], rest["full"], rest["remaining"], rest["position"]) == (2, False, 0, ids[5])
    assert numbers(redis_client, STREAM) == [4, 5] and redis_client.xlen(DLQ) == 0
    everything = post(operator_client, api("delete"), {"all": True, "after": "-"}).json()
    assert (everything["deleted"], everything["remaining"]) == (0, 0)


@pytest.mark.parametrize(
    ("key", "body", "words"),
    [
        (DLQ, {"ids": ["0:0123456789abcdef0123"]}, "is not a stream entry id"),
        (DLQ, {"ids": ["99999999999999999999-0"]}, "is not a stream entry id"),
        (DLQ, {"all": True, "filter": {"since": "yesterday"}}, "'since' must be a date and time"),
        (DLQ, {"all": True, "start": 5}, "continues from after"),
        (DLQ, {"all": True, "after": "1-x"}, "after: "),
        (DLQ, {"all": True, "after": "99999999999999999999-0"}, "below 2^64"),
        (DLQ, {"ids": ["1-0"], "after": "1-0"}, "after only applies with all: true"),
        (LIST_DLQ, {"all": True, "after": "1-0"}, "after applies to stream DLQs only"),
        (STREAM, {"all": True}, "not a dead-letter queue"),
    ],
)
def test_api_explains_bad_stream_bodies_and_changes_nothing(
    redis_client: redis.Redis, operator_client: Client, key: str, body: dict[str, Any], words: str
) -> None:
    ids = fill(redis_client, 2)
    response = post(operator_client, api("retry", key), {**body, "nonce": "same"})
    assert response.status_code == 400 and words in response.json()["detail"], response.json()
    assert ids_in(redis_client) == ids and not AuditEntry.objects.exists()
    ok = post(operator_client, api("retry"), {"ids": ids[:1], "nonce": "same"})
    assert ok.status_code == 200, "a refused body did not use up its nonce"


def test_api_viewer_gets_403_and_nothing_changes(redis_client: redis.Redis, viewer_client: Client) -> None:
    ids = fill(redis_client, 2)
    before = stream_state(redis_client)
    for kind in ("retry", "delete"):
        for body in ({"ids": ids}, {"all": True}):
            response = post(viewer_client, api(kind), body)
            assert response.status_code == 403 and response.json()["error"] == "permission_denied"
    assert stream_state(redis_client) == before and not AuditEntry.objects.exists()


def test_openapi_schema_describes_stream_positions(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(schema)
    )
    components = json.loads(schema.read_text())["components"]["schemas"]
    assert components["RetryResult"]["properties"]["position"]["oneOf"] == [
        {"type": "integer"},
        {"type": "string"},
    ]
    assert "entry id" in components["Action"]["properties"]["after"]["description"]
    assert {"kind", "entry_id"} <= set(components["ArchivedRow"]["properties"])


# --- manage.py dlq --------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("dlq", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_dlq_command_retries_and_deletes_stream_dlqs(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 5)
    deleted = run("delete", DLQ, "--ids", ids[0]).splitlines()
    deletion = ArchivedItem.objects.get().deletion
    undo = f"Undo: manage.py dlq restore {DLQ} --deletion {deletion}"
    assert deleted == [f"Deleted 1 (archived) of {DLQ}.", undo]
    assert run("retry", DLQ, "--ids", ids[1], ids[1]).strip() == f"Retried 1 of {DLQ} to {STREAM}."
    assert run("retry", DLQ, "--all", "--camera", "cam0").strip() == (
        f"Retried 1 of {DLQ} to {STREAM}; 2 did not match the filter (left in place)."
    )
    assert numbers(redis_client, DLQ) == [2, 4] and numbers(redis_client, STREAM) == [1, 3]
    assert run("retry", DLQ, "--all").strip() == f"Retried 2 of {DLQ} to {STREAM}."
    assert redis_client.xlen(DLQ) == 0 and numbers(redis_client, STREAM) == [1, 3, 2, 4]
    assert AuditEntry.objects.filter(username="system").count() == 4
    for args, words in (
        (("retry", DLQ, "--all", "--since", "soon"), "'since' must be a date and time"),
        (("delete", DLQ, "--ids", "abc"), "is not a stream entry id"),
        (("show", DLQ), "show and export handle lists only"),
    ):
        with pytest.raises(CommandError, match=re.escape(words)):
            run(*args)


# --- A console process killed mid stream delete-all -----------------------------------------------

# One console process: sets Django up from the environment, acts, prints a JSON summary.
WORKER = """
import json, sys

import django

django.setup()

from console.redis import get_redis
from queues import archive, streams

mode, key = sys.argv[1], sys.argv[2]
client = get_redis()
client.ping()
if mode == "stream-archive-all":
    def action(c, k, e):
        return archive.archive_and_delete_stream(c, k, e, "tester")

    outcome, position, kept = streams.sweep(client, key, action, budget_seconds=600)
    result = {**outcome.as_dict(), "position": position}
elif mode == "reconcile":
    from console.models import ArchivedItem

    pending = ArchivedItem.objects.filter(state="pending").count()
    result = {"pending": pending, "settled": archive.reconcile(client)}
else:
    raise SystemExit(f"unknown mode {mode}")
print(json.dumps(result))
"""


class StreamWorkers(Workers):
    script = WORKER


@pytest.fixture
def stream_workers(tmp_path: Path) -> Iterator[StreamWorkers]:
    pool = StreamWorkers(tmp_path)
    try:
        yield pool
    finally:
        pool.kill_all()


Entry = tuple[str, tuple[tuple[bytes, bytes], ...]]


def in_stream(client: redis.Redis) -> Counter[Entry]:
    found: Counter[Entry] = Counter()
    after = "-"
    while batch := streams.entries_after(client, DLQ, after, 5000):
        found.update((e.id, e.fields) for e in batch)
        after = batch[-1].id
    return found


def archived_entries(database: Path) -> Counter[Entry]:
    entries = (streams.Stored.from_archive(raw) for raw in archive_rows(database, "archived"))
    return Counter((e.id, e.fields) for e in entries)


def pending_ids(database: Path) -> list[str]:
    with closing(sqlite3.connect(database, timeout=30)) as db:
        rows = db.execute("SELECT entry_id FROM console_archiveditem WHERE state = 'pending'")
        return [entry_id for (entry_id,) in rows]


def check_dlq_or_archive(client: redis.Redis, database: Path, originals: Counter[Entry]) -> None:
    """Every original entry (id and exact fields) is in exactly one place: the DLQ or the archive."""
    assert len(archive_rows(database)) == len(archive_rows(database, "archived")), "rows left unsettled"
    where = in_stream(client) + archived_entries(database)
    assert originals - where == Counter(), "entries in neither the DLQ nor the archive"
    assert where - originals == Counter(), "entries duplicated or unknown"


@pytest.mark.timeout(240)
def test_console_killed_mid_stream_delete_leaves_each_entry_in_dlq_or_archive(
    start_server: Callable[..., RedisServer], stream_workers: StreamWorkers, tmp_path: Path
) -> None:
    total, batch = 20_000, streams.BATCH_SIZE
    server = start_server()
    client = server.client()
    database, database_url = archive_db(stream_workers, server, tmp_path)
    for start in range(0, total, 2000):
        fill(client, 2000, start)
    client.xadd(DLQ, {"camera_id": "porch", "thumb": BINARY, "dlq_reason": "x"})  # not UTF-8
    originals = in_stream(client)
    assert len(originals) == total + 1

    def spawn() -> subprocess.Popen[bytes]:
        return stream_workers.spawn(
            "stream-archive-all", DLQ, redis_url=server.url, database_url=database_url
        )

    def reconcile(pending: int) -> None:
        summary = stream_workers.run("reconcile", DLQ, redis_url=server.url, database_url=database_url)
        assert summary == {"pending": pending, "settled": pending}
        check_dlq_or_archive(client, database, originals)

    # 1. Killed after its rows are committed as pending, before its script call deletes anything.
    with writes_paused(client):
        worker = spawn()
        held_at_script(client, database, worker, stream_workers, batch)
        worker.kill()
        worker.wait(10)
    pending = pending_ids(database)
    assert len(pending) == batch and client.xlen(DLQ) == total + 1, "the kill was not before the XDEL"
    assert len(streams.read(client, DLQ, pending)) == batch
    reconcile(batch)
    assert client.xlen(DLQ) == total + 1 and not archive_rows(database)

    # 2. Killed after the script deleted its batch, before the rows are settled (SQLite held locked).
    with writes_paused(client):
        worker = spawn()
        held_at_script(client, database, worker, stream_workers, batch)
        with closing(sqlite3.connect(database, isolation_level=None)) as lock:
            lock.execute("BEGIN EXCLUSIVE")
            client.client_unpause()
            wait_until(lambda: client.xlen(DLQ) == total + 1 - batch, 30, "the script call to delete")
            worker.kill()
            worker.wait(10)
            lock.execute("ROLLBACK")
    pending = pending_ids(database)
    assert len(pending) == batch and client.xlen(DLQ) == total + 1 - batch, "the kill was not after the XDEL"
    assert streams.read(client, DLQ, pending) == []
    reconcile(batch)
    assert len(archive_rows(database, "archived")) == batch

    # 3. Killed wherever it happens to be once a few thousand entries are gone.
    start = client.xlen(DLQ)
    worker = spawn()
    wait_until(lambda: stream_workers.alive(worker) and client.xlen(DLQ) <= start - 3_000, 60, "deletes")
    worker.kill()
    worker.wait(10)
    left = client.xlen(DLQ)
    assert 0 < left < start, "the kill did not land mid-way"
    reconcile(len(archive_rows(database, "pending")))
    assert len(archive_rows(database, "archived")) == total + 1 - left

    # 4. A fresh run finishes the job: the DLQ ends empty, every entry archived exactly once.
    done = stream_workers.run("stream-archive-all", DLQ, redis_url=server.url, database_url=database_url)
    assert done["done"] == left and done["remaining"] == 0 and client.xlen(DLQ) == 0
    check_dlq_or_archive(client, database, originals)
    binary = next(entry for entry in originals if (b"thumb", BINARY) in entry[1])
    assert archived_entries(database)[binary] == 1, "the non-UTF-8 entry was archived byte for byte"
