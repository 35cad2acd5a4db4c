"""Shared fixtures: private Redis servers (plain, password, TLS), users per role, clients."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.test import Client, override_settings

from console.ratelimit import Rate
from console.redis import RedisConfig
from tests.live_server import live_console  # noqa: F401 - shared fixture
from tests.plugin import STATE
from tests.redis_server import RedisServer, TlsFiles

PASSWORD = "s3cret-" + secrets.token_hex(8)


@pytest.fixture(scope="session", autouse=True)
def plain_static_storage() -> Iterator[None]:
    """Pages render without collectstatic; test_server.py covers the manifest storage under daphne."""
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield


@pytest.fixture(scope="session", autouse=True)
def generous_rate_limits() -> Iterator[None]:
    """The suite sends far more requests per user than a person; test_ratelimit.py sets tiny limits."""
    rates = {scope: Rate(1_000_000, 60) for scope in settings.RATELIMIT_RATES}
    with override_settings(RATELIMIT_RATES=rates):
        yield


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """The session's private redis-server that the settings point at."""
    server: RedisServer = STATE["server"]
    return server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A bytes client on an empty private Redis (the app's default server)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    cache.clear()
    yield client
    client.close()


@pytest.fixture(scope="session")
def tmp_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def tls_files(tmp_session: Path) -> TlsFiles:
    return TlsFiles.generate(tmp_session / "tls")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start extra private servers (password, TLS, killable) that die with the test."""
    started: list[RedisServer] = []

    def start(**options: object) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(started)}", **options).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def point_at(settings: object) -> Callable[..., RedisConfig]:
    """Point the console (``settings.HSI_REDIS``) at another server for one test."""

    def point(server: RedisServer | None = None, **options: object) -> RedisConfig:
        url = server.url if server else options.pop("url")
        config = RedisConfig(url=str(url), socket_timeout=2, socket_connect_timeout=2, **options)  # type: ignore[arg-type]
        settings.HSI_REDIS = config  # type: ignore[attr-defined]
        return config

    return point


def make_user(username: str, role: str | None, *, staff: bool = True) -> User:
    user = User.objects.create_user(username, password="pw-" + secrets.token_hex(6), is_staff=staff)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(db: None) -> User:
    return make_user("vera", "Viewer")


@pytest.fixture
def operator(db: None) -> User:
    return make_user("otto", "Operator")


@pytest.fixture
def admin_user(db: None) -> User:
    return make_user("ada", "Admin")


@pytest.fixture
def roleless(db: None) -> User:
    return make_user("rolf", None)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    return logged_in(viewer)
