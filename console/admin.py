"""The console's admin site: served at ``/``, its pages extend the admin's templates."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from console.models import AuditEntry
from console.ratelimit import Refusal, check_login
from console.redis import explain, probe
from console.roles import perm
from orchestrator.views import admin_urls as orchestrator_admin_urls
from queues.conf import conf
from queues.forms import RUN_ID
from queues.jobs_views import admin_urls as job_admin_urls
from queues.keyspace_views import admin_urls as key_admin_urls
from queues.overview import redis_overview
from queues.views import admin_urls as queue_admin_urls
from queues.views import undo_url
from realtime.views import admin_urls as live_admin_urls


class RateLimitedLoginForm(AdminAuthenticationForm):
    """The admin's login form, refused before the password is checked once a sign-in limit is hit."""

    refusal: Refusal | None = None

    def clean(self) -> dict[str, Any]:
        if self.request is not None:
            self.refusal = check_login(self.request, str(self.cleaned_data.get("username") or ""))
            if self.refusal is not None:
                raise ValidationError(self.refusal.detail, code=self.refusal.error)
        return super().clean()


class ConsoleAdminSite(admin.AdminSite):
    site_header = "HSI Console"
    site_title = "HSI Console"
    index_title = "Dashboard"
    index_template = "console/dashboard.html"
    site_url = None
    enable_nav_sidebar = False
    login_form = RateLimitedLoginForm

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The admin's login page; a refused sign-in keeps the page but answers 429 or 503."""
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        refusal = form.refusal if isinstance(form, RateLimitedLoginForm) else None
        return refusal.apply(response) if refusal is not None else response

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and user.has_perm(perm("view_console")))

    def get_urls(self) -> list[URLResolver | URLPattern]:
        console_urls = [
            path("connection/", self.admin_view(self.connection_view), name="connection"),
            *queue_admin_urls(self),
            *key_admin_urls(self),
            *job_admin_urls(self),
            *live_admin_urls(self),
            *orchestrator_admin_urls(self),
        ]
        return console_urls + super().get_urls()

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        try:
            overview = redis_overview()
            redis_error = ""
        except redis.RedisError as exc:
            overview, redis_error = None, explain(exc, settings.HSI_REDIS)
        context = {
            "overview": overview,
            "redis_error": redis_error,
            "cache_seconds": conf("OVERVIEW_CACHE_SECONDS"),
            **(extra_context or {}),
        }
        response = super().index(request, context)
        if redis_error:
            response.status_code = 503
        return response

    def connection_view(self, request: HttpRequest) -> HttpResponse:
        config = settings.HSI_REDIS
        report = probe(config)
        context = {
            **self.each_context(request),
            "title": "Redis connection",
            "config": config,
            "console_config": settings.CONSOLE_REDIS,
            "report": report,
            "redis_error": "" if report.connected else report.message,
        }
        return TemplateResponse(request, "console/connection.html", context)


console_site = ConsoleAdminSite(name="admin")


@admin.register(AuditEntry, site=console_site)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "username", "action", "key", "count", "ip_address")
    list_filter = ("action",)
    search_fields = ("username", "key", "action")
    date_hierarchy = "created_at"
    readonly_fields = ("deleted_entries",)

    @admin.display(description="Deleted entries")
    def deleted_entries(self, obj: AuditEntry) -> str:
        """A delete's archive rows (every step of it), where it can be undone."""
        deletion = obj.detail.get("deletion") if isinstance(obj.detail, dict) else None
        if not isinstance(deletion, str) or not RUN_ID.fullmatch(deletion):
            return "—"
        link = '<a href="{}">In the archive, to look at or restore (undo)</a>'
        return format_html(link, undo_url(deletion))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False


console_site.register(User, UserAdmin)
console_site.register(Group, GroupAdmin)
console_site.register(TokenProxy, TokenAdmin)
