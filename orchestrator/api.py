"""JSON API for the orchestrator: ``GET /api/orchestrator/`` and
``POST /api/orchestrator/<name>/<action>/`` (manage services), in the style of ``queues.api``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from console.redis import get_redis
from orchestrator import hsi_api, state
from orchestrator.views import page_status, perform
from queues.api import ConsoleAPIView, Problem, django_request, errors, requires


class ServiceSerializer(serializers.Serializer):
    name = serializers.CharField()
    category = serializers.CharField(help_text="infrastructure, ai, monitoring, or other (unknown name).")
    status = serializers.CharField(allow_null=True, help_text="null when missing or not a value HSI writes.")
    enabled = serializers.BooleanField(allow_null=True)
    failure_count = serializers.IntegerField(allow_null=True)
    restart_count = serializers.IntegerField(allow_null=True)
    last_restart_at = serializers.DateTimeField(allow_null=True)
    last_failure_at = serializers.DateTimeField(allow_null=True)
    exists = serializers.BooleanField(help_text="Whether the state key exists.")
    disabled = serializers.BooleanField()
    flapping = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.CharField(), help_text="Why values are unknown.")


class ServiceListSerializer(serializers.Serializer):
    services = ServiceSerializer(many=True)
    complete = serializers.BooleanField(help_text="False when the SCAN for unknown services hit its limit.")


class ActionAnswerSerializer(serializers.Serializer):
    name = serializers.CharField()
    action = serializers.ChoiceField(choices=list(hsi_api.ACTIONS))
    ok = serializers.BooleanField()
    status = serializers.IntegerField(help_text="HSI's HTTP status (503 when it could not be reached).")
    message = serializers.CharField(help_text="HSI's message, or why it could not be reached.")
    service = serializers.DictField(allow_null=True, help_text="The service as HSI reported it.")
    audit_id = serializers.IntegerField()


def failure_fields(answer: hsi_api.Answer) -> dict[str, str]:
    """``error`` and ``detail`` for an answer that is not ok (nothing for a success)."""
    if answer.ok:
        return {}
    if not answer.reached:
        return {"error": "hsi_unreachable", "detail": answer.message}
    return {"error": "hsi_refused", "detail": f"HSI answered {answer.status}: {answer.message}"}


NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="Service name, e.g. ai-detector.")
ACTION = OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(hsi_api.ACTIONS))


class ServiceListView(ConsoleAPIView):
    """HSI's persisted service state (known names plus a bounded SCAN), decoded defensively."""

    @extend_schema(responses={200: ServiceListSerializer, **errors()})
    def get(self, request: Request) -> Response:
        inventory = state.read_services(get_redis())
        services = [service.as_dict() for service in inventory.services]
        return Response({"services": services, "complete": inventory.complete})


class ServiceActionView(ConsoleAPIView):
    """Ask HSI to restart, start, enable or disable a service (audited); HSI's answer is passed on."""

    permission_classes = [requires("manage_services")]

    @extend_schema(
        request=None,
        parameters=[NAME, ACTION],
        # HSI's refusals keep the answer's fields beside error and detail.
        responses={200: ActionAnswerSerializer, **errors(400, 404, 409, 422, 429, 502)},
    )
    def post(self, request: Request, name: str, action: str) -> Response:
        if action not in hsi_api.ACTIONS:
            raise Problem(
                f"{action[:40]!r} is not a service action ({', '.join(hsi_api.ACTIONS)}).",
                code="unknown_action",
                status=404,
            )
        if not state.NAME.fullmatch(name):
            raise Problem(f"{name[:64]!r} is not a service name.", code="bad_name", status=404)
        if not hsi_api.configured():
            raise Problem(
                "Service actions are off: set HSI_API_URL (and HSI_API_KEY) "
                "so the console can reach HSI's API.",
                code="not_configured",
                status=503,
            )
        answer, audit_id = perform(django_request(request), name, action)
        body = {"name": name, "action": action, **answer.as_dict(), "audit_id": audit_id}
        body |= failure_fields(answer)
        return Response(body, status=page_status(answer))
