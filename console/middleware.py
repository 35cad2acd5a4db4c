"""Turn a Redis failure inside any page into a 503 page with the sentence that says what to fix."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

from console.redis import explain

logger = logging.getLogger("console.redis")


class RedisUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, redis.RedisError):
            return None
        message = explain(exception, settings.HSI_REDIS)
        logger.warning("Page %s failed: %s", request.path, message)
        if request.path.startswith("/api/"):
            return JsonResponse({"error": "redis_unavailable", "detail": message}, status=503)
        from console.admin import console_site

        context = {**console_site.each_context(request), "redis_error": message, "title": "Redis unavailable"}
        response = TemplateResponse(request, "console/redis_unavailable.html", context, status=503)
        return response.render()
