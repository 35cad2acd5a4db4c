"""JSON API routes for queues, DLQs and the archive (filled in by the API work)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
