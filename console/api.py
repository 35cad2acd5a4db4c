"""JSON API for automation (token or session auth); same services as the pages."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from console.redis import explain, wrong_type
from queues.api import ConsoleAPIView, errors
from queues.overview import redis_overview


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Redis failures as a 503 with the sentence that says what to fix (a key
    of another type than HSI writes there: a 409, since Redis is fine)."""
    if mismatch := wrong_type(exc):
        return Response({"error": "wrong_type", "detail": mismatch}, status=409)
    if isinstance(exc, redis.RedisError):
        detail = explain(exc, settings.HSI_REDIS)
        return Response({"error": "redis_unavailable", "detail": detail}, status=503)
    return drf_exception_handler(exc, context)


class RedisOverviewView(ConsoleAPIView):
    """Redis server facts and the HSI key families found (bounded SCAN, cached briefly)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **errors()})
    def get(self, request: Request) -> Response:
        return Response(redis_overview().as_dict())
