"""Close a user's live sockets when that session logs out (the others re-check at once)."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from realtime.events import REVOKE_MESSAGE, user_group

logger = logging.getLogger("realtime.signals")


@receiver(user_logged_out)
def revoke_live_sockets(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None or user.pk is None:
        return
    session = getattr(request, "session", None)
    message = {"type": REVOKE_MESSAGE, "session": getattr(session, "session_key", None) or ""}
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(user_group(user.pk), message)
    except Exception as exc:  # noqa: BLE001 - logging out must work even when Redis does not
        logger.warning("Could not tell live sockets about a logout (%s); they re-check on their timer.", exc)
