"""The environment a benchmark runs the console with: a private redis-server and a SQLite database
in a temporary folder, set before Django reads its settings; and the signed-in client its page
timings use."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.redis_server import RedisServer

if TYPE_CHECKING:  # Django is imported only once the environment below is set
    from django.test import Client


def private_console(prefix: str, **extra: str) -> tuple[Path, RedisServer]:
    """The folder and its redis-server (not started yet: the settings only need its URL)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    server = RedisServer(folder / "redis")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DJANGO_DEBUG": "true",
            "DJANGO_ENV_FILE": "",
            "DJANGO_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
            "REDIS_URL": server.url,
            "REDIS_PASSWORD": "",
            "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            **extra,
        }
    )
    for name in [n for n in os.environ if n.startswith("REDIS_SSL_") or n == "CONSOLE_REDIS_URL"]:
        del os.environ[name]
    return folder, server


def admin_client() -> Client:
    """Django's test client signed in as a staff user with the Admin role (after ``migrate``)."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user = User.objects.create_user("bench-admin", is_staff=True)  # force_login: no password
    user.groups.add(Group.objects.get(name="Admin"))
    client = Client()
    client.force_login(user)
    return client


def get(web: Client, url: str) -> float:
    """Server time of one GET through the test client (no network); it must answer 200."""
    started = time.perf_counter()
    response = web.get(url)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, f"GET {url}: {response.status_code}"
    return elapsed
