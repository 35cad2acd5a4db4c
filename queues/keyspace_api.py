"""``GET /api/overview/``: the Redis overview page's figures as JSON (cached like the page)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from console.permissions import CanViewConsole
from queues.api import ConsoleAPIView, errors
from queues.server_report import server_report


class OverviewView(ConsoleAPIView):
    """Memory against maxmemory and its policy (with the eviction warning), evicted and expired keys,
    fragmentation, AOF, clients, ops/s, keyspace, memory by key family (an estimate from a SCAN
    sample), the largest keys sampled, SLOWLOG and subscriber counts of HSI's channels."""

    permission_classes = [CanViewConsole]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **errors()}, operation_id="redis_overview_report")
    def get(self, request: Request) -> Response:
        return Response(server_report().as_dict())
