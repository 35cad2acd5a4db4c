"""Operator commands of the foundation: the dev login and API tokens."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_dev_admin_is_created_printed_and_stable(settings, tmp_path: Path) -> None:
    settings.DEBUG = True
    password_file = tmp_path / "dev-admin-password"
    out = StringIO()
    call_command("ensure_dev_admin", password_file=str(password_file), stdout=out)
    password = password_file.read_text().strip()
    assert f"Development login: admin / {password}" in out.getvalue()
    assert oct(password_file.stat().st_mode)[-3:] == "600"
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser and user.groups.filter(name="Admin").exists()
    call_command("ensure_dev_admin", password_file=str(password_file), stdout=StringIO())
    assert password_file.read_text().strip() == password
    assert User.objects.filter(username="admin").count() == 1


def test_dev_admin_refuses_outside_debug(settings, tmp_path: Path) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only runs with DJANGO_DEBUG=true"):
        call_command("ensure_dev_admin", password_file=str(tmp_path / "pw"))
    assert not User.objects.filter(username="admin").exists()


def test_drf_create_token_gives_working_api_access(viewer: User, redis_client) -> None:
    out = StringIO()
    call_command("drf_create_token", viewer.username, stdout=out)
    key = out.getvalue().split()[2]
    response = Client().get("/api/redis/overview", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    assert Client().get("/api/redis/overview", HTTP_AUTHORIZATION="Token wrong").status_code == 401
