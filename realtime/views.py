"""The live-events page: a frame that static/realtime/js/live.js fills from the ``/ws/events/``
socket (docs/live-protocol.md), plus the relay's diagnostics card, read once when the page loads."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import redis
from django.conf import settings
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_safe

from console.redis import explain, get_redis
from console.roles import perm
from realtime.history import replay_from
from realtime.status import relay_status

SOCKET_PATH = "/ws/events/"  # realtime/routing.py; WebSocket routes cannot be reversed
MAX_ROWS = 500  # event rows the page keeps in its table
HISTORY = 100  # stored events a freshly opened page replays, so it does not start empty
PLACEHOLDER = "__key__"  # live.js puts the queue key or audit id here


def require_live_events(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A signed-in user without "view live events" gets the 403 page; anyone else goes on to the
    site's own check (the login page for the anonymous)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not request.user.has_perm(perm("view_live_events")):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return guarded


class LivePages:
    def __init__(self, site: AdminSite) -> None:
        self.site = site

    def urls(self) -> list[URLPattern]:
        view = require_live_events(self.site.admin_view(require_safe(self.live)))
        return [path("live/", view, name="live")]

    def live(self, request: HttpRequest) -> TemplateResponse:
        client = get_redis()  # HSI's Redis: the relay keeps its status and the stream there
        try:
            status, since, redis_error = relay_status(client), replay_from(client, HISTORY), ""
        except redis.RedisError as exc:
            status, since, redis_error = None, None, explain(exc, settings.HSI_REDIS)
        context = {
            **self.site.each_context(request),
            "title": "Live events",
            "relay": status,
            "redis_error": redis_error,
            "since": since or "",
            "socket_path": SOCKET_PATH,
            "max_rows": MAX_ROWS,
            "queue_url": reverse("admin:queue_items", args=[PLACEHOLDER]),
            "audit_url": audit_url(request),
        }
        return TemplateResponse(request, "realtime/live.html", context)


def audit_url(request: HttpRequest) -> str:
    """Where a console action's audit entry opens, for those who may read the audit trail."""
    if not request.user.has_perm("console.view_auditentry"):
        return ""
    return reverse("admin:console_auditentry_change", args=[PLACEHOLDER])


def admin_urls(site: AdminSite) -> list[URLPattern]:
    return LivePages(site).urls()
