"""The environment a benchmark runs the console with: a private redis-server and a SQLite database
in a temporary folder, set before Django reads its settings."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.redis_server import RedisServer


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
