"""A real console process: migrate, collectstatic, users, demo world, then daphne on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from console.ratelimit import ENV_VARS
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
# As scripts/run-console, the Dockerfile and docker-compose.prod.yml start daphne.
ASGI_APP = "console.asgi:application"
DAPHNE_LIMITS = ("--websocket-max-message-size", "65536", "--websocket-max-frame-size", "65536")
USERS = {"viewer": "Viewer", "operator": "Operator", "admin": "Admin", "nobody": None}
PASSWORD = "Browser-test-pw-1"

CREATE_USERS = """
from django.contrib.auth.models import Group, User
for name, role in {users!r}.items():
    user = User.objects.create_user(name, password={password!r}, is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
"""


@dataclass
class LiveConsole:
    url: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )

    def forget_cached(self) -> None:
        """Drop what the console cached (dashboard report, jobs summary...): a test that has just
        written to Redis sees it on its next page load, whatever page an earlier test loaded."""
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            for key in client.scan_iter("console:cache:*", count=1000):
                client.delete(key)
        finally:
            client.close()

    def reload_world(self) -> None:
        """The demo world anew: some of its keys expire (rate-limit windows last 70 s), and the
        session's console may have been serving for longer than that."""
        self.manage("load_demo_world", "--force")
        self.forget_cached()

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def start(self) -> None:
        """Serve with daphne on the URL's port (again, after ``stop``), appending to the log."""
        port = str(urlsplit(self.url).port)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", port, *DAPHNE_LIMITS, ASGI_APP],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until_up(self.url, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def console_env(folder: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_SSL_", "DJANGO_"))}
    return env | {
        "DJANGO_ENV_FILE": "",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "DJANGO_SECRET_KEY": "live-test-secret-" + "y" * 40,
        "DJANGO_DEBUG": "false",
        "DJANGO_HTTPS": "false",  # daphne serves plain http on 127.0.0.1 (no TLS redirect, no Secure cookies)
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "HSI_LIVE_RECHECK_SECONDS": "1",  # a logged-out live socket closes within a second
        "HSI_BULK_CHUNK_SECONDS": "0.05",  # a bulk action of a few thousand entries takes several steps
        "DJANGO_STATIC_ROOT": str(folder / "static"),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "REDIS_URL": redis_url,
        "REDIS_PASSWORD": "",
        # Browser tests sign in many times from 127.0.0.1; tests/test_ratelimit.py tests the limits.
        **{var: "100000/m" for var, _ in ENV_VARS.values()},
    }


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/system/health/live", timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"daphne did not answer:\n{log.read_text()}")


@pytest.fixture(scope="session")
def live_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    """daphne serving the console with DEBUG off, on its own private Redis filled with the demo world."""
    folder = tmp_path_factory.mktemp("live")
    redis_server = RedisServer(folder / "redis").start()
    port = free_port()
    console = LiveConsole(
        f"http://127.0.0.1:{port}", console_env(folder, redis_server.url), folder / "daphne.log"
    )
    console.manage("migrate", "--noinput", "-v", "0")
    console.manage("collectstatic", "--noinput", "-v", "0")
    console.manage("shell", "-c", CREATE_USERS.format(users=USERS, password=PASSWORD))
    console.manage("load_demo_world")
    console.start()
    yield console
    console.stop()
    redis_server.stop()
