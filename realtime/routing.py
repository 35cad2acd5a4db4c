"""WebSocket routes. The live-events protocol is docs/live-protocol.md."""

from django.urls import URLPattern, path

from realtime.consumers import LiveEventsConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/events/", LiveEventsConsumer.as_asgi(), name="live-events-socket"),
]
