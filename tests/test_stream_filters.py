"""Stream DLQ filters (reason, camera, failure time): bounded reads, pages, bulk actions, the API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from console.models import ArchivedItem, AuditEntry
from queues import streams
from queues.actions import Filters
from tests.conftest import logged_in
from tests.test_stream_actions import DLQ, STREAM, chunk, fields_of, ids_in, numbers, url

pytestmark = pytest.mark.django_db


def add(client: redis.Redis, fields: dict[Any, Any], key: str = DLQ) -> str:
    return streams.as_text(client.xadd(key, fields))


def fill_cameras(client: redis.Redis, cameras: list[str]) -> list[str]:
    """One DLQ entry per camera name, numbered by position (``detection_id``)."""
    pipe = client.pipeline(transaction=False)
    for n, camera in enumerate(cameras):
        fields: dict[Any, Any] = {**fields_of(n), "camera_id": camera}
        pipe.xadd(DLQ, fields)
    return [streams.as_text(i) for i in pipe.execute()]


def test_a_search_is_bounded_and_continues_after_the_last_entry_it_examined(
    redis_client: redis.Redis,
) -> None:
    cameras = ["porch" if n in (10, 4_999, 5_500) else "garage" for n in range(6_000)]
    ids = fill_cameras(redis_client, cameras)
    porch = Filters(camera="porch").select
    first = streams.search(redis_client, DLQ, porch, limit=50)
    assert [e.id for e in first.entries] == [ids[10], ids[4_999]]
    assert (first.examined, first.total, first.complete, first.last_id) == (5_000, 6_000, False, ids[4_999])
    rest = streams.search(redis_client, DLQ, porch, after=first.last_id or "-", limit=50)
    assert [e.id for e in rest.entries] == [ids[5_500]] and rest.complete and rest.examined == 1_000
    newest = streams.search(redis_client, DLQ, porch, newest_first=True, limit=1)
    assert [e.id for e in newest.entries] == [ids[5_500]] and not newest.complete
    counted = streams.search(redis_client, DLQ, porch)  # no limit: it only counts
    assert (counted.matched, counted.entries, counted.examined) == (2, [], 5_000)


def test_reason_camera_and_failure_time_select_entries(redis_client: redis.Redis) -> None:
    late = add(
        redis_client, {**fields_of(1), "dlq_reason": "Poison_Message", "dlq_timestamp": "1700009000.5"}
    )
    early = add(redis_client, {**fields_of(2), "dlq_timestamp": "1700000000"})
    no_time = add(redis_client, {"camera_id": "cam2", "dlq_reason": "max_delivery_exceeded"})
    entries = {e.id: e for e in streams.page(redis_client, DLQ).entries}

    def chosen(**query: str) -> list[str]:
        return [i for i in (late, early, no_time) if Filters.from_query(query).select(entries[i])]

    assert chosen(q="poison") == [late]  # the reason, case-insensitively
    assert chosen(q="delivery") == [early, no_time]
    assert chosen(camera="cam2") == [early, no_time]
    assert chosen(since="2023-11-14T22:30") == [late, no_time]  # 1700001000; no timestamp: its id's time
    assert chosen(until="2023-11-14T22:30") == [early]
    assert entries[no_time].failed_at == entries[no_time].added_at == int(no_time.split("-")[0]) / 1000


def test_stream_pages_choose_size_and_order_and_a_stream_dlq_filters(
    redis_client: redis.Redis, viewer: User, operator: User
) -> None:
    ids = fill_cameras(redis_client, ["yard", "porch", "yard", "porch", "porch"])
    for n in range(3):
        redis_client.xadd(STREAM, fields_of(n))  # type: ignore[arg-type]
    work = logged_in(viewer).get(url("queue_items", STREAM), {"size": "10", "order": "newest"})
    html = work.content.decode()
    assert 'data-testid="view-form"' in html and '<option value="10" selected>' in html
    assert 'name="camera"' not in html, "a work stream has no DLQ filters"
    shown = [e.id for e, _ in work.context["stream_rows"]]
    assert len(shown) == 3 and shown == sorted(shown, reverse=True), "newest first"

    client = logged_in(operator)
    page = client.get(url("queue_items", DLQ), {"camera": "porch", "size": "10"})
    html = page.content.decode()
    assert [e.id for e, _ in page.context["stream_rows"]] == [ids[1], ids[3], ids[4]]
    assert "Searched 5 of 5: 3 match." in html and "Reason" in html
    assert "Retry all matching…" in html and "Delete all matching…" in html
    two = client.get(url("queue_items", DLQ), {"camera": "porch", "size": "10", "q": "nothing like it"})
    assert two.context["stream_rows"] == [] and "Searched 5 of 5: 0 match." in two.content.decode()
    bad = client.get(url("queue_items", DLQ), {"since": "soon"})
    assert bad.status_code == 200
    assert "&#x27;since&#x27; must be a date and time like 2026-02-11T22:04" in bad.content.decode()


def test_a_filtered_page_of_matches_links_to_the_rest(redis_client: redis.Redis, viewer: User) -> None:
    ids = fill_cameras(redis_client, ["porch"] * 12)
    page = logged_in(viewer).get(url("queue_items", DLQ), {"camera": "porch", "size": "10"})
    html = page.content.decode()
    assert "Searched 10 of 12: 10 match; showing the first 10." in html
    assert html.count(f"Continue searching after entry {ids[9]} →") == 2  # above and below the rows
    rest = logged_in(viewer).get(url("queue_items", DLQ), {"camera": "porch", "size": "10", "after": ids[9]})
    assert [e.id for e, _ in rest.context["stream_rows"]] == ids[10:]
    newest = logged_in(viewer).get(
        url("queue_items", DLQ), {"camera": "porch", "size": "10", "order": "newest"}
    )
    assert f"Continue searching before entry {ids[2]} →" in newest.content.decode()


def test_retry_all_matching_moves_only_matches_with_exact_progress(
    redis_client: redis.Redis, operator: User, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setattr(streams, "BATCH_SIZE", 3)
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0}  # one batch per request
    ids = fill_cameras(redis_client, ["cam0", "cam1", "cam2"] * 3)
    client = logged_in(operator)
    confirm = client.get(url("stream_all", DLQ, "retry"), {"camera": "cam1"})
    html = confirm.content.decode()
    assert f"Retry all 3 entries of {DLQ} matching camera “cam1” to {STREAM}." in html
    assert '<input type="hidden" name="camera" value="cam1">' in html and "Yes, retry 3 entries" in html
    data: dict[str, Any] = {"nonce": "m-0", "start": "-", "camera": "cam1"}
    replies = []
    while True:
        reply = chunk(client, "retry", data).json()
        replies.append(reply)
        if reply["finished"]:
            break
        data = {**data, "nonce": reply["nonce"], "start": reply["start"], "tally": reply["tally"]}
    assert [(r["handled"], r["planned"]) for r in replies] == [(3, 9), (6, 9), (9, 9)]
    assert replies[-1]["summary"] == (
        f"Retried 3 of {DLQ} to {STREAM}; 6 did not match the filter (left in place)."
    )
    assert numbers(redis_client, STREAM) == [1, 4, 7]
    assert ids_in(redis_client) == [ids[i] for i in (0, 2, 3, 5, 6, 8)], "the rest stay, in order"
    audits = AuditEntry.objects.filter(action="dlq.retry_all")
    assert all(a.detail["filters"] == {"camera": "cam1"} for a in audits)


def test_delete_all_matching_archives_only_matches(redis_client: redis.Redis, operator: User) -> None:
    ids = fill_cameras(redis_client, ["yard", "porch", "yard"])
    reply = chunk(logged_in(operator), "delete", {"nonce": "d-0", "start": "-", "camera": "yard"}).json()
    assert reply["finished"]
    assert reply["summary"] == f"Deleted 2 (archived) of {DLQ}; 1 did not match the filter (left in place)."
    assert ids_in(redis_client) == [ids[1]]
    assert sorted(ArchivedItem.objects.values_list("entry_id", flat=True)) == [ids[0], ids[2]]


def test_the_api_retries_all_matching_a_filter(redis_client: redis.Redis, operator: User) -> None:
    fill_cameras(redis_client, ["yard", "porch", "yard", "porch"])
    body = {"all": True, "filter": {"camera": "porch"}}
    reply = logged_in(operator).post(
        f"/api/dlq/{DLQ.replace(':', '%3A')}/retry/", json.dumps(body), content_type="application/json"
    )
    assert reply.status_code == 200, reply.content
    assert (reply.json()["retried"], reply.json()["remaining"]) == (2, 0)
    assert numbers(redis_client, STREAM) == [1, 3] and numbers(redis_client, DLQ) == [0, 2]


def test_a_viewer_cannot_act_on_matching_entries(redis_client: redis.Redis, viewer: User) -> None:
    ids = fill_cameras(redis_client, ["yard"])
    client: Client = logged_in(viewer)
    for verb in ("retry", "delete"):
        assert client.get(url("stream_all", DLQ, verb), {"camera": "yard"}).status_code == 403
        assert chunk(client, verb, {"nonce": f"v-{verb}", "start": "-", "camera": "yard"}).status_code == 403
    assert ids_in(redis_client) == ids


# --- One stream entry in full ---------------------------------------------------------------------


def test_a_stream_dlq_entry_opens_in_full_with_its_failure(
    redis_client: redis.Redis, viewer: User, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "DISPLAY_LIMIT": 100}
    long_path = "/export/cam/" + "x" * 300 + ".jpg"
    entry_id = add(
        redis_client, {**fields_of(7), "file_path": long_path, "note": "<script>alert(1)</script>"}
    )
    path = url("stream_entry", DLQ, entry_id)
    listing = logged_in(viewer).get(url("queue_items", DLQ)).content.decode()
    assert f'href="{path}"' in listing, "each row's id links to its entry"
    html = logged_in(viewer).get(path).content.decode()
    assert "Failed at</th><td>2023-11-14 22:15:00 UTC" in html  # dlq_timestamp 1700000100
    assert "max_delivery_exceeded" in html and "1700000000000-7" in html
    assert f"{long_path[:100]}… (316 characters)" in html, "a long value is cut and its length said"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "Retry this entry" not in html, "a viewer gets no buttons"
    page = logged_in(operator).get(path).content.decode()
    assert f'formaction="{url("stream_selected", DLQ, "retry")}"' in page and "Delete this entry" in page
    done = logged_in(operator).post(url("stream_selected", DLQ, "retry"), {"id": entry_id, "nonce": "e-1"})
    assert done.status_code == 302 and numbers(redis_client, STREAM) == [7]
    gone = logged_in(viewer).get(path)
    assert gone.status_code == 404 and "is no longer in" in gone.content.decode()


def test_a_work_stream_entry_shows_every_field_and_bad_ids_are_404(
    redis_client: redis.Redis, viewer: User
) -> None:
    entry_id = add(redis_client, {"camera_id": "porch", "blob": b"\xff\xfe"}, key=STREAM)
    client = logged_in(viewer)
    html = client.get(url("stream_entry", STREAM, entry_id)).content.decode()
    assert "camera_id" in html and "porch" in html and "\\xff\\xfe" in html
    assert "What failed" not in html
    assert client.get(url("stream_entry", STREAM, "not-an-id")).status_code == 404
    assert client.get(url("stream_entry", "dlq:detection_queue", entry_id)).status_code == 404


def test_a_filtered_run_goes_on_when_others_remove_entries_it_left_behind(
    redis_client: redis.Redis, operator: User, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The run counts the entries it leaves behind itself; when someone else deletes them meanwhile,
    the stream is shorter than that count, and the run must still reach the entries after it."""
    monkeypatch.setattr(streams, "BATCH_SIZE", 4)
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0}  # one batch per request
    cameras = ["yard", "yard", "yard", "porch", "yard", "porch", "yard", "yard", "porch", "yard"]
    ids = fill_cameras(redis_client, cameras)
    client = logged_in(operator)
    reply = chunk(client, "retry", {"nonce": "c-0", "start": "-", "camera": "porch"}).json()
    assert not reply["finished"] and reply["start"] == ids[3]
    redis_client.xdel(DLQ, ids[0], ids[1], ids[2])  # another operator deletes what the run left
    steps = 1
    while not reply["finished"]:
        data = {"nonce": reply["nonce"], "start": reply["start"], "tally": reply["tally"], "camera": "porch"}
        reply = chunk(client, "retry", data).json()
        steps += 1
    assert numbers(redis_client, STREAM) == [3, 5, 8] and steps == 3
    assert ids_in(redis_client) == [ids[i] for i in (4, 6, 7, 9)]


# --- Arbitrary bytes in stream fields -------------------------------------------------------------

FIELD_BYTES = st.one_of(
    st.binary(min_size=1, max_size=200),
    st.text(min_size=1, max_size=60).map(lambda t: f"<script>{t}</script>".encode("utf-8", "surrogatepass")),
)


@hypothesis_settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=st.dictionaries(FIELD_BYTES, FIELD_BYTES, min_size=1, max_size=5), camera=FIELD_BYTES)
def test_stream_pages_answer_200_with_any_bytes_escaped(
    redis_client: redis.Redis, operator: User, fields: dict[bytes, bytes], camera: bytes
) -> None:
    redis_client.delete(DLQ)
    entry_id = add(redis_client, {**fields, b"camera_id": camera, b"dlq_reason": camera})
    client = logged_in(operator)
    shown = streams.as_text(camera)[:64].strip()
    pages = [
        url("queue_items", DLQ),
        url("queue_items", DLQ) + "?" + urlencode({"camera": shown, "q": shown[:20]}),
        url("stream_entry", DLQ, entry_id),
        url("stream_all", DLQ, "retry") + "?" + urlencode({"camera": shown}),
        url("stream_selected", DLQ, "delete") + "?" + urlencode({"id": entry_id}),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert b"<script>" not in response.content, page
    api = client.get(f"/api/queues/{DLQ.replace(':', '%3A')}/items/")
    assert api.status_code == 200 and api.json()["items"][0]["id"] == entry_id


def test_odd_times_read_as_unknown_not_as_a_server_error(redis_client: redis.Redis, operator: User) -> None:
    """Redis takes any 64-bit id and HSI's dlq_timestamp is free text: neither may break a page."""
    far = add(redis_client, {"camera_id": "porch", "dlq_timestamp": "nan"}, key=DLQ)
    redis_client.xadd(DLQ, {"camera_id": "porch", "dlq_timestamp": "1e300"}, id="18446744073709551614-0")
    client = logged_in(operator)
    for page in (
        url("queue_items", DLQ),
        url("queue_items", DLQ) + "?since=2026-01-01T00:00",
        url("stream_entry", DLQ, far),
        url("stream_entry", DLQ, "18446744073709551614-0"),
    ):
        response = client.get(page)
        assert response.status_code == 200, page
    html = client.get(url("stream_entry", DLQ, "18446744073709551614-0")).content.decode()
    assert "beyond year 9999" in html and 'Failed at</th><td><span class="console-muted">unknown' in html
    nan = streams.page(redis_client, DLQ).entries[0]
    assert nan.id == far and nan.failed_at == nan.added_at, "an unreadable dlq_timestamp: the id's time"
