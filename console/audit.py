"""Write audit entries: who did what to which key, how many, from where."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest

from console.models import AuditEntry
from realtime.feed import publish_action


def client_ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def record(
    user: AbstractBaseUser | AnonymousUser | None,
    action: str,
    *,
    key: str = "",
    count: int = 0,
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEntry:
    authenticated = isinstance(user, User) and user.is_authenticated
    entry = AuditEntry.objects.create(
        user=user if isinstance(user, User) else None,
        username=user.get_username() if authenticated and user is not None else "system",
        action=action,
        key=key,
        count=count,
        detail=detail or {},
        ip_address=client_ip(request),
    )
    # On the live feed once the entry is committed (at once outside a transaction); never raises.
    transaction.on_commit(lambda: publish_action(entry))
    return entry
