"""Sign-ins on the audit trail, and the account rate limit fed by failed sign-ins.

Only sign-ins that arrive as HTTP requests are recorded: ``login()`` called by code with no
request method (the test client's ``force_login``, a shell) is not a person signing in.
The attempted password never reaches this module: Django passes the credentials cleansed.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from console import audit, ratelimit


def _from_a_request(request: HttpRequest | None) -> bool:
    return request is not None and request.method is not None


@receiver(user_logged_in, dispatch_uid="console.audit_login")
def audit_login(sender: type, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any) -> None:
    if not _from_a_request(request):
        return
    ratelimit.note_login_success(user.get_username())
    audit.record(user, "login", request=request)


@receiver(user_login_failed, dispatch_uid="console.audit_login_failed")
def audit_login_failed(
    sender: str, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if not _from_a_request(request):
        return
    username = str(credentials.get("username") or "")
    ratelimit.note_login_failure(username)
    audit.record(None, "login_failed", username=username, request=request)
