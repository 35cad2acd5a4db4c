"""WebSocket routes (the live-events socket arrives with the relay)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
