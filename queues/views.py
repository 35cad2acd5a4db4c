"""Queue and DLQ pages in the console's admin site: list, item browser, entry, actions, archive.

Views read requests and render; every Redis read or write goes through the services in
``queues.inventory``, ``queues.dlq`` and ``queues.actions`` (which also write the audit trail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import redis
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST, require_safe

from console.models import QUEUE_KINDS, ArchivedItem, of_kinds
from console.redis import get_redis
from console.roles import perm
from console.views import wants_json
from queues import actions, archive, breakdown, dlq, inventory, keys, selection, streams, validation
from queues.actions import BadFilter, Filters
from queues.conf import conf
from queues.forms import (
    FILTER_NAMES,
    MAX_SELECTED,
    PAGE_SIZES,
    Browse,
    Tally,
    back_query,
    new_nonce,
    number,
    offset_of,
    selected_ids,
    selected_refs,
)
from queues.presentation import ROW_LIMIT, Row, entry_context, field_texts, row_of, shown
from queues.search import MAX_EXAMINED, Scan, search
from queues.server_report import CHANGE_SECONDS, changes

ARCHIVE_PER_PAGE = 50
DASH = "\u2013"  # an en dash, as in "items 1\u201350"
VERBS = {"retry": ("retry_items", "Retried", "Retry"), "delete": ("delete_items", "Deleted", "Delete")}
DUPLICATE = "This action was already submitted; nothing was done twice."
SELECTION_OPS = ("sync", "add", "remove", "clear")
CONFIRM_ROWS = 10  # selected entries listed on a confirmation page; the rest are counted


# --- Keys, permissions and small text helpers --------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A queue or DLQ key taken from a URL, with what the pages need to know about it."""

    key: str
    family: str

    @property
    def is_dlq(self) -> bool:
        return inventory.QUEUE_FAMILIES[self.family] == "dlq"

    @property
    def is_stream(self) -> bool:
        return inventory.is_stream(self.family)

    @property
    def actionable(self) -> bool:
        return self.is_dlq and not self.is_stream

    @property
    def selectable(self) -> bool:
        """List DLQs and stream DLQs keep a selection across pages (a list or stream of work does not)."""
        return self.actionable or self.family == "stream_dlq"

    @property
    def ref_kind(self) -> selection.RefKind:
        return selection.STREAM_REFS if self.is_stream else selection.LIST_REFS

    @property
    def source(self) -> str | None:
        return keys.source_queue(self.key) if self.is_dlq else None


def queue_archive() -> QuerySet[ArchivedItem]:
    """Archived queue and DLQ entries; job keys have their own archive (queues.jobs_archive)."""
    return ArchivedItem.objects.filter(of_kinds(QUEUE_KINDS))


def archived_keys(limit: int = 200) -> list[str]:
    """The DLQs the archive holds entries of, for its filter: one index lookup per key (a DISTINCT
    read every row's key: half a second at 300,000 rows). The kinds are bound as parameters here, so
    that SQLite walks the key index rather than the kinds' partial index (``of_kinds``)."""
    found: list[str] = []
    dlq_rows = ArchivedItem.objects.filter(kind__in=QUEUE_KINDS)
    while len(found) < limit:
        rows = dlq_rows.filter(key__gt=found[-1]) if found else dlq_rows
        following = rows.order_by("key").values_list("key", flat=True).first()
        if following is None:
            break
        found.append(following)
    return found


def archive_row(item: ArchivedItem) -> Row | None:
    """An archived list entry summed up as its DLQ page showed it (a stream entry shows its id)."""
    entry = archive.entry_of(item) if item.kind == ArchivedItem.Kind.LIST else None
    return row_of(entry, True) if isinstance(entry, dlq.Entry) else None


def queue_target(key: str) -> Target:
    family = keys.classify(key).name
    if family not in inventory.QUEUE_FAMILIES:
        raise Http404("Not a queue or dead-letter queue key.")
    return Target(key, family)


def dlq_target(key: str, verb: str) -> Target:
    target = queue_target(key)
    if not target.actionable or verb not in VERBS:
        raise Http404("Only list DLQs can be retried or deleted from.")
    return target


def selection_target(key: str, verb: str = "retry") -> Target:
    target = queue_target(key)
    if not target.selectable or verb not in VERBS:
        raise Http404("Only list and stream DLQs keep a selection to retry or delete.")
    return target


def require(request: HttpRequest, codename: str) -> None:
    if not request.user.has_perm(perm(codename)):
        raise PermissionDenied


def abilities(request: HttpRequest) -> dict[str, bool]:
    return {
        "can_retry": request.user.has_perm(perm("retry_items")),
        "can_delete": request.user.has_perm(perm("delete_items")),
        "can_edit": request.user.has_perm(perm("edit_and_retry")),
    }


def with_query(query: QueryDict, **changes: str | None) -> str:
    merged = query.copy()
    for name, value in changes.items():
        merged.pop(name, None)
        if value is not None:
            merged[name] = value
    return merged.urlencode()


def jumped(request: HttpRequest) -> HttpResponse | None:
    """The pager's "Go to item" box sends ``item`` (1-based): the same page, at that ``offset``, so
    that its own links (next, previous, a confirmation's way back) all start from there."""
    if "item" not in request.GET:
        return None
    return HttpResponseRedirect("?" + with_query(request.GET, item=None, offset=str(offset_of(request.GET))))


def items_url(key: str, query: str = "") -> str:
    url = reverse("admin:queue_items", args=[key])
    return f"{url}?{query}" if query else url


def selection_url(key: str, verb: str, back: str) -> str:
    url = reverse("admin:queue_selection_act", args=[key, verb])
    return f"{url}?{urlencode({'back': back})}" if back else url


def may_select(request: HttpRequest, target: Target) -> bool:
    """Who may keep a selection of a DLQ's entries: someone who may retry or delete them."""
    return target.selectable and any(
        request.user.has_perm(perm(codename)) for codename in ("retry_items", "delete_items")
    )


def replayed_step(request: HttpRequest, client: redis.Redis, back: str) -> HttpResponse | None:
    """The answer to a bulk step whose nonce was already used (a replayed POST, a second tab): a 409
    for bulk.js, else a message and the way back; ``None`` for a first submission."""
    if actions.first_submission(client, request.POST.get("nonce", "")):
        return None
    if wants_json(request):
        return JsonResponse({"error": DUPLICATE, "back": back}, status=409)
    messages.warning(request, DUPLICATE)
    return HttpResponseRedirect(back)


def refuse(sentence: str, json_wanted: bool) -> HttpResponse:
    """A 400 that says what was wrong with the request, as JSON for scripts."""
    if json_wanted:
        return JsonResponse({"error": "bad_request", "detail": sentence}, status=400)
    return HttpResponse(sentence, status=400, content_type="text/plain; charset=utf-8")


def report(request: HttpRequest, outcome: dlq.Outcome, verb: str, deletion: str = "") -> None:
    """The outcome's own summary, as a success only when everything asked for was done; a delete
    that archived entries offers its undo."""
    clean = outcome.done and not outcome.skipped and not outcome.full
    text: str = outcome.summary(VERBS[verb][1])
    if verb == "delete" and outcome.done and deletion:
        text = format_html('{} <a href="{}" data-testid="undo">{}</a>', text, undo_url(deletion), UNDO)
    (messages.success if clean else messages.warning)(request, text)


UNDO = "Undo: restore them"


def undo_url(deletion: str) -> str:
    """The archive page of one delete action, which offers to restore everything it archived."""
    return reverse("admin:archive") + "?" + urlencode({"deletion": deletion})


# --- One pagination helper for every paged page ------------------------------------------------------


@dataclass(frozen=True)
class Pager:
    label: str
    first: str | None
    prev: str | None
    next: str | None
    last: str | None
    jump: Jump | None = None


@dataclass(frozen=True)
class Jump:
    """The pager's "Go to item/page" box: a GET form that keeps the page's other parameters."""

    name: str  # ``item`` (1-based, read by forms.offset_of) or ``page``
    value: int
    last: int
    keep: list[tuple[str, str]]


def pager(
    query: QueryDict, *, total: int, offset: int, size: int, shown: int, param: str = "offset"
) -> Pager:
    """First/prev/next/last links for a window ``offset .. offset+shown`` of ``total`` items.

    ``param`` is ``offset`` (item browser) or ``page`` (a ``Paginator`` page number).
    """

    def link(at: int) -> str:
        return "?" + with_query(query, **{param: str(at if param == "offset" else at // size + 1)})

    last = max(total - 1, 0) // size * size
    label = f"items {offset + 1:,}{DASH}{offset + shown:,} of {total:,}"
    label = label if shown else f"no items here (of {total:,})"
    back = offset > 0
    jump = None
    if total > size:
        name = "item" if param == "offset" else "page"
        keep = [
            (k, str(v)) for k, values in query.lists() if k not in (param, "item", "page") for v in values
        ]
        value, end = (offset + 1, total) if name == "item" else (offset // size + 1, last // size + 1)
        jump = Jump(name, value, end, keep)
    # An item page that stopped short of its size (large entries, dlq.Page.unread) goes on from there.
    advance = shown if param == "offset" and shown else size
    return Pager(
        label,
        first=link(0) if back else None,
        prev=link(max(offset - size, 0)) if back else None,
        next=link(offset + advance) if offset + advance < total else None,
        last=link(last) if offset < last else None,
        jump=jump,
    )


# --- Rows and entry details --------------------------------------------------------------------------


# --- The item browser's two ways of reading a list ---------------------------------------------------


READ_ON = "Read the next entries →"


def short_read_note(read: int, asked: int, kind: str) -> str:
    """Why a page (of a ``kind``, list or stream) shows ``read`` entries where it asked for ``asked``."""
    return (
        f"This page read {read} of its {asked} entries: the entries it read are large, and one read "
        f"takes at most {dlq.READ_BUDGET // 1024 // 1024} MB of a {kind} from Redis."
    )


def scan_note(found: Scan | streams.StreamScan, size: int) -> str:
    """What a bounded filtered read looked at and found (a list's stretch names its positions)."""
    where = ""
    if isinstance(found, Scan):
        where = f" (entries {found.start + 1:,}{DASH}{found.stop:,})" if found.examined else " (no entries)"
    note = f"Searched {found.examined:,} of {found.total:,}{where}: {found.matched:,} match"
    if found.complete:
        return note + "."
    return note + (
        f"; showing the first {size}." if found.matched >= size else "; stopped at the search limit."
    )


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    total: int
    pager: Pager | None = None
    scan: Scan | None = None
    note: str = ""
    continue_url: str = ""
    continue_label: str = ""


def listing(request: HttpRequest, target: Target, browse: Browse, filters: Filters) -> Listing:
    client = get_redis()
    if not filters.active:
        page = dlq.page(client, target.key, browse.offset, browse.size, browse.newest_first)
        rows = [row_of(e, target.is_dlq) for e in page.entries]
        paging = pager(request.GET, total=page.total, offset=page.offset, size=page.limit, shown=len(rows))
        if not page.unread:
            return Listing(rows, page.total, pager=paging)
        note = short_read_note(len(rows), len(rows) + page.unread, "list")
        more = "?" + with_query(request.GET, offset=str(page.offset + len(rows)))
        return Listing(rows, page.total, paging, None, note, more, READ_ON)
    found = search(
        client,
        target.key,
        filters.select,
        start=browse.offset,
        newest_first=browse.newest_first,
        limit=browse.size,
    )
    more = "" if found.complete else "?" + with_query(request.GET, offset=str(found.stop))
    rows = [row_of(e, True) for e in found.entries]
    label = f"Continue searching from entry {found.stop + 1:,} →"
    note = scan_note(found, browse.size)
    return Listing(rows, found.total, scan=found, note=note, continue_url=more, continue_label=label)


def archive_search(request: HttpRequest, rows: QuerySet[ArchivedItem], filters: Filters) -> dict[str, Any]:
    """The archive page's rows matching the DLQ filters: a bounded read, newest first, that says how
    far it got and continues before the last row it examined."""
    before = number(request.GET.get("before"), 0) or None
    found = archive.search(rows, filters.select, before=before, limit=ARCHIVE_PER_PAGE)
    where = "" if before is None else f" before #{before}"
    stretch = f"Searched {found.examined:,} archived entr{'y' if found.examined == 1 else 'ies'}{where}"
    matches = f"{len(found.rows):,} match{'' if len(found.rows) == 1 else 'es'}"
    shown = f"the first {matches}" if len(found.rows) == ARCHIVE_PER_PAGE else matches
    note = f"{stretch}, newest first: {shown}{'' if found.complete else ' so far'}."
    more = "" if found.complete else "?" + with_query(request.GET, before=str(found.last))
    label = f"Continue searching before #{found.last} →"
    listing = Listing([], 0, note=note, continue_url=more, continue_label=label)
    return {"found": found.rows, "listing": listing}


# --- The pages ---------------------------------------------------------------------------------------


class QueuePages:
    """The queue pages of one admin site; each method is a view wrapped by ``site.admin_view``."""

    def __init__(self, site: AdminSite) -> None:
        self.site = site

    def urls(self) -> list[URLPattern]:
        view = self.site.admin_view
        return [
            path("queues/", view(require_safe(self.queue_list)), name="queue_list"),
            path(
                "queues/<path:key>/entry/<int:index>/<str:fingerprint>/",
                view(require_safe(self.entry)),
                name="queue_entry",
            ),
            path(
                "queues/<path:key>/entry/<int:index>/<str:fingerprint>/edit/",
                view(self.edit),
                name="queue_edit",
            ),
            path(
                "queues/<path:key>/stream-entry/<str:entry_id>/",
                view(require_safe(self.stream_entry)),
                name="stream_entry",
            ),
            path("queues/<path:key>/selected/<str:verb>/", view(self.selected), name="queue_selected"),
            path("queues/<path:key>/selection/", view(require_POST(self.select)), name="queue_selection"),
            path(
                "queues/<path:key>/selection/<str:verb>/",
                view(self.selection_act),
                name="queue_selection_act",
            ),
            path(
                "queues/<path:key>/stream-selected/<str:verb>/",
                view(self.stream_selected),
                name="stream_selected",
            ),
            path("queues/<path:key>/stream-all/<str:verb>/", view(self.stream_all), name="stream_all"),
            path("queues/<path:key>/matching/<str:verb>/", view(self.matching), name="queue_matching"),
            path(
                "queues/<path:key>/breakdown/",
                view(require_safe(self.failure_breakdown)),
                name="queue_breakdown",
            ),
            path("queues/<path:key>/", view(require_safe(self.items)), name="queue_items"),
            path("archive/", view(require_safe(self.archive)), name="archive"),
            path("archive/restore/", view(require_POST(self.restore)), name="archive_restore"),
            path("archive/restore-all/", view(self.restore_all), name="archive_restore_all"),
            path("archive/<int:pk>/", view(require_safe(self.archived)), name="archive_item"),
        ]

    def render(
        self, request: HttpRequest, template: str, title: str, context: dict[str, Any], status: int = 200
    ) -> TemplateResponse:
        full = {**self.site.each_context(request), "title": title, **abilities(request), **context}
        full["can_act"] = full["can_retry"] or full["can_delete"]
        return TemplateResponse(request, f"queues/{template}", full, status=status)

    def queue_list(self, request: HttpRequest) -> HttpResponse:
        client = get_redis()
        discovery = inventory.discover(client)
        queues = inventory.measure(client, discovery.found)
        trend = changes(client, {q.key: q.length for q in queues})
        context = {
            "queues": queues,
            "rows": [(q, trend.get(q.key)) for q in queues],
            "change_seconds": CHANGE_SECONDS,
            "alerts": inventory.alerts(queues),
            "idle_limit": conf("CONSUMER_IDLE_SECONDS"),
            "discovery": discovery,
            "key_count": None if discovery.complete else int(client.dbsize()),
        }
        return self.render(request, "queue_list.html", "Queues", context)

    def items(self, request: HttpRequest, key: str) -> HttpResponse:
        target = queue_target(key)
        if jump := jumped(request):
            return jump
        browse = Browse.from_query(request.GET)
        context: dict[str, Any] = {"target": target, "browse": browse, "sizes": PAGE_SIZES}
        context |= {"back": back_query(request.GET), "filter_query": filter_query(request.GET)}
        context["selection"] = self._selection(request, target) if may_select(request, target) else None
        context["idle_limit"] = conf("CONSUMER_IDLE_SECONDS")
        if target.is_stream:
            return self._stream_items(request, target, browse, context)
        try:
            filters = Filters.from_query(request.GET) if target.is_dlq else Filters()
        except BadFilter as exc:
            return self.render(request, "items.html", key, {**context, "filter_error": str(exc)})
        shown = listing(request, target, browse, filters)
        capacity = inventory.of_length(target.key, shown.total)
        context |= {"listing": shown, "filters": filters, "alerts": [capacity] if capacity.warning else []}
        if target.is_dlq and not filters.active:
            context["headline"] = breakdown.headline(get_redis(), target.key, stream=False)
        if context["selection"] is not None:
            context["selected_here"] = sum(row.entry.id in context["selection"] for row in shown.rows)
        return self.render(request, "items.html", key, context)

    def failure_breakdown(self, request: HttpRequest, key: str) -> HttpResponse:
        """Why a DLQ's newest entries failed: error types, errors and cameras, with their counts."""
        target = queue_target(key)
        if not target.is_dlq:
            raise Http404(f"{key} is a work queue: only dead-letter queues say why their entries failed.")
        context: dict[str, Any] = {"target": target}
        try:
            filters = Filters.from_query(request.GET)
        except BadFilter as exc:
            context["filter_error"], filters = str(exc), Filters()
        older = request.GET.get("older", "")
        if problem := breakdown.bad_older(older, target.is_stream):
            context["filter_error"], older = problem, ""
        read = breakdown.of_stream if target.is_stream else breakdown.of_list
        context |= {
            "breakdown": read(get_redis(), key, filters, older),
            "read_limit": MAX_EXAMINED,
            "filter_text": describe(filters, stream=target.is_stream),
            "filter_query": filter_query(request.GET) if filters.active else "",
        }
        return self.render(request, "breakdown.html", f"Why entries of {key} failed", context)

    def _stream_items(
        self, request: HttpRequest, target: Target, browse: Browse, context: dict[str, Any]
    ) -> HttpResponse:
        after = request.GET.get("after", "-")
        if not streams.is_entry_id(after):
            after = "-"
        client = get_redis()
        info = inventory.describe(client, target.key)
        context |= {"stream": info, "alerts": [info] if info.warning else []}
        try:
            filters = Filters.from_query(request.GET) if target.is_dlq else Filters()
        except BadFilter as exc:
            context["filter_error"], filters = str(exc), Filters()
        if filters.active:
            found = streams.search(
                client,
                target.key,
                filters.select,
                after=after,
                newest_first=browse.newest_first,
                limit=browse.size,
            )
            entries, total, more = found.entries, found.total, ""
            if not found.complete and found.last_id:
                more = "?" + with_query(request.GET, after=found.last_id)
            way = "before" if browse.newest_first else "after"  # newest first goes on to older entries
            label = f"Continue searching {way} entry {found.last_id} →"
            note = scan_note(found, browse.size)
            context["scan"] = Listing([], total, note=note, continue_url=more, continue_label=label)
        else:
            page = streams.page(
                client, target.key, after=after, limit=browse.size, newest_first=browse.newest_first
            )
            entries, total = page.entries, page.total
            more = "?" + with_query(request.GET, after=page.next_id) if page.next_id else ""
            if page.short:
                note = short_read_note(len(entries), browse.size, "stream")
                context["read_note"] = Listing(
                    [], total, note=note, continue_url=more, continue_label=READ_ON
                )
            if target.is_dlq:
                context["headline"] = breakdown.headline(client, target.key, stream=True)
        context |= {"stream_rows": stream_rows(entries), "stream_total": total, "more_url": more}
        context |= {"first_url": "?" + with_query(request.GET, after=None), "nonce": new_nonce()}
        context["back"] = stream_back(request.GET)
        if context["selection"] is not None:
            context["selected_here"] = sum(entry.id in context["selection"] for entry in entries)
        return self.render(request, "items.html", target.key, context)

    def stream_selected(self, request: HttpRequest, key: str, verb: str) -> HttpResponse:
        """Stream DLQ entries picked by id: GET confirms (what, how many), POST retries or deletes."""
        target = stream_dlq_target(key, verb)
        require(request, VERBS[verb][0])
        data = request.POST if request.method == "POST" else request.GET
        ids, back = streams.entry_ids(data.getlist("id")), items_url(target.key, stream_back(data))
        if not ids or len(ids) > MAX_SELECTED:
            messages.warning(request, f"Select between 1 and {MAX_SELECTED} stream entries first.")
            return HttpResponseRedirect(back)
        client = get_redis()
        if request.method == "POST":
            if not actions.first_submission(client, data.get("nonce", "")):
                messages.warning(request, DUPLICATE)
            else:
                deletion = new_nonce()
                report(request, act_on_stream_ids(request, target, verb, ids, deletion), verb, deletion)
            return HttpResponseRedirect(back)
        found = streams.read_shown(client, target.key, ids)
        if not found:
            messages.warning(request, f"None of the selected entries is still in {target.key}.")
            return HttpResponseRedirect(back)
        context = {"ids": [e.id for e in found], "missing": len(ids) - len(found), "count": len(found)}
        context |= {"stream_rows": stream_rows([e.text for e in found]), "back": stream_back(data)}
        context |= {"sentence": selected_sentence(target, verb, len(found))}
        context["action"] = reverse("admin:stream_selected", args=[target.key, verb])
        return self._stream_confirm(request, target, verb, context)

    def stream_all(self, request: HttpRequest, key: str, verb: str) -> HttpResponse:
        """Retry or delete every entry of a stream DLQ (or every one matching the filter):
        GET confirms, POST runs one chunk."""
        target = stream_dlq_target(key, verb)
        require(request, VERBS[verb][0])
        data = request.POST if request.method == "POST" else request.GET
        filters = read_filters(request, data, items_url(target.key, stream_back(data)))
        if isinstance(filters, HttpResponse):
            return filters
        if request.method == "POST":
            return self._stream_chunk(request, target, verb, filters)
        client = get_redis()
        counted = streams.search(client, target.key, filters.select) if filters.active else None
        count = counted.matched if counted else streams.length(client, target.key)
        sentence = confirm_sentence(target, verb, count, counted, describe(filters, stream=True))
        context = {"sentence": sentence, "count": count, "all": True, "filter_fields": filter_fields(data)}
        context |= {"back": stream_back(data), "exact": counted is None or counted.complete}
        context["action"] = reverse("admin:stream_all", args=[target.key, verb])
        return self._stream_confirm(request, target, verb, context)

    def _stream_confirm(
        self, request: HttpRequest, target: Target, verb: str, context: dict[str, Any]
    ) -> HttpResponse:
        return self._confirm(request, target, verb, context, template="stream_confirm.html")

    def _stream_chunk(
        self, request: HttpRequest, target: Target, verb: str, filters: Filters
    ) -> HttpResponse:
        """One time-boxed chunk of a stream retry-all or delete-all, resumed after the id in ``start``."""
        client, data, as_json = get_redis(), request.POST, wants_json(request)
        back = items_url(target.key, stream_back(data))
        after = data.get("start", "-").strip() or "-"
        if after != "-" and not streams.is_entry_id(after):
            sentence = f"'start' must be a stream entry id like 1700000000000-0, not {after[:40]!r}."
            if as_json:
                return refuse(sentence, True)
            messages.error(request, sentence)
            return HttpResponseRedirect(back)
        if (replayed := replayed_step(request, client, back)) is not None:
            return replayed
        before = Tally.parse(data.get("tally"))
        chunk, position, kept, _ = actions.act_on_stream(
            client,
            target.key,
            verb=verb,
            request=request,
            after=after,
            budget_seconds=conf("BULK_CHUNK_SECONDS"),
            filters=filters,
            kept_before=before.kept if filters.active else None,
            deletion=before.run,
        )
        tally = before.add(chunk, kept)
        state = Progress(target, verb, chunk, tally, kept, back, after=position)
        if as_json:
            return JsonResponse(state.as_json())
        if state.ends(request):
            report(request, tally.outcome(chunk), verb, tally.run)
            return HttpResponseRedirect(back)
        context = {"target": target, "verb": verb, "state": state, "back": stream_back(data)}
        context |= {"filter_fields": filter_fields(data)}
        context["action_url"] = reverse("admin:stream_all", args=[target.key, verb])
        return self.render(request, "progress.html", f"{VERBS[verb][2]} in progress", context)

    def stream_entry(self, request: HttpRequest, key: str, entry_id: str) -> HttpResponse:
        """One stream entry in full: every field (long values cut at DISPLAY_LIMIT, with their length)."""
        target = queue_target(key)
        if not target.is_stream:
            raise Http404(f"{key} is a list: its entries open by index and fingerprint.")
        if not streams.is_entry_id(entry_id):
            raise Http404(f"{entry_id[:40]!r} is not a stream entry id ('<ms>-<seq>').")
        context: dict[str, Any] = {"target": target, "back": stream_back(request.GET)}
        found = streams.read_shown(get_redis(), key, [entry_id])
        if not found:
            return self.render(request, "vanished.html", "Entry not found", context, status=404)
        entry, limit = found[0].text, conf("DISPLAY_LIMIT")
        failure = {name: entry.fields[name] for name in streams.DLQ_FIELDS if name in entry.fields}
        context |= {"entry": entry, "size": found[0].size, "nonce": new_nonce()}
        context |= {"failure": shown(list(failure.items()), entry.cut) if target.is_dlq else []}
        context["failed"] = entry.failed if target.is_dlq else None
        original = entry.job if target.is_dlq else entry.fields
        context["fields"] = field_texts(original.items(), limit, entry.cut)
        return self.render(request, "stream_entry.html", f"Entry {entry.id} of {key}", context)

    def entry(self, request: HttpRequest, key: str, index: int, fingerprint: str) -> HttpResponse:
        target = queue_target(key)
        if target.is_stream:
            raise Http404("A stream's entries open by entry id.")
        found = dlq.entry_at(get_redis(), key, index, fingerprint)
        context: dict[str, Any] = {"target": target, "back": back_query(request.GET)}
        if found is None:
            return self.render(request, "vanished.html", "Entry not found", context, status=404)
        context |= {**entry_context(found, target.is_dlq), "nonce": new_nonce()}
        return self.render(request, "entry.html", f"Entry {found.id[:8]} of {key}", context)

    def edit(self, request: HttpRequest, key: str, index: int, fingerprint: str) -> HttpResponse:
        """Edit-and-retry: GET shows the job, POST previews (rules + diff), a confirmed POST retries."""
        target = dlq_target(key, "retry")
        require(request, "edit_and_retry")
        found = dlq.entry_at(get_redis(), key, index, fingerprint)
        context: dict[str, Any] = {"target": target, "back": back_query(request.GET)}
        if found is None:
            return self.render(request, "vanished.html", "Entry not found", context, status=404)
        if found.job is None:  # malformed, or a large entry whose job does not end before the cut
            context["why"] = (
                f"This entry has no job the console can edit: {found.problem or 'no original_job'}."
            )
            return self.render(request, "vanished.html", "Nothing to edit", context, status=409)
        text = request.POST.get("job") or json.dumps(found.job, indent=2, ensure_ascii=False)
        context |= {"entry": found, "text": text, "nonce": new_nonce()}
        if request.method == "POST":
            job, errors = validation.parse_job(text)
            errors = errors or validation.job_errors(target.source or "", job)
            digest = validation.text_digest(text)
            if not errors and request.POST.get("confirm") == "yes":
                if request.POST.get("previewed") == digest:
                    return self._edit_and_retry(request, target, found, text)
                context["changed_since_preview"] = True  # retry only what the operator has seen
            changes = [] if errors else validation.diff_lines(validation.diff(found.job, job))
            context |= {"errors": errors, "diff": changes}
            context |= {"previewed": not errors, "digest": digest}
        return self.render(request, "edit.html", f"Edit and retry {found.id[:8]}", context)

    def _edit_and_retry(
        self, request: HttpRequest, target: Target, entry: dlq.Entry, text: str
    ) -> HttpResponse:
        client = get_redis()
        back = items_url(target.key, back_query(request.GET))
        if not actions.first_submission(client, request.POST.get("nonce", "")):
            messages.warning(request, DUPLICATE)
            return HttpResponseRedirect(back)
        outcome, errors = actions.edit_and_retry(client, target.key, entry.ref, text, request=request)
        if outcome is None:
            messages.error(request, " ".join(errors))
        else:
            report(request, outcome, "retry")
        return HttpResponseRedirect(back)

    def selected(self, request: HttpRequest, key: str, verb: str) -> HttpResponse:
        target = dlq_target(key, verb)
        require(request, VERBS[verb][0])
        data = request.POST if request.method == "POST" else request.GET
        refs, back = selected_refs(data), items_url(target.key, back_query(data))
        if not refs or len(refs) > MAX_SELECTED:
            messages.warning(request, f"Select between 1 and {MAX_SELECTED} entries first.")
            return HttpResponseRedirect(back)
        if request.method == "POST":
            return self._act_on_selected(request, target, verb, refs, back)
        found = dlq.resolve(get_redis(), target.key, dlq.parse_refs(refs), whole=False)
        rows = [row_of(e, True) for e in found]
        if not rows:
            messages.warning(request, f"None of the selected entries is still in {target.key}.")
            return HttpResponseRedirect(back)
        context = {"refs": refs, "rows": rows, "missing": len(refs) - len(rows), "count": len(rows)}
        context |= {"sentence": selected_sentence(target, verb, len(rows)), "back": back_query(data)}
        return self._confirm(request, target, verb, context)

    def _act_on_selected(
        self, request: HttpRequest, target: Target, verb: str, refs: list[str], back: str
    ) -> HttpResponse:
        client = get_redis()
        if not actions.first_submission(client, request.POST.get("nonce", "")):
            messages.warning(request, DUPLICATE)
            return HttpResponseRedirect(back)
        deletion = new_nonce()
        outcome, _ = actions.act_on_selected(
            client, target.key, refs, verb=verb, request=request, deletion=deletion
        )
        report(request, outcome, verb, deletion)
        return HttpResponseRedirect(back)

    # --- A selection across pages (kept in the session, per user and DLQ) ---------------------------

    def _selection(self, request: HttpRequest, target: Target) -> selection.Selection:
        return selection.Selection(request.session, request.user.pk, target.key)

    def select(self, request: HttpRequest, key: str) -> HttpResponse:
        """Change the selection (POST only): sync this page's ticks, add, remove or clear.

        ``then=retry|delete`` goes on to the confirmation page; JSON answers for select.js.
        """
        target = selection_target(key)
        if not may_select(request, target):
            raise PermissionDenied
        data, as_json = request.POST, wants_json(request)
        then, op = data.get("then", ""), data.get("op", "sync")
        if then and then not in VERBS:
            return refuse(f"Unknown action {then[:20]!r}: use retry or delete.", as_json)
        if then:
            require(request, VERBS[then][0])
        if op not in SELECTION_OPS:
            return refuse(f"Unknown selection change {op[:20]!r}: use sync, add, remove or clear.", as_json)
        try:
            kind = target.ref_kind
            shown = selection.parse(data.getlist("shown"), kind)
            ticked = selection.parse(data.getlist(kind.field), kind)
        except selection.BadRef as exc:
            return refuse(str(exc), as_json)
        chosen = self._selection(request, target)
        refused: list[str] = []
        if op == "clear":
            chosen.clear()
        elif op == "remove":
            chosen.remove(ticked)
        else:
            refused = chosen.add(ticked) if op == "add" else chosen.sync(shown, ticked)
        chosen.save()
        note = selection.full_message(len(refused)) if refused else ""
        if as_json:
            return JsonResponse({"count": len(chosen), "refused": refused, "message": note})
        if note:
            messages.warning(request, note)
        back = page_state(target, data)
        if then and chosen:
            return HttpResponseRedirect(selection_url(target.key, then, back))
        if then:
            messages.warning(request, f"Tick the entries to {then} first.")
        return HttpResponseRedirect(items_url(target.key, back))

    def selection_act(self, request: HttpRequest, key: str, verb: str) -> HttpResponse:
        """GET: what the selection across pages is and what will happen; POST: do it, then clear it."""
        target = selection_target(key, verb)
        require(request, VERBS[verb][0])
        data = request.POST if request.method == "POST" else request.GET
        back = page_state(target, data)
        client, chosen = get_redis(), self._selection(request, target)
        if request.method == "POST" and not actions.first_submission(client, data.get("nonce", "")):
            messages.warning(request, DUPLICATE)
            return HttpResponseRedirect(items_url(target.key, back))
        if not chosen:
            messages.warning(request, f"Nothing is selected in {target.key}: tick entries first.")
            return HttpResponseRedirect(items_url(target.key, back))
        if request.method == "POST":
            return self._act_on_selection(request, target, verb, chosen, back)
        if target.is_stream:
            return self._confirm_stream_selection(request, target, verb, chosen, back)
        entries = selection.resolve(client, target.key, chosen.refs, whole=False)
        if not entries:
            return self._all_gone(request, target, chosen, back)
        context = {"rows": [row_of(e, True) for e in entries[:CONFIRM_ROWS]], "count": len(entries)}
        context |= selection_counts(target, verb, chosen, len(entries), back)
        return self._confirm(request, target, verb, context)

    def _confirm_stream_selection(
        self, request: HttpRequest, target: Target, verb: str, chosen: selection.Selection, back: str
    ) -> HttpResponse:
        """The stream DLQ's confirmation page (``stream_confirm.html``) for a selection across pages."""
        ids = sorted(chosen.names, key=selection.stream_order)
        found = streams.read_shown(get_redis(), target.key, ids)
        if not found:
            return self._all_gone(request, target, chosen, back)
        context = {"stream_rows": stream_rows([e.text for e in found[:CONFIRM_ROWS]]), "count": len(found)}
        context |= selection_counts(target, verb, chosen, len(found), back)
        context["action"] = reverse("admin:queue_selection_act", args=[target.key, verb])
        return self._stream_confirm(request, target, verb, context)

    def _all_gone(
        self, request: HttpRequest, target: Target, chosen: selection.Selection, back: str
    ) -> HttpResponse:
        why = "retried or deleted" if target.is_stream else "retried, deleted or moved far"
        messages.warning(
            request,
            f"None of the {len(chosen)} selected entries is still in {target.key} ({why}); "
            "clear the selection.",
        )
        return HttpResponseRedirect(items_url(target.key, back))

    def _act_on_selection(
        self, request: HttpRequest, target: Target, verb: str, chosen: selection.Selection, back: str
    ) -> HttpResponse:
        if request.POST.get("selection") != chosen.digest:
            messages.warning(
                request,
                "The selection changed after this confirmation page was shown (in another tab?); "
                "check it again.",
            )
            return HttpResponseRedirect(selection_url(target.key, verb, back))
        refs, deletion = chosen.refs, new_nonce()
        outcome = act_on_selection(request, target, verb, chosen, deletion)
        chosen.remove(refs)
        chosen.save()
        report(request, outcome, verb, deletion)
        return HttpResponseRedirect(items_url(target.key, back))

    def matching(self, request: HttpRequest, key: str, verb: str) -> HttpResponse:
        target = dlq_target(key, verb)
        require(request, VERBS[verb][0])
        data = request.POST if request.method == "POST" else request.GET
        filters = read_filters(request, data, items_url(target.key, back_query(data)))
        if isinstance(filters, HttpResponse):
            return filters
        if request.method == "POST":
            return self._run_chunk(request, target, verb, filters)
        client = get_redis()
        counted = search(client, target.key, filters.select) if filters.active else None
        count = counted.matched if counted else dlq.page(client, target.key, 0, 1).total
        sentence = confirm_sentence(target, verb, count, counted, describe(filters))
        context = {"sentence": sentence, "count": count, "filter_fields": filter_fields(data), "all": True}
        context["exact"] = counted is None or counted.complete
        return self._confirm(request, target, verb, context | {"back": back_query(data)})

    def _confirm(
        self,
        request: HttpRequest,
        target: Target,
        verb: str,
        context: dict[str, Any],
        template: str = "confirm.html",
    ) -> HttpResponse:
        """GET of an action: what will happen, to how many, and the form that does it."""
        title = f"{VERBS[verb][2]} entries of {target.key}"
        context |= {"target": target, "verb": verb, "nonce": new_nonce()}
        if verb == "retry" and target.source:  # how much the retry can move before the source is full
            context["room"] = inventory.describe_source(get_redis(), target.key)
        context["button"] = confirm_button(verb, context, stream=target.is_stream)
        return self.render(request, template, title, context)

    def _run_chunk(self, request: HttpRequest, target: Target, verb: str, filters: Filters) -> HttpResponse:
        """One time-boxed chunk of a bulk action; JSON for bulk.js, else a progress page or a redirect."""
        client, data = get_redis(), request.POST
        back = items_url(target.key, back_query(data))
        if (replayed := replayed_step(request, client, back)) is not None:
            return replayed
        start, before = number(data.get("start"), 0), Tally.parse(data.get("tally"))
        chunk, position, _ = actions.act_on_matching(
            client,
            target.key,
            filters,
            verb=verb,
            request=request,
            start=start,
            budget_seconds=conf("BULK_CHUNK_SECONDS"),
            deletion=before.run,
            unexamined=before.unexamined(start),
            end=ending(data),
        )
        tally = before.add(chunk, position)
        state = Progress(target, verb, chunk, tally, position, back)
        if wants_json(request):
            return JsonResponse(state.as_json())
        if state.ends(request):
            report(request, tally.outcome(chunk), verb, tally.run)
            return HttpResponseRedirect(back)
        context = {"target": target, "verb": verb, "state": state, "back": back_query(data)}
        context |= {"filter_fields": filter_fields(data), "ending": ending(data)}
        return self.render(request, "progress.html", f"{VERBS[verb][2]} in progress", context)

    def archive(self, request: HttpRequest) -> HttpResponse:
        rows = queue_archive()
        key, state = request.GET.get("key", ""), request.GET.get("state", "")
        deletion = archive.Deletion.find(request.GET.get("deletion", "")[:32])
        if request.GET.get("deletion") and deletion is None:
            raise Http404("No archived entries belong to that delete action.")
        filters = read_filters(request, request.GET, reverse("admin:archive"))
        if isinstance(filters, HttpResponse):
            return filters
        key = deletion.key if deletion else key
        if key:  # a DLQ's rows are all list or stream entries: its index alone finds them
            is_queue = keys.classify(key).name in inventory.QUEUE_FAMILIES
            rows = (ArchivedItem.objects.all() if is_queue else rows).filter(key=key)
        rows = rows.filter(deletion=deletion.id) if deletion else rows
        rows = rows.filter(state=state) if state in ArchivedItem.State.values else rows
        context: dict[str, Any] = {"key": key, "state": state, "keys": archived_keys(), "deletion": deletion}
        if filters.active:
            context |= archive_search(request, archive.with_heads(rows), filters)
        else:
            paginator = Paginator(archive.with_heads(rows), ARCHIVE_PER_PAGE)
            # the same rows the delete's sentence counts: count them once; else counted without the heads
            paginator.count = deletion.rows if deletion and not state else rows.count()
            page = paginator.get_page(request.GET.get("page"))
            context["pager"] = pager(
                request.GET, total=page.paginator.count, offset=page.start_index() - 1 if len(page) else 0,
                size=ARCHIVE_PER_PAGE, shown=len(page), param="page",
            )  # fmt: skip
            context |= {"page": page, "found": page.object_list}
        context["items"] = [(item, archive_row(item)) for item in context["found"]]
        if key and keys.classify(key).name in inventory.QUEUE_FAMILIES:  # what "Restore all" would take
            scope = deletion.id if deletion else ""
            restorable = None
            if not filters.active:
                restorable = deletion.archived if deletion else archive.restorable(key).count()
            context |= {"restorable": restorable, "source": keys.source_queue(key)}
            if filters.active:  # the query of "Restore all matching…"
                of = [("deletion", scope)] if scope else []
                context["restore_matching"] = urlencode([("key", key), *filter_fields(request.GET), *of])
        context |= {
            "states": ArchivedItem.State.choices,
            "nonce": new_nonce(),
            "back": request.GET.urlencode(),
            "filter_query": filter_query(request.GET),
            "filter_fields": filter_fields(request.GET),
        }
        return self.render(request, "archive.html", "Archive of deleted DLQ entries", context)

    def archived(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = get_object_or_404(archive.with_heads(queue_archive()), pk=pk)
        entry = dlq.Entry(row.key, -1, *archive.listed(row))
        is_dlq = keys.classify(row.key).name in inventory.QUEUE_FAMILIES
        if row.kind == ArchivedItem.Kind.STREAM:
            is_dlq = False  # its raw bytes are the archive's JSON of the entry, not a JobFailure
        context = {**entry_context(entry, is_dlq), "item": row, "nonce": new_nonce()}
        if row.kind == ArchivedItem.Kind.STREAM:
            context |= stream_facts(bytes(row.raw))
        return self.render(request, "archive_item.html", f"Archived entry #{row.pk} of {row.key}", context)

    def restore(self, request: HttpRequest) -> HttpResponse:
        require(request, "delete_items")
        query = QueryDict(request.POST.get("back", "")).urlencode()
        back = reverse("admin:archive") + (f"?{query}" if query else "")
        client, ids = get_redis(), selected_ids(request.POST)
        if not ids:
            messages.warning(request, "Select at least one archived entry first.")
        elif not actions.first_submission(client, request.POST.get("nonce", "")):
            messages.warning(request, DUPLICATE)
        else:
            to_source = request.POST.get("to") == "source"
            result = actions.restore(client, ids, to_source=to_source, request=request)
            level = (
                messages.success if result["restored"] and not result["not_restored"] else messages.warning
            )
            level(request, restore_summary(result, to_source))
        return HttpResponseRedirect(back)

    def restore_all(self, request: HttpRequest) -> HttpResponse:
        """Every archived entry of one DLQ back: GET confirms (how many, where, the room there), POST
        runs one time-boxed step, oldest rows first, as a bulk action with a progress bar."""
        require(request, "delete_items")
        data = request.POST if request.method == "POST" else request.GET
        target = queue_target(str(data.get("key", "")))
        if not target.is_dlq:
            raise Http404("Only archived DLQ entries can be restored.")
        to_source = data.get("to") == "source"
        deletion = archive.Deletion.find(str(data.get("deletion", ""))[:32])
        if data.get("deletion") and (deletion is None or deletion.key != target.key):
            raise Http404(f"No archived entries of {target.key} belong to that delete action.")
        scope = deletion.id if deletion else ""
        where = [("deletion", scope)] if deletion else [("key", target.key)]
        back = reverse("admin:archive") + "?" + urlencode(where + filter_fields(data))
        filters = read_filters(request, data, back)
        if isinstance(filters, HttpResponse):
            return filters
        if request.method == "POST":
            return self._restore_step(request, target, to_source, back, scope, filters)
        rows = archive.restorable(target.key, scope)
        found = archive.search(rows, filters.select) if filters.active else None
        count = found.matched if found else rows.count()
        if not count:
            what = f"Nothing that delete took from {target.key}" if deletion else f"Nothing of {target.key}"
            if found:
                near = "" if found.complete else f" (searched the newest {found.examined:,})"
                sentence = f"{what} that is still archived matches {describe(filters)}{near}."
            else:
                sentence = f"{what} is archived any more."
            messages.warning(request, sentence)
            return HttpResponseRedirect(back)
        client = get_redis()
        destination = target.source if to_source else target.key
        if to_source:
            room: inventory.QueueInfo | None = inventory.describe_source(client, target.key)
        else:  # a stream DLQ takes its entries back untrimmed; an overflow DLQ has no max size
            room = None if target.is_stream else inventory.describe(client, target.key)
        context = {"target": target, "count": count, "destination": destination, "room": room}
        context |= {"to": "source" if to_source else "dlq", "nonce": new_nonce(), "back_url": back}
        context |= {"deletion": deletion, "filter_fields": filter_fields(data), "found": found}
        context["matching"] = describe(filters) if filters.active else ""
        return self.render(
            request, "archive_confirm.html", f"Restore archived entries of {target.key}", context
        )

    def _restore_step(
        self,
        request: HttpRequest,
        target: Target,
        to_source: bool,
        back: str,
        deletion: str,
        filters: Filters,
    ) -> HttpResponse:
        client, data, as_json = get_redis(), request.POST, wants_json(request)
        if (replayed := replayed_step(request, client, back)) is not None:
            return replayed
        run, _ = actions.restore_all(
            client,
            target.key,
            to_source=to_source,
            request=request,
            after=number(data.get("start"), 0),
            budget_seconds=conf("BULK_CHUNK_SECONDS"),
            deletion=deletion,
            filters=filters,
        )
        chunk = run.outcome()
        before = Tally.parse(data.get("tally"))
        kept = sum(before.skipped.values()) + chunk.skipped_count  # rows passed over stay archived
        state = RestoreProgress(target, "restore", chunk, before.add(chunk, kept), kept, back, str(run.after))
        if as_json:
            return JsonResponse(state.as_json())
        if state.ends(request):
            (messages.success if state.clean else messages.warning)(request, state.summary)
            return HttpResponseRedirect(back)
        context = {
            "target": target,
            "verb": "restore",
            "state": state,
            "back": "",
            "action_url": request.path,
            "back_label": f"the archive of {target.key}",
            "filter_fields": [("key", target.key), ("to", "source" if to_source else "dlq")]
            + ([("deletion", deletion)] if deletion else [])
            + filter_fields(data),
        }
        return self.render(request, "progress.html", "Restore in progress", context)


# --- Bulk actions and filters ------------------------------------------------------------------------


def ending(data: QueryDict) -> bool:
    """Whether the progress form asks to end the run here, the DLQ put back in order (``end=1``)."""
    return data.get("end") == "1"


@dataclass(frozen=True)
class Progress:
    """Where a bulk action stands after a chunk; the page, the JSON and bulk.js all read this."""

    endable: ClassVar[bool] = True  # a list DLQ's run may end early with its order put back

    target: Target
    verb: str
    chunk: dlq.Outcome
    tally: Tally
    position: int
    back: str
    after: str = ""  # a stream's position: the last entry id dealt with (``position`` counts those kept)

    @property
    def handled(self) -> int:
        return min(self.tally.handled(self.position), self.tally.planned)

    @property
    def finished(self) -> bool:
        """Nothing left, the target is full, or every entry there when it began has been dealt with."""
        return not self.chunk.remaining or self.chunk.full or self.handled >= self.tally.planned

    @property
    def room_later(self) -> bool:
        """Stopped because the target is full, with entries of the action still to go."""
        return self.chunk.full and self.handled < self.tally.planned and bool(self.chunk.remaining)

    def ends(self, request: HttpRequest) -> bool:
        """Whether a page (not bulk.js) shows the outcome now: finished, unless the operator asked to
        wait for room (``wait``) and it stopped for want of it."""
        return self.finished and not (request.POST.get("wait") and self.room_later)

    @property
    def summary(self) -> str:
        return self.tally.outcome(self.chunk).summary(VERBS[self.verb][1])

    @property
    def nonce(self) -> str:
        return new_nonce()

    @property
    def resume(self) -> int | str:
        """What the next chunk is sent as ``start``: a list's position, a stream's last id."""
        return self.after or self.position

    @property
    def clean(self) -> bool:
        return not self.chunk.full and not self.tally.skipped

    @property
    def undo(self) -> str:
        """Where a delete is undone (the archive rows of its steps so far); empty for other actions."""
        return undo_url(self.tally.run) if self.verb == "delete" and self.tally.done else ""

    @property
    def can_end(self) -> bool:
        """Whether ending here would reorder anything: a list DLQ's unfinished run has moved entries it
        examined and left (``position``) to the tail, behind some it has not examined yet."""
        return (
            self.endable
            and not self.target.is_stream
            and self.position > 0
            and bool(self.chunk.remaining)
            and not self.finished
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "finished": self.finished,
            "can_end": self.can_end,  # bulk.js offers "End here…" when it stops or pauses
            "kept": self.position,
            "room_later": self.room_later,  # bulk.js pauses here, or waits for room and goes on
            "summary": self.summary,
            "level": "success" if self.clean else "warning",
            "done": self.tally.done,
            "handled": self.handled,
            "planned": self.tally.planned,
            "remaining": self.chunk.remaining,
            "start": self.resume,
            "nonce": self.nonce,
            "tally": self.tally.dumps(),
            "back": self.back,
            "undo": self.undo,  # bulk.js shows it once the run finishes or is stopped
        }


class RestoreProgress(Progress):
    """A restore of a DLQ's whole archive, driven by the same page and bulk.js as the DLQ actions."""

    endable: ClassVar[bool] = False  # it adds to the DLQ's tail and reorders nothing

    @property
    def summary(self) -> str:
        return archive.restore_summary(self.tally.outcome(self.chunk))


def read_filters(request: HttpRequest, data: QueryDict, back: str) -> Filters | HttpResponse:
    """A bulk action's filter, or a redirect to ``back`` that says what is wrong with it."""
    try:
        return Filters.from_query(data)
    except BadFilter as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(back)


def filter_fields(data: QueryDict) -> list[tuple[str, str]]:
    """The filter exactly as typed (``Filters.as_query`` rounds times to minutes), for links and forms."""
    return [(name, str(data.get(name, ""))[:200]) for name in FILTER_NAMES if data.get(name, "").strip()]


def filter_query(data: QueryDict) -> str:
    return urlencode(filter_fields(data))


def confirm_button(verb: str, context: dict[str, Any], *, stream: bool) -> str:
    """The confirmation button's words: how many entries, and "up to" the room a retry has."""
    count = int(context.get("count", 0))
    if context.get("all") and not context.get("exact", True):
        what = "them"
    else:
        every = "all " if stream and context.get("all") and not context.get("filter_fields") else ""
        what = f"{every}{count:,} entr{'y' if count == 1 else 'ies'}"
    room = getattr(context.get("room"), "room", None)
    if room and room < count:
        what = f"up to {room:,} of {what}"
    return f"Yes, {verb} {what}"


def confirm_sentence(
    target: Target, verb: str, count: int, counted: Scan | streams.StreamScan | None, words: str
) -> str:
    """What the confirmation page's button will do, and to how many entries."""
    to = f" to {target.source}" if verb == "retry" else ""
    what = VERBS[verb][2]
    if counted is None:
        return f"{what} all {count:,} entries of {target.key}{to}."
    if counted.complete:
        return f"{what} all {counted.matched:,} entries of {target.key} matching {words}{to}."
    return (
        f"{what} every entry of {target.key} matching {words}{to}: {counted.matched:,} of the first "
        f"{counted.examined:,} of {counted.total:,} match; the rest are checked as it runs."
    )


def stream_facts(raw: bytes) -> dict[str, Any]:
    """An archived stream entry's id and DLQ fields ("What failed") and original fields (the job)."""
    try:
        entry = streams.Stored.from_archive(raw).text
    except ValueError:
        return {}
    failed = [("entry id", entry.id)] + [(k, v) for k, v in entry.fields.items() if k in streams.DLQ_FIELDS]
    return {"facts": shown(failed), "job_facts": shown(list(entry.job.items()))}


def stream_dlq_target(key: str, verb: str) -> Target:
    target = queue_target(key)
    if target.family != "stream_dlq" or verb not in VERBS:
        raise Http404("Only stream DLQ entries can be retried or deleted here.")
    return target


def stream_back(data: QueryDict) -> str:
    """The stream page's state (page size, order, and the id it was paged ``after``)."""
    source = QueryDict(str(data.get("back", ""))) if data.get("back") else data
    kept = QueryDict(back_query(source), mutable=True)
    after = str(source.get("after", ""))
    if streams.is_entry_id(after):
        kept["after"] = after
    return kept.urlencode()


StreamRow = tuple[streams.StreamEntry, list[tuple[str, str]]]


def stream_rows(entries: list[streams.StreamEntry]) -> list[StreamRow]:
    """Each entry with its fields cut to one line, for the stream and confirmation pages."""
    return [(e, field_texts(e.fields.items(), ROW_LIMIT, e.cut, one_line=True)) for e in entries]


def selection_counts(
    target: Target, verb: str, chosen: selection.Selection, found: int, back: str
) -> dict[str, Any]:
    """What either confirmation page says about a selection across pages of which ``found``
    entries are still there, and the digest its form posts back."""
    context: dict[str, Any] = {"more": max(found - CONFIRM_ROWS, 0), "missing": len(chosen) - found}
    context |= {"sentence": selected_sentence(target, verb, found), "back": back}
    return context | {"digest": chosen.digest}


def act_on_selection(
    request: HttpRequest, target: Target, verb: str, chosen: selection.Selection, deletion: str
) -> dlq.Outcome:
    """Retry or delete a whole selection through the services that archive first and audit."""
    if target.is_stream:
        ids = sorted(chosen.names, key=selection.stream_order)
        return act_on_stream_ids(request, target, verb, ids, deletion)
    refs = chosen.refs
    return actions.act_on_selected(
        get_redis(), target.key, refs, verb=verb, request=request, deletion=deletion
    )[0]


def act_on_stream_ids(
    request: HttpRequest, target: Target, verb: str, ids: list[str], deletion: str
) -> streams.StreamOutcome:
    """Retry or delete stream DLQ entries by id; a delete's archive rows carry ``deletion``."""
    client = get_redis()
    if verb == "retry":
        return actions.retry_stream(client, target.key, ids, request=request)[0]
    return actions.delete_stream(client, target.key, ids, request=request, deletion=deletion)[0]


def page_state(target: Target, data: QueryDict) -> str:
    """The item browser's state to go back to; a stream page also keeps the id it was paged after."""
    return stream_back(data) if target.is_stream else back_query(data)


def selected_sentence(target: Target, verb: str, count: int) -> str:
    to = f" to {target.source}" if verb == "retry" else ""
    noun = "entry" if count == 1 else "entries"
    return f"{VERBS[verb][2]} {count:,} selected {noun} of {target.key}{to}."


def describe(filters: Filters, *, stream: bool = False) -> str:
    names = {
        "q": "error text or type",
        "type": "error type exactly",
        "error": "error exactly",
        "camera": "camera",
        "since": "failed since",
        "until": "failed until",
    }
    if stream:
        names |= {"q": "reason", "error": "reason exactly"}
    return ", ".join(f"{names[name]} “{value}”" for name, value in filters.as_query().items())


def restore_summary(result: dict[str, int], to_source: bool) -> str:
    where = "their source queue" if to_source else "their DLQ"
    text = f"Restored {result['restored']} archived entries to {where}"
    if result["not_restored"]:
        text += (
            f"; {result['not_restored']} not restored (not archived any more, no job to rebuild, "
            "or the queue is full)"
        )
    return text + "."


def admin_urls(site: Any) -> list[URLPattern]:
    return QueuePages(site).urls()
