"""The orchestrator page: HSI's persisted service state by category, and (when ``HSI_API_URL`` is
set) Operator actions that go through HSI's API, each confirmed, POSTed with CSRF and audited."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_http_methods, require_safe

from console.audit import record
from console.redis import explain, get_redis
from console.roles import perm
from orchestrator import hsi_api, state
from realtime.views import SOCKET_PATH

ACTION_LABELS = {
    "restart": "Restart (resets the failure count; refused while disabled)",
    "start": "Start (refused while running or disabled)",
    "enable": "Enable (clears the disabled state)",
    "disable": "Disable (HSI stops managing it)",
}


def can_manage(request: HttpRequest) -> bool:
    return bool(request.user.has_perm(perm("manage_services")))


def checked_target(name: str, action: str) -> tuple[str, str]:
    if action not in hsi_api.ACTIONS:
        raise Http404(f"{action!r} is not a service action ({', '.join(hsi_api.ACTIONS)}).")
    if not state.NAME.fullmatch(name):
        raise Http404(f"{name[:64]!r} is not a service name.")
    return name, action


def perform(request: HttpRequest, name: str, action: str) -> tuple[hsi_api.Answer, int]:
    """Call HSI and write the audit entry (whatever the outcome); the answer and its audit id."""
    answer = hsi_api.call(name, action)
    entry = record(
        request.user,
        f"service_{action}",
        key=name,
        count=1 if answer.ok else 0,
        detail={
            "service": name,
            "action": action,
            "ok": answer.ok,
            "status": answer.status,
            "message": answer.message[:500],
            "reached": answer.reached,
        },
        request=request,
    )
    return answer, entry.pk


def page_status(answer: hsi_api.Answer) -> int:
    """The page's HTTP status for HSI's answer: 200, HSI's 4xx, or 503 when HSI was unreachable."""
    if answer.ok:
        return 200
    if not answer.reached or answer.status == 503:
        return 503
    return answer.status if 400 <= answer.status < 500 else 502


class OrchestratorPages:
    def __init__(self, site: AdminSite) -> None:
        self.site = site

    def urls(self) -> list[URLPattern]:
        view = self.site.admin_view
        return [
            path("orchestrator/", view(require_safe(self.services)), name="orchestrator"),
            path(
                "orchestrator/<str:name>/<str:action>/",
                view(require_http_methods(["GET", "HEAD", "POST"])(self.act)),
                name="orchestrator_action",
            ),
        ]

    def render(
        self, request: HttpRequest, template: str, title: str, context: dict[str, Any], status: int = 200
    ) -> TemplateResponse:
        full = {
            **self.site.each_context(request),
            "title": title,
            "api_configured": hsi_api.configured(),
            "api_url": hsi_api.shown_url(),
            "api_key_set": bool(getattr(settings, "HSI_API_KEY", "")),
            "can_manage": can_manage(request),
            **context,
        }
        return TemplateResponse(request, f"orchestrator/{template}", full, status=status)

    def services(self, request: HttpRequest) -> HttpResponse:
        try:
            inventory = state.read_services(get_redis())
        except redis.RedisError as exc:
            context = {"groups": [], "redis_error": explain(exc, settings.HSI_REDIS), "complete": True}
            return self.render(request, "services.html", "Orchestrator", context, status=503)
        context = {
            "groups": inventory.by_category(),
            "complete": inventory.complete,
            "actions": hsi_api.ACTIONS,
            "socket_path": SOCKET_PATH if request.user.has_perm(perm("view_live_events")) else "",
            "flap_restarts": state.FLAP_RESTARTS,
            "flap_minutes": int(state.FLAP_WINDOW.total_seconds() // 60),
            "flap_failures": state.FLAP_FAILURES,
        }
        return self.render(request, "services.html", "Orchestrator", context)

    def act(self, request: HttpRequest, name: str, action: str) -> HttpResponse:
        name, action = checked_target(name, action)
        if not can_manage(request):
            raise PermissionDenied
        context: dict[str, Any] = {"name": name, "action": action, "label": ACTION_LABELS[action]}
        if not hsi_api.configured():
            context["answer"] = None
            return self.render(request, "confirm.html", f"{action.capitalize()} {name}", context, status=503)
        if request.method == "POST":
            answer, audit_id = perform(request, name, action)
            context |= {"answer": answer, "audit_id": audit_id}
            title = f"{action.capitalize()} {name}"
            return self.render(request, "result.html", title, context, page_status(answer))
        try:
            context["service"] = state.read_service(get_redis(), name)
        except redis.RedisError as exc:
            context["redis_error"] = explain(exc, settings.HSI_REDIS)
        return self.render(request, "confirm.html", f"{action.capitalize()} {name}?", context)


def admin_urls(site: AdminSite) -> list[URLPattern]:
    return OrchestratorPages(site).urls()
