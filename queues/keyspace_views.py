"""The Keys section (``/keys/…``) and the Redis overview page (``/overview/``).

Read-only pages per key family; the three mutations (clear a dedupe entry, invalidate cache keys,
reset a rate-limit window) need ``console.manage_keys`` and go GET confirm page → POST with CSRF
and a nonce → audit entry. Nothing changes on GET.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_http_methods, require_safe

from console.redis import get_redis
from console.roles import perm
from queues import actions, keyspace
from queues.conf import conf
from queues.forms import new_nonce
from queues.keyspace import batches as batch_rules
from queues.overview import redis_overview
from queues.server_report import server_report

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
DUPLICATE = "This action was already submitted; nothing was done twice."
SECTIONS = (
    ("keys_batches", "Open batches", ("batch",)),
    ("keys_dedupe", "Dedupe", ("dedupe",)),
    ("keys_cache", "Cache", ("cache",)),
    ("keys_embeddings", "Entity embeddings", ("embeddings",)),
    ("keys_rate_limits", "Rate-limit windows", ("rate_limit",)),
    ("keys_idempotency", "Idempotency keys", ("idempotency", "batch_event")),
    ("keys_telemetry", "Telemetry latencies", ("telemetry",)),
    ("keys_hll", "HyperLogLog counters", ("hll",)),
)


def resume(request: HttpRequest) -> str:
    """Where a Keys page's SCAN goes on (``?at=`` from the previous page's "Continue scanning")."""
    return request.GET.get("at", "")[:30]


class KeyPages:
    def __init__(self, site: AdminSite) -> None:
        self.site = site

    def urls(self) -> list[URLPattern]:
        view = self.site.admin_view
        confirm = require_http_methods(["GET", "HEAD", "POST"])
        return [
            path("overview/", view(require_safe(self.overview)), name="redis_overview"),
            path("keys/", view(require_safe(self.index)), name="keys"),
            path("keys/batches/", view(require_safe(self.batches)), name="keys_batches"),
            path("keys/dedupe/", view(require_safe(self.dedupe)), name="keys_dedupe"),
            path("keys/dedupe/clear/", view(confirm(self.dedupe_clear)), name="keys_dedupe_clear"),
            path("keys/cache/", view(require_safe(self.cache)), name="keys_cache"),
            path(
                "keys/cache/invalidate/", view(confirm(self.cache_invalidate)), name="keys_cache_invalidate"
            ),
            path("keys/embeddings/", view(require_safe(self.embeddings)), name="keys_embeddings"),
            path(
                "keys/embeddings/<str:day>/",
                view(require_safe(self.embedding_day)),
                name="keys_embedding_day",
            ),
            path("keys/rate-limits/", view(require_safe(self.rate_limits)), name="keys_rate_limits"),
            path(
                "keys/rate-limits/reset/", view(confirm(self.rate_limit_reset)), name="keys_rate_limit_reset"
            ),
            path("keys/idempotency/", view(require_safe(self.idempotency)), name="keys_idempotency"),
            path("keys/telemetry/", view(require_safe(self.telemetry)), name="keys_telemetry"),
            path("keys/hll/", view(require_safe(self.hll)), name="keys_hll"),
        ]

    def render(
        self, request: HttpRequest, template: str, title: str, context: dict[str, Any], status: int = 200
    ) -> TemplateResponse:
        full = {
            **self.site.each_context(request),
            "title": title,
            "can_manage": request.user.has_perm(perm("manage_keys")),
            "sections": SECTIONS,
            **context,
        }
        return TemplateResponse(request, f"keys/{template}", full, status=status)

    def refuse(self, request: HttpRequest, sentence: str, status: int = 400) -> TemplateResponse:
        return self.render(request, "refused.html", "Not possible", {"sentence": sentence}, status)

    # --- Read-only pages ---------------------------------------------------------------------------

    def overview(self, request: HttpRequest) -> HttpResponse:
        return self.render(request, "overview.html", "Redis overview", {"report": server_report()})

    def index(self, request: HttpRequest) -> HttpResponse:
        census = redis_overview().census
        counts = {f.name: f.count for f in census.families}
        rows = [(url, label, sum(counts.get(f, 0) for f in families)) for url, label, families in SECTIONS]
        return self.render(request, "index.html", "Keys", {"rows": rows, "census": census})

    def batches(self, request: HttpRequest) -> HttpResponse:
        rows, found = keyspace.open_batches(get_redis(), resume(request))
        context = {"rows": rows, "found": found, "limits": batch_rules}
        return self.render(request, "batches.html", "Open batches", context)

    def dedupe(self, request: HttpRequest) -> HttpResponse:
        query = request.GET.get("q", "")[:4096]
        rows, found = keyspace.dedupe_entries(get_redis(), query, resume(request))
        return self.render(request, "dedupe.html", "Dedupe", {"rows": rows, "found": found, "q": query})

    def cache(self, request: HttpRequest) -> HttpResponse:
        rows, found = keyspace.cache_entries(get_redis(), resume(request))
        context = {"rows": rows, "found": found, "limit": conf("CACHE_INVALIDATE_LIMIT")}
        return self.render(request, "cache.html", "Cache", context)

    def embeddings(self, request: HttpRequest) -> HttpResponse:
        rows, found = keyspace.embedding_days(get_redis(), start=resume(request))
        return self.render(request, "embeddings.html", "Entity embeddings", {"rows": rows, "found": found})

    def embedding_day(self, request: HttpRequest, day: str) -> HttpResponse:
        if not DAY.fullmatch(day):
            return self.refuse(request, f"{day[:40]!r} is not a day (YYYY-MM-DD).")
        rows, _ = keyspace.embedding_days(get_redis(), day=day)
        if rows[0].ttl == "gone":
            return self.refuse(request, f"There are no embeddings for {day}.", 404)
        title = f"Entity embeddings of {day}"
        context = {"day": rows[0], "preview": keyspace.EMBEDDING_PREVIEW}
        return self.render(request, "embedding_day.html", title, context)

    def rate_limits(self, request: HttpRequest) -> HttpResponse:
        rows, found = keyspace.rate_windows(get_redis(), resume(request))
        context = {"rows": rows, "found": found, "tiers": keyspace.RATE_TIERS}
        return self.render(request, "rate_limits.html", "Rate-limit windows", context)

    def idempotency(self, request: HttpRequest) -> HttpResponse:
        rows, found = keyspace.idempotency_keys(get_redis(), resume(request))
        return self.render(request, "idempotency.html", "Idempotency keys", {"rows": rows, "found": found})

    def telemetry(self, request: HttpRequest) -> HttpResponse:
        rows, found = keyspace.latencies(get_redis(), resume(request))
        return self.render(request, "telemetry.html", "Telemetry latencies", {"rows": rows, "found": found})

    def hll(self, request: HttpRequest) -> HttpResponse:
        rows, found = keyspace.hyperloglogs(get_redis(), resume(request))
        return self.render(request, "hll.html", "HyperLogLog counters", {"rows": rows, "found": found})

    # --- Operator actions: GET shows the confirmation, POST acts -----------------------------------

    def _require(self, request: HttpRequest) -> None:
        if not request.user.has_perm(perm("manage_keys")):
            raise PermissionDenied

    def _confirm(self, request: HttpRequest, title: str, context: dict[str, Any]) -> TemplateResponse:
        return self.render(request, "confirm.html", title, {"nonce": new_nonce(), **context})

    def _first(self, request: HttpRequest) -> bool:
        if actions.first_submission(get_redis(), request.POST.get("nonce", "")):
            return True
        messages.warning(request, DUPLICATE)
        return False

    def dedupe_clear(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        data = request.POST if request.method == "POST" else request.GET
        sha = data.get("sha256", "").strip().lower()
        if not keyspace.SHA256.fullmatch(sha):
            return self.refuse(request, "Name the dedupe entry by its sha256 (64 hexadecimal characters).")
        client = get_redis()
        rows, _ = keyspace.dedupe_entries(client, sha)
        if not rows:
            return self.refuse(request, f"There is no dedupe entry for {sha}; it may have expired.", 404)
        back = reverse("admin:keys_dedupe")
        if request.method == "POST":
            if self._first(request):
                keyspace.clear_dedupe(client, request, rows[0].key, rows[0].path)
                messages.success(request, f"Cleared {rows[0].key}: HSI will process {rows[0].path} again.")
            return HttpResponseRedirect(back)
        sentence = (
            f"Clear {rows[0].key} (file {rows[0].path or 'unreadable'}, TTL {rows[0].ttl})? "
            "HSI will then process that file again if it sees it: a second detection and event are possible."
        )
        fields = {"sha256": sha}
        return self._confirm(
            request, "Clear dedupe entry", {"sentence": sentence, "fields": fields, "back": back}
        )

    def cache_invalidate(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        data = request.POST if request.method == "POST" else request.GET
        key, prefix = data.get("key", ""), data.get("prefix", "")
        if bool(key) == bool(prefix):
            return self.refuse(request, "Name either one cache key or one prefix to invalidate.")
        problem = keyspace.cache_problem(key or prefix, whole_key=bool(key))
        if problem:
            return self.refuse(request, problem)
        client = get_redis()
        back = reverse("admin:keys_cache")
        if key and not client.exists(key):
            return self.refuse(request, f"{key} does not exist (it may have expired).", 404)
        if request.method == "POST":
            if not self._first(request):
                return HttpResponseRedirect(back)
            if key:
                removed = keyspace.invalidate_cache_key(client, request, key)
                messages.success(
                    request, f"Invalidated {key} ({removed} key{'s' if removed != 1 else ''} removed)."
                )
            else:
                removed, more = keyspace.invalidate_cache_prefix(client, request, prefix)
                sentence = f"Invalidated {removed:,} cache keys under {prefix}."
                if more:
                    sentence += " More keys may remain under it: run it again."
                messages.success(request, sentence)
            return HttpResponseRedirect(back)
        if key:
            sentence = (
                f"Invalidate {key} and its :fresh_until / :refreshing side keys? HSI rebuilds it on next use."
            )
            fields = {"key": key}
        else:
            found = keyspace.cache_prefix_keys(client, prefix)
            if not found.keys:
                return self.refuse(request, f"No cache key starts with {prefix}.", 404)
            limit = conf("CACHE_INVALIDATE_LIMIT")
            count = f"{len(found.keys):,}" + (
                "" if found.complete else f" (at most {limit:,} per request; more remain)"
            )
            sentence = f"Invalidate {count} cache keys under {prefix}? HSI rebuilds them on next use."
            fields = {"prefix": prefix}
            return self._confirm(
                request,
                "Invalidate cache keys",
                {
                    "sentence": sentence,
                    "fields": fields,
                    "back": back,
                    "listed": found.names[:10],
                    "count": len(found.keys),
                },
            )
        return self._confirm(
            request, "Invalidate cache key", {"sentence": sentence, "fields": fields, "back": back}
        )

    def rate_limit_reset(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        data = request.POST if request.method == "POST" else request.GET
        key = data.get("key", "")
        if not keyspace.is_rate_limit_key(key):
            return self.refuse(request, "Name a rate-limit window key (rate_limit:<tier>:<client>).")
        client = get_redis()
        back = reverse("admin:keys_rate_limits")
        if not client.exists(key):
            return self.refuse(request, f"{key} does not exist (its window may have expired).", 404)
        if request.method == "POST":
            if self._first(request):
                keyspace.reset_rate_limit(client, request, key)
                messages.success(request, f"Reset {key}: the client starts a fresh 60 s window.")
            return HttpResponseRedirect(back)
        sentence = (
            f"Reset {key}? Its requests in the current window are forgotten "
            "and a blocked client is let through."
        )
        return self._confirm(
            request, "Reset rate-limit window", {"sentence": sentence, "fields": {"key": key}, "back": back}
        )


def admin_urls(site: Any) -> list[URLPattern]:
    return KeyPages(site).urls()
