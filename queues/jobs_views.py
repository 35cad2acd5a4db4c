"""Job pages in the console's admin site: the list over both keyspaces, a job's detail, abort and cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_safe

from console.redis import get_redis
from console.roles import perm
from queues import actions, jobs, jobs_archive, keys
from queues.conf import conf
from queues.dlq import fingerprint
from queues.forms import PAGE_SIZES, new_nonce, number
from queues.views import DUPLICATE, jumped, pager, require
from realtime.views import SOCKET_PATH

DEFAULT_SIZE = 50
VERBS = {"abort": "Abort", "cancel": "Cancel", "delete": "Delete"}
PERMISSIONS = {"abort": "cancel_jobs", "cancel": "cancel_jobs", "delete": "delete_items"}
ARCHIVE_PER_PAGE = 50
ALLOWED = {"abort": ("running",), "cancel": ("queued", "pending")}


class BadQuery(ValueError):
    """A filter that cannot be read; the message says which and how."""


def moment(value: str, name: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(
            f"'{name}' must be a date and time like 2026-02-11T22:04, not {value[:40]!r}."
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def query_of(data: QueryDict) -> jobs.Query:
    return jobs.Query(
        status=data.get("status", "").strip()[:20],
        type=data.get("type", "").strip()[:64],
        since=moment(data.get("since", ""), "since"),
        until=moment(data.get("until", ""), "until"),
        stale=data.get("stale") == "1",
    )


def job_url(job: jobs.Job) -> str:
    return reverse("admin:job_detail", args=[job.id]) + f"?source={job.source}"


class JobPages:
    def __init__(self, site: AdminSite) -> None:
        self.site = site

    def urls(self) -> list[URLPattern]:
        view = self.site.admin_view
        return [
            path("jobs/", view(require_safe(self.job_list)), name="job_list"),
            path("jobs/archive/", view(require_safe(self.archive)), name="job_archive"),
            path("jobs/archive/<int:pk>/restore/", view(self.restore), name="job_restore"),
            path("jobs/<str:job_id>/", view(require_safe(self.detail)), name="job_detail"),
            path("jobs/<str:job_id>/<str:verb>/", view(self.act), name="job_act"),
        ]

    def render(
        self, request: HttpRequest, template: str, title: str, context: dict[str, Any], status: int = 200
    ) -> TemplateResponse:
        full = {**self.site.each_context(request), "title": title, **context}
        full["can_cancel"] = request.user.has_perm(perm("cancel_jobs"))
        full["can_delete"] = request.user.has_perm(perm("delete_items"))
        full["stale_seconds"] = conf("JOB_STALE_SECONDS")
        full["cache_seconds"] = conf("JOB_CACHE_SECONDS")
        # Rows update from the relay's ``jobs`` notices (static/queues/js/jobs.js) for live watchers.
        full["socket_path"] = SOCKET_PATH if request.user.has_perm(perm("view_live_events")) else ""
        return TemplateResponse(request, f"jobs/{template}", full, status=status)

    def job_list(self, request: HttpRequest) -> HttpResponse:
        if jump := jumped(request):
            return jump
        taken = jobs.snapshot(get_redis())
        context: dict[str, Any] = {"snapshot": taken, "statuses": jobs.STATUSES, "sizes": PAGE_SIZES}
        context["types"] = taken.types
        context["form"] = {
            name: request.GET.get(name, "") for name in ("status", "type", "since", "until", "stale")
        }
        try:
            query = query_of(request.GET)
        except BadQuery as exc:
            context["filter_error"] = str(exc)
            return self.render(request, "list.html", "Jobs", context, status=400)
        chosen = jobs.select(taken, query)
        size = number(request.GET.get("size"), DEFAULT_SIZE)
        size = size if size in PAGE_SIZES else DEFAULT_SIZE
        offset = min(number(request.GET.get("offset"), 0), max(len(chosen) - 1, 0)) // size * size
        rows = jobs.page(get_redis(), taken, chosen[offset : offset + size])
        context |= {"rows": rows, "total": len(chosen), "counts": taken.counts}
        context["stale_count"] = taken.stale_count
        context["pager"] = pager(request.GET, total=len(chosen), offset=offset, size=size, shown=len(rows))
        return self.render(request, "list.html", "Jobs", context)

    def detail(self, request: HttpRequest, job_id: str) -> HttpResponse:
        found = jobs.find(get_redis(), job_id)
        source = request.GET.get("source", "")
        if source in jobs.SOURCES and any(job.source == source for job in found):
            found = [job for job in found if job.source == source]
        return self._detail(request, job_id, found, status=200 if found else 404)

    def _detail(
        self, request: HttpRequest, job_id: str, found: list[jobs.Job], *, error: str = "", status: int = 200
    ) -> HttpResponse:
        context = {"job_id": job_id, "jobs": found, "sources": jobs.SOURCES, "error": error}
        return self.render(request, "detail.html", f"Job {job_id}", context, status=status)

    def act(self, request: HttpRequest, job_id: str, verb: str) -> HttpResponse:
        """GET: a confirmation page (what will happen, what HSI notices); POST: do it, audited."""
        if verb not in VERBS:
            return HttpResponse(f"Unknown job action {verb[:20]!r}: abort, cancel or delete.", status=404)
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponse("Use GET to confirm and POST to act.", status=405)
        require(request, PERMISSIONS[verb])
        data = request.POST if request.method == "POST" else request.GET
        source = data.get("source", "")
        source = source if source in jobs.SOURCES else ""
        client = get_redis()
        try:
            job = stale_job(client, job_id, source) if verb == "delete" else jobs.pick(client, job_id, source)
        except jobs.JobMissing as exc:
            return self._detail(request, job_id, [], error=str(exc), status=404)
        except jobs.JobConflict as exc:
            return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
        if request.method != "POST":
            return self._confirm(request, job, verb)
        back = job_url(job)
        if not actions.first_submission(client, data.get("nonce", "")):
            messages.warning(request, DUPLICATE)
            return HttpResponseRedirect(back)
        expected = data.get("expected", "")
        try:
            if verb == "abort":
                receivers, _ = jobs.abort(
                    client, job, data.get("reason", ""), expected=expected, request=request
                )
                (messages.success if receivers else messages.warning)(request, abort_sentence(job, receivers))
            elif verb == "cancel":
                jobs.cancel(client, job, expected=expected, request=request)
                messages.success(request, cancel_sentence(job))
            else:
                username = request.user.get_username()
                row, _ = jobs_archive.delete_stale(
                    client, job, expected=expected, username=username, request=request
                )
                messages.success(request, f"Deleted {row.key}; it is kept as archive entry #{row.pk}.")
                return HttpResponseRedirect(reverse("admin:job_archive"))
        except jobs.JobConflict as exc:
            return self._detail(request, job_id, jobs.find(client, job_id), error=str(exc), status=409)
        except jobs.JobMissing as exc:
            return self._detail(request, job_id, [], error=str(exc), status=404)
        return HttpResponseRedirect(back)

    def _confirm(self, request: HttpRequest, job: jobs.Job, verb: str) -> HttpResponse:
        if verb == "delete":
            refusal = "" if job.stale else f"Job {job.id} is not stale: only stale job keys can be deleted."
        elif job.problem or job.status not in ALLOWED[verb]:
            refusal = f"Job {job.id} is {job.status}: {verb} needs a {' or '.join(ALLOWED[verb])} job."
        else:
            refusal = ""
        if refusal:
            return self._detail(request, job.id, [job], error=refusal, status=409)
        context: dict[str, Any] = {"job": job, "verb": verb, "nonce": new_nonce(), "back": job_url(job)}
        context |= {"label": VERBS[verb], "channel": keys.job_control_channel(job.id)}
        context["expected"] = delete_token(job) if verb == "delete" else job.status
        return self.render(request, "confirm.html", f"{VERBS[verb]} job {job.id}", context)

    def archive(self, request: HttpRequest) -> HttpResponse:
        rows = Paginator(jobs_archive.archived_jobs(), ARCHIVE_PER_PAGE).get_page(request.GET.get("page"))
        return self.render(request, "archive.html", "Archived job keys", {"page": rows})

    def restore(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: confirm restoring one archived job key; POST: restore it (only if the key is absent)."""
        require(request, "delete_items")
        row = get_object_or_404(jobs_archive.archived_jobs(), pk=pk)
        if request.method != "POST":
            context = {"row": row, "nonce": new_nonce()}
            return self.render(request, "restore.html", f"Restore {row.key}", context)
        client = get_redis()
        back = reverse("admin:job_archive")
        if not actions.first_submission(client, request.POST.get("nonce", "")):
            messages.warning(request, DUPLICATE)
            return HttpResponseRedirect(back)
        try:
            restored = jobs_archive.restore(client, pk, username=request.user.get_username(), request=request)
        except (jobs.JobMissing, jobs.JobConflict) as exc:
            messages.warning(request, str(exc))
            return HttpResponseRedirect(back)
        if restored:
            messages.success(request, f"Restored {row.key} from archive entry #{pk}.")
        else:
            messages.warning(
                request, f"{row.key} exists again (HSI wrote it since), so it was not overwritten."
            )
        return HttpResponseRedirect(back)


def stale_job(client: Any, job_id: str, source: str) -> jobs.Job:
    """A job to delete: it may be only an index entry whose key expired."""
    found = [job for job in jobs.find(client, job_id) if not source or job.source == source]
    if not found:
        raise jobs.JobMissing(f"There is no job {job_id[:80]!r} (key or index entry).")
    if len(found) > 1:
        raise jobs.JobConflict(f"Job {job_id[:80]!r} exists in both keyspaces: say which (source).")
    return found[0]


def delete_token(job: jobs.Job) -> str:
    """What the delete form sends back: the fingerprint of what the page showed."""
    return fingerprint(job.raw if job.exists else job.id.encode())


def abort_sentence(job: jobs.Job, receivers: int) -> str:
    channel = keys.job_control_channel(job.id)
    if not receivers:
        return (
            f"Published the abort signal on {channel}, but no one was subscribed (0 receivers): no worker "
            "listened, so nothing will stop the job; if its worker is gone, the job is orphaned."
        )
    plural = "s" if receivers != 1 else ""
    return f"Published the abort signal on {channel}: {receivers} subscriber{plural} received it."


def cancel_sentence(job: jobs.Job) -> str:
    stored = "failed with error “Cancelled by user”" if job.source == jobs.TRACKER else "cancelled"
    return f"Cancelled job {job.id}: {job.key} now says {stored} and expires in {jobs.COMPLETED_JOB_TTL} s."


def admin_urls(site: Any) -> list[URLPattern]:
    return JobPages(site).urls()
