"""A DLQ selection across pages: ticked page by page (POST + CSRF), confirmed, acted on, cleared.

List DLQs by ref, stream DLQs by entry id (fixtures from ``tests.test_stream_actions``)."""

from __future__ import annotations

import re
from collections import Counter
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from django.contrib.auth.models import User
from django.http import QueryDict
from django.test import Client

from console.models import ArchivedItem, AuditEntry
from queues import dlq, selection, views
from tests import test_stream_actions as stream
from tests.conftest import logged_in
from tests.test_queue_pages import (
    DLQ,
    TARGET,
    dlq_jobs,
    failure,
    jobs,
    said,
    seed,
    shown_messages,
    undo_of,
    url,
)

pytestmark = pytest.mark.django_db

ITEMS = url("queue_items", DLQ)
SELECT = url("queue_selection", DLQ)
NOT_FOUND = "not found (already retried or deleted?)"


def page_refs(client: Client, **query: Any) -> list[str]:
    """The refs of the rows the item browser shows (its hidden ``shown`` fields), in order."""
    html = client.get(ITEMS, query).content.decode()
    return re.findall(r'name="shown" value="([^"]+)"', html)


def ticked(html: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="ref" value="([^"]+)"[^>]* checked>', html)


def sync(client: Client, shown: list[str], ticks: list[str], **extra: Any) -> Any:
    return client.post(SELECT, {"op": "sync", "shown": shown, "ref": ticks, **extra})


def selected(client: Client) -> list[str]:
    """The selection as the item browser sees it: the fingerprints it pre-ticks."""
    chosen = client.get(ITEMS).context["selection"]
    return list(chosen.picked)


def n_of(ref: str, client: redis.Redis) -> int:
    """The ``original_job.n`` of the entry a ref names (by fingerprint, wherever it is now)."""
    fingerprint = ref.partition(":")[2]
    for entry in dlq.page(client, DLQ, 0, 100).entries:
        if entry.id == fingerprint:
            return int(entry.payload["original_job"]["n"])
    raise AssertionError(f"{ref} is not in the first 100 entries")


def confirm(client: Client, verb: str = "retry", **query: Any) -> tuple[Any, dict[str, str]]:
    """The confirmation page and the fields its form posts."""
    page = client.get(url("queue_selection_act", DLQ, verb), query)
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.content.decode())
    return page, {name: unescape(value) for name, value in found}


def test_ticks_on_two_pages_are_confirmed_then_exactly_those_are_retried(
    redis_client: redis.Redis, operator: User
) -> None:
    seed(redis_client, 30)
    client = logged_in(operator)
    first = page_refs(client, size=10)
    assert len(first) == 10
    kept = sync(client, first, [first[1], first[3]], back="size=10&offset=0")
    assert kept.status_code == 302 and kept["Location"] == ITEMS + "?size=10&offset=0"

    second_html = client.get(ITEMS, {"size": 10, "offset": 10}).content.decode()
    assert re.search(r"<strong data-selection-count>2</strong> selected across pages", second_html)
    assert ticked(second_html) == [], "entries of page 1 are not ticked on page 2"
    assert "(<span data-selection-here>0</span> on this page)" in second_html
    second = re.findall(r'name="shown" value="([^"]+)"', second_html)
    to_confirm = sync(client, second, [second[2], second[5]], then="retry", back="size=10&offset=10")
    assert to_confirm.status_code == 302
    assert (
        to_confirm["Location"] == url("queue_selection_act", DLQ, "retry") + "?back=size%3D10%26offset%3D10"
    )

    again = client.get(ITEMS, {"size": 10}).content.decode()
    assert ticked(again) == [first[1], first[3]], "page 1 shows its ticks again"
    assert "(<span data-selection-here>2</span> on this page)" in again
    page, fields = confirm(client, back="size=10&offset=10")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Retry 4 selected entries of dlq:detection_queue to detection_queue." in html
    assert "Yes, retry 4 entries" in html
    listed = re.findall(r'<td class="console-num" data-label="#">(\d+)</td>', html)
    assert listed == ["1", "3", "12", "15"]
    assert redis_client.llen(DLQ) == 30 and not AuditEntry.objects.exists(), "confirming changes nothing"

    done = client.post(url("queue_selection_act", DLQ, "retry"), fields)
    assert done.status_code == 302 and done["Location"] == ITEMS + "?size=10&offset=10"
    assert shown_messages(done) == [said("Retried", 4)]
    assert jobs(redis_client) == [1, 3, 12, 15]
    assert dlq_jobs(redis_client) == [n for n in range(30) if n not in (1, 3, 12, 15)]
    assert selected(client) == [], "the selection is cleared after the action"
    assert "data-selection-banner hidden" in client.get(ITEMS).content.decode()
    audit = AuditEntry.objects.get(action="dlq.retry")
    assert audit.count == 4 and audit.detail["selected"] == 4


def test_unticking_and_clear_without_javascript(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 12)
    client = logged_in(operator)
    first = page_refs(client, size=10)
    sync(client, first, first[:3])
    rest = page_refs(client, size=10, offset=10)
    sync(client, rest, rest)
    assert len(selected(client)) == 5
    sync(client, first, [first[0]])  # page 1 posted again with two ticks removed
    assert selected(client) == [r.partition(":")[2] for r in (first[0], *rest)]
    cleared = client.post(SELECT, {"op": "clear", "back": "size=10"})
    assert cleared.status_code == 302 and cleared["Location"] == ITEMS + "?size=10"
    assert selected(client) == [] and redis_client.llen(DLQ) == 12


def test_a_continued_filtered_search_adds_to_the_same_selection(
    redis_client: redis.Redis, operator: User
) -> None:
    redis_client.rpush(DLQ, *[failure(n, camera="porch" if n % 2 else "garage") for n in range(40)])
    client = logged_in(operator)
    first = client.get(ITEMS, {"camera": "porch", "size": "10"})
    stretch = [row.entry.ref for row in first.context["listing"].rows]
    sync(client, stretch, stretch[:1])
    more = client.get(ITEMS + first.context["listing"].continue_url)
    later = [row.entry.ref for row in more.context["listing"].rows]
    assert later and not set(later) & set(stretch)
    assert "1 selected across pages" in more.content.decode().replace("</strong>", "")
    sync(client, later, later[-1:], then="delete")
    page, fields = confirm(client, "delete")
    assert "Delete 2 selected entries of dlq:detection_queue." in page.content.decode()
    client.post(url("queue_selection_act", DLQ, "delete"), fields)
    gone = set(range(40)) - set(dlq_jobs(redis_client))
    assert gone == {1, 39}
    assert ArchivedItem.objects.count() == 2


def test_a_shifted_list_still_hits_the_right_entries_and_vanished_ones_are_reported(
    redis_client: redis.Redis, operator: User
) -> None:
    seed(redis_client, 20)
    client = logged_in(operator)
    first = page_refs(client, size=10)
    sync(client, first, [first[2], first[5], first[7]])
    redis_client.lpush(DLQ, failure(100), failure(101), failure(102))  # every index is now off by three
    taken: Any = redis_client.lindex(DLQ, 3 + 7)
    redis_client.lrem(DLQ, 1, taken)  # someone else took entry 7
    page, fields = confirm(client)
    html = page.content.decode()
    assert "Retry 2 selected entries" in html
    assert "1 of the selected entries is no longer in dlq:detection_queue" in html
    assert re.findall(r'<td class="console-num" data-label="#">(\d+)</td>', html) == ["5", "8"]
    done = client.post(url("queue_selection_act", DLQ, "retry"), fields)
    assert shown_messages(done) == [said("Retried", 2, skipped=Counter({NOT_FOUND: 1}))]
    assert jobs(redis_client) == [2, 5]
    assert dlq_jobs(redis_client)[:3] == [102, 101, 100] and 7 not in dlq_jobs(redis_client)


def test_the_cap_keeps_the_first_ticks_and_says_so(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "SELECTION_LIMIT": 15}
    seed(redis_client, 30)
    client = logged_in(operator)
    first, second = page_refs(client, size=10), page_refs(client, size=10, offset=10)
    sync(client, first, first)
    full = sync(client, second, second)
    sentence = (
        "The selection is full: it holds at most 15 entries, so 5 ticked entries were not added. "
        "Retry or delete the selection first, or clear it."
    )
    assert shown_messages(full) == [sentence]
    assert selected(client) == [r.partition(":")[2] for r in first + second[:5]]
    as_json = client.post(
        SELECT, {"op": "add", "ref": page_refs(client, size=10, offset=20)}, HTTP_ACCEPT="application/json"
    )
    assert as_json.status_code == 200
    assert as_json.json() | {"refused": len(as_json.json()["refused"])} == {
        "count": 15,
        "refused": 10,
        "message": sentence.replace("5 ticked", "10 ticked"),
    }
    page, _ = confirm(client)
    html = page.content.decode()
    assert "Retry 15 selected entries" in html and "… and 5 more selected entries." in html
    assert len(re.findall(r'data-label="#"', html)) == views.CONFIRM_ROWS


def test_a_thousand_entries_across_ten_pages_in_few_reads(redis_client: redis.Redis, operator: User) -> None:
    """The default cap is 1,000; resolving them reads a few windows, not one per entry."""
    seed(redis_client, 1_100)
    client = logged_in(operator)
    for offset in range(0, 1_000, 100):
        refs = page_refs(client, size=100, offset=offset)
        assert shown_messages(sync(client, refs, refs)) == []
    over = page_refs(client, size=100, offset=1_000)
    assert shown_messages(sync(client, over, over)) == [selection.full_message(100)]
    assert "at most 1,000 entries, so 100 ticked entries" in selection.full_message(100)
    reads, ranges = command_calls(redis_client, "evalsha_ro"), command_calls(redis_client, "lrange")
    page, fields = confirm(client, "delete")
    assert "Delete 1,000 selected entries" in page.content.decode()
    # One read is one peek.lua call (a round trip), which reads its window in LRANGEs of up to 32.
    assert command_calls(redis_client, "evalsha_ro") - reads <= 40, "resolving 1,000 refs reads a few windows"
    assert command_calls(redis_client, "lrange") - ranges <= 300, "and never an entry at a time"
    done = client.post(url("queue_selection_act", DLQ, "delete"), fields)
    assert shown_messages(done) == [undo_of(said("Deleted", 1_000))], "a selection is one delete"
    assert dlq_jobs(redis_client) == list(range(1_000, 1_100))
    assert ArchivedItem.objects.count() == 1_000


def command_calls(client: redis.Redis, name: str) -> int:
    stats: Any = client.info("commandstats")
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


def test_a_changed_selection_or_a_replayed_form_acts_on_nothing(
    redis_client: redis.Redis, operator: User
) -> None:
    seed(redis_client, 10)
    client = logged_in(operator)
    refs = page_refs(client)
    sync(client, refs, refs[:2])
    _, fields = confirm(client)
    sync(client, refs, refs[:3])  # another tab ticks one more after the page was shown
    stale = client.post(url("queue_selection_act", DLQ, "retry"), fields)
    assert stale.status_code == 302 and stale["Location"] == url("queue_selection_act", DLQ, "retry")
    assert shown_messages(stale) == [
        "The selection changed after this confirmation page was shown (in another tab?); check it again."
    ]
    assert redis_client.llen(DLQ) == 10 and redis_client.llen(TARGET) == 0
    _, fields = confirm(client)
    done = client.post(url("queue_selection_act", DLQ, "retry"), fields)
    assert shown_messages(done) == [said("Retried", 3)]
    again = client.post(url("queue_selection_act", DLQ, "retry"), fields)
    assert shown_messages(again)[-1] == views.DUPLICATE
    assert jobs(redis_client) == [0, 1, 2]
    nothing = client.get(url("queue_selection_act", DLQ, "retry"))
    assert nothing.status_code == 302
    assert shown_messages(nothing)[-1] == "Nothing is selected in dlq:detection_queue: tick entries first."


def test_viewer_cannot_change_the_selection_or_act(
    redis_client: redis.Redis, operator: User, viewer: User
) -> None:
    seed(redis_client, 5)
    boss = logged_in(operator)
    refs = page_refs(boss)
    sync(boss, refs, refs[:2])
    watcher = logged_in(viewer)
    assert watcher.get(ITEMS).context["selection"] is None
    html = watcher.get(ITEMS).content.decode()
    assert "selected across pages" not in html and "Update selection" not in html
    for op in ("sync", "add", "remove", "clear"):
        assert sync(watcher, refs, refs, op=op).status_code == 403
    act = url("queue_selection_act", DLQ, "retry")
    assert watcher.get(act).status_code == 403
    assert watcher.post(act, {"nonce": views.new_nonce(), "selection": "x"}).status_code == 403
    assert len(selected(boss)) == 2 and redis_client.llen(DLQ) == 5 and not AuditEntry.objects.exists()


def test_selection_changes_need_post_and_csrf(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 5)
    client = logged_in(operator)
    refs = page_refs(client)
    assert client.get(SELECT, {"op": "add", "ref": refs}).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert sync(strict, refs, refs).status_code == 403
    assert selected(client) == []


def test_bad_selection_requests_are_sentences(redis_client: redis.Redis, operator: User) -> None:
    seed(redis_client, 3)
    client = logged_in(operator)
    bad = sync(client, [], ["../etc/passwd"])
    assert bad.status_code == 400
    assert bad.content.decode() == "'../etc/passwd' is not an entry reference (index:fingerprint)."
    assert sync(client, [], [], op="explode").content.decode() == (
        "Unknown selection change 'explode': use sync, add, remove or clear."
    )
    scripted = client.post(SELECT, {"then": "explode"}, HTTP_ACCEPT="application/json")
    assert scripted.status_code == 400
    assert scripted.json() == {
        "error": "bad_request",
        "detail": "Unknown action 'explode': use retry or delete.",
    }
    assert client.post(url("queue_selection", TARGET), {"op": "clear"}).status_code == 404
    assert client.get(url("queue_selection_act", DLQ, "explode")).status_code == 404
    nothing = sync(client, page_refs(client), [], then="retry")
    assert nothing.status_code == 302 and shown_messages(nothing) == ["Tick the entries to retry first."]


# --- A stream DLQ's selection: entry ids instead of refs, the same session, forms and checks -------

S_DLQ, S_ITEMS, S_SELECT = stream.DLQ, url("queue_items", stream.DLQ), url("queue_selection", stream.DLQ)


def s_act(verb: str = "retry") -> str:
    return url("queue_selection_act", S_DLQ, verb)


def s_page(client: Client, **query: Any) -> tuple[str, list[str]]:
    """The stream page and the ids it shows (its hidden ``shown`` fields), in order."""
    html = client.get(S_ITEMS, query).content.decode()
    return html, re.findall(r'name="shown" value="([^"]+)"', html)


def s_ticked(html: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="id" value="([^"]+)"[^>]* checked>', html)


def s_sync(client: Client, shown: list[str], ticks: list[str], **extra: Any) -> Any:
    return client.post(S_SELECT, {"op": "sync", "shown": shown, "id": ticks, **extra})


def s_confirm(client: Client, verb: str = "retry", **query: Any) -> tuple[Any, dict[str, str]]:
    page = client.get(s_act(verb), query)
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.content.decode())
    return page, {name: unescape(value) for name, value in found}


def s_selected(client: Client) -> list[str]:
    chosen: selection.Selection = client.get(S_ITEMS).context["selection"]
    return chosen.names


def test_stream_ticks_on_two_pages_are_confirmed_then_exactly_those_are_retried(
    redis_client: redis.Redis, operator: User
) -> None:
    ids = stream.fill(redis_client, 25)
    client = logged_in(operator)
    _, first = s_page(client, size=10)
    assert first == ids[:10]
    kept = s_sync(client, first, [ids[3], ids[1]], back="size=10")
    assert kept.status_code == 302 and kept["Location"] == S_ITEMS + "?size=10"

    second_html, second = s_page(client, size=10, after=ids[9])
    assert second == ids[10:20]
    assert re.search(r"<strong data-selection-count>2</strong> selected across pages", second_html)
    assert "(<span data-selection-here>0</span> on this page)" in second_html
    assert s_ticked(second_html) == [], "entries of page 1 are not ticked on page 2"
    back = f"size=10&after={ids[9]}"
    to_confirm = s_sync(client, second, [ids[15], ids[12]], then="retry", back=back)
    assert to_confirm.status_code == 302
    assert to_confirm["Location"] == s_act() + "?" + urlencode({"back": back})

    again, _ = s_page(client, size=10)
    assert s_ticked(again) == [ids[1], ids[3]], "page 1 shows its ticks again"
    assert "(<span data-selection-here>2</span> on this page)" in again
    before = stream.stream_state(redis_client)
    page, fields = s_confirm(client, back=back)
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Retry 4 selected entries of {S_DLQ} to {stream.STREAM}." in html
    assert "Yes, retry 4 entries" in html and 'name="id"' not in html
    listed = re.findall(r"<td><code>(\d+-\d+)</code></td>", html)
    assert listed == [ids[1], ids[3], ids[12], ids[15]], "listed in stream order"
    assert stream.stream_state(redis_client) == before and not AuditEntry.objects.exists()

    done = client.post(s_act(), fields)
    assert done.status_code == 302 and done["Location"] == S_ITEMS + "?" + QueryDict(back).urlencode()
    assert shown_messages(done) == [f"Retried 4 of {S_DLQ} to {stream.STREAM}."]
    assert stream.numbers(redis_client, stream.STREAM) == [1, 3, 12, 15]
    assert stream.ids_in(redis_client) == [i for n, i in enumerate(ids) if n not in (1, 3, 12, 15)]
    assert s_selected(client) == [], "the selection is cleared after the action"
    assert "data-selection-banner hidden" in client.get(S_ITEMS).content.decode()
    audit = AuditEntry.objects.get(action="dlq.retry")
    assert audit.count == 4 and audit.detail["entry_ids"] == [ids[1], ids[3], ids[12], ids[15]]


def test_stream_selection_changed_or_replayed_acts_on_nothing_more(
    redis_client: redis.Redis, operator: User
) -> None:
    ids = stream.fill(redis_client, 6)
    client = logged_in(operator)
    s_sync(client, ids, ids[:2])
    _, fields = s_confirm(client)
    s_sync(client, ids, ids[:3])  # another tab ticks one more after the page was shown
    stale = client.post(s_act(), fields)
    assert stale.status_code == 302 and stale["Location"] == s_act()
    assert shown_messages(stale) == [
        "The selection changed after this confirmation page was shown (in another tab?); check it again."
    ]
    assert stream.ids_in(redis_client) == ids and redis_client.xlen(stream.STREAM) == 0
    page, fields = s_confirm(client)
    assert "Retry 3 selected entries" in page.content.decode()
    done = client.post(s_act(), fields)
    assert shown_messages(done) == [f"Retried 3 of {S_DLQ} to {stream.STREAM}."]
    s_sync(client, ids[3:], ids[3:4])  # a new selection: the replayed form must still do nothing
    again = client.post(s_act(), fields)
    assert shown_messages(again)[-1] == views.DUPLICATE
    assert stream.numbers(redis_client, stream.STREAM) == [0, 1, 2] and stream.ids_in(redis_client) == ids[3:]
    assert AuditEntry.objects.filter(action="dlq.retry").count() == 1


def test_stream_selection_delete_archives_and_reports_vanished_entries(
    redis_client: redis.Redis, operator: User
) -> None:
    ids = stream.fill(redis_client, 5)
    client = logged_in(operator)
    s_sync(client, ids, [ids[0], ids[2], ids[4]], then="delete")
    redis_client.xdel(S_DLQ, ids[2])  # another operator got there first
    page, fields = s_confirm(client, "delete")
    html = page.content.decode()
    assert f"Delete 2 selected entries of {S_DLQ}." in html
    assert f"1 of the selected entries is no longer in {S_DLQ}" in html
    done = client.post(s_act("delete"), fields)
    summary = dlq.Outcome(S_DLQ, None, done=2, skipped=Counter({NOT_FOUND: 1})).summary("Deleted")
    assert shown_messages(done) == [undo_of(summary)]
    assert stream.ids_in(redis_client) == [ids[1], ids[3]]
    assert sorted(ArchivedItem.objects.values_list("entry_id", flat=True)) == [ids[0], ids[4]]
    s_sync(client, [], [ids[0]])
    gone = client.get(s_act("delete"))
    assert gone.status_code == 302 and shown_messages(gone)[-1] == (
        f"None of the 1 selected entries is still in {S_DLQ} (retried or deleted); clear the selection."
    )


def test_stream_selection_cap_and_the_confirmation_counts_the_rest(
    redis_client: redis.Redis, operator: User, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "SELECTION_LIMIT": 12}
    ids = stream.fill(redis_client, 30)
    client = logged_in(operator)
    s_sync(client, ids[:10], ids[:10])
    full = s_sync(client, ids[10:20], ids[10:20])
    assert shown_messages(full) == [selection.full_message(8)]
    assert s_selected(client) == ids[:12]
    as_json = client.post(S_SELECT, {"op": "add", "id": ids[20:]}, HTTP_ACCEPT="application/json")
    assert as_json.json() == {"count": 12, "refused": ids[20:], "message": selection.full_message(10)}
    page, _ = s_confirm(client)
    html = page.content.decode()
    assert "Retry 12 selected entries" in html and "… and 2 more selected entries." in html
    assert len(re.findall(r"<td><code>\d+-\d+</code></td>", html)) == views.CONFIRM_ROWS
    removed = client.post(S_SELECT, {"op": "remove", "id": ids[:5]})
    assert removed.status_code == 302 and s_selected(client) == ids[5:12]


def test_viewer_cannot_change_a_stream_selection_or_act(
    redis_client: redis.Redis, operator: User, viewer: User
) -> None:
    ids = stream.fill(redis_client, 4)
    boss = logged_in(operator)
    s_sync(boss, ids, ids[:2])
    watcher = logged_in(viewer)
    html = watcher.get(S_ITEMS).content.decode()
    assert watcher.get(S_ITEMS).context["selection"] is None
    assert "selected across pages" not in html and "Update selection" not in html and 'name="id"' not in html
    for op in ("sync", "add", "remove", "clear"):
        assert s_sync(watcher, ids, ids, op=op).status_code == 403
    assert watcher.get(s_act()).status_code == 403
    assert watcher.post(s_act("delete"), {"nonce": views.new_nonce(), "selection": "x"}).status_code == 403
    assert s_selected(boss) == ids[:2] and stream.ids_in(redis_client) == ids
    assert not AuditEntry.objects.exists() and not ArchivedItem.objects.exists()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert s_sync(strict, ids, ids).status_code == 403, "CSRF as everywhere"
    assert boss.get(S_SELECT, {"op": "add", "id": ids}).status_code == 405
    assert s_selected(boss) == ids[:2]


def test_bad_stream_selection_requests_are_sentences(redis_client: redis.Redis, operator: User) -> None:
    ids = stream.fill(redis_client, 2)
    client = logged_in(operator)
    bad = s_sync(client, ids, ["0-1; DEL x"])
    assert bad.status_code == 400
    assert bad.content.decode() == "'0-1; DEL x' is not a stream entry id (like 1700000000000-0)."
    as_ref = client.post(S_SELECT, {"shown": ["5:" + "a" * 20]}, HTTP_ACCEPT="application/json")
    assert as_ref.status_code == 400 and as_ref.json() == {
        "error": "bad_request",
        "detail": "'5:aaaaaaaaaaaaaaaaaaaa' is not a stream entry id (like 1700000000000-0).",
    }
    assert client.post(url("queue_selection", stream.STREAM), {"op": "clear"}).status_code == 404
    assert client.get(url("queue_selection_act", stream.STREAM, "retry")).status_code == 404
    assert client.get(s_act("explode")).status_code == 404
    nothing = s_sync(client, ids, [], then="retry")
    assert nothing.status_code == 302 and shown_messages(nothing) == ["Tick the entries to retry first."]
    assert s_selected(client) == [] and stream.ids_in(redis_client) == ids
