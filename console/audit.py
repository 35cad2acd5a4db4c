"""Write audit entries: who did what to which key, how many, from where."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest

from console.models import AuditEntry
from console.ratelimit import client_ip
from realtime.feed import publish_action

__all__ = ["client_ip", "record"]
USERNAME_LENGTH = 150  # AuditEntry.username


def record(
    user: AbstractBaseUser | AnonymousUser | None,
    action: str,
    *,
    key: str = "",
    count: int = 0,
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    username: str = "",
) -> AuditEntry:
    """One entry; ``username`` names an actor who is not signed in (the name a sign-in was tried with)."""
    authenticated = isinstance(user, User) and user.is_authenticated
    if authenticated and user is not None:
        username = user.get_username()
    entry = AuditEntry.objects.create(
        user=user if isinstance(user, User) else None,
        username=username[:USERNAME_LENGTH] or "system",
        action=action,
        key=key,
        count=count,
        detail=detail or {},
        ip_address=client_ip(request),
    )
    # On the live feed once the entry is committed (at once outside a transaction); never raises.
    transaction.on_commit(lambda: publish_action(entry))
    return entry
