"""ASGI entry point for daphne: HTTP and WebSockets from one process."""

import os

from django.core.asgi import get_asgi_application

from console.envvars import start_or_explain

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
with start_or_explain():  # a wrong setting stops daphne with one sentence, not a traceback
    django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from console.redis import log_connection_status
from realtime.routing import websocket_urlpatterns

log_connection_status()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
