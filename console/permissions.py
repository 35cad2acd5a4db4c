"""DRF permission classes: the same Django permissions the pages check."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from console.roles import perm


class CanViewConsole(BasePermission):
    message = "You need the 'view console' permission (Viewer, Operator or Admin role)."
    codename = "view_console"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_active and user.is_staff and user.has_perm(perm(self.codename)))
