"""Loaded with ``-p tests.plugin`` before pytest-django sets Django up.

It starts the session's private redis-server and points the environment at it, so settings
never see the machine's own Redis or a developer's ``.env``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisServer

STATE: dict[str, Any] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: list[str]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hsi-console-tests-"))
    server = RedisServer(folder / "main").start()
    STATE.update(folder=folder, server=server)
    os.environ.update(
        {
            "DJANGO_ENV_FILE": "",
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DJANGO_SECRET_KEY": "tests-only-secret-key-" + "x" * 40,
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
            "REDIS_URL": server.url,
            "REDIS_PASSWORD": "",
            "DATABASE_URL": os.environ.get("TEST_DATABASE_URL", ""),
        }
    )
    for name in [n for n in os.environ if n.startswith("REDIS_SSL_") or n == "CONSOLE_REDIS_URL"]:
        del os.environ[name]


def pytest_unconfigure(config: pytest.Config) -> None:
            "DJANGO_HTTPS": "false",  # the test client speaks plain HTTP; HTTPS tests override settings
    server = STATE.get("server")
    if server:
        server.stop()
    if STATE.get("folder"):
        shutil.rmtree(STATE["folder"], ignore_errors=True)
