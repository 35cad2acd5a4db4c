"""JSON API routes for the orchestrator: the persisted service state and HSI service actions."""

from django.urls import URLPattern, path

from orchestrator import api

urlpatterns: list[URLPattern] = [
    path("", api.ServiceListView.as_view(), name="api-orchestrator"),
    path("<str:name>/<str:action>/", api.ServiceActionView.as_view(), name="api-orchestrator-action"),
]
