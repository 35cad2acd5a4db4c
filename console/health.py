"""Public health endpoints: no login, no secrets, bounded by the connect timeout."""

from __future__ import annotations

import time
from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console.redis import probe


def database_health() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return {
            "status": "unhealthy",
            "connected": False,
            "error": f"The database is not reachable ({type(exc).__name__}): check DATABASE_URL.",
        }
    latency = round((time.perf_counter() - started) * 1000, 2)
    return {"status": "healthy", "connected": True, "vendor": connection.vendor, "latency_ms": latency}


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    dependencies = {"redis": probe().as_health(), "database": database_health()}
    healthy = all(dep["status"] == "healthy" for dep in dependencies.values())
    body = {"status": "ready" if healthy else "not_ready", "dependencies": dependencies}
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})
