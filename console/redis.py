"""The one place that turns the operator guide's variables into Redis connections.

``RedisConfig`` is built once in settings from ``REDIS_URL``, ``REDIS_PASSWORD`` and the six
``REDIS_SSL_*`` variables. The same options then reach every Redis user: the console's own
client (``get_redis``), django-redis (``cache_settings``) and channels-redis
(``channel_layer_host``). Nothing here connects at import time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
import types
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from console.envvars import env_bool, env_int, env_seconds

logger = logging.getLogger("console.redis")

DEFAULT_URL = "redis://localhost:6379/0"
CERT_REQS = ("none", "optional", "required")


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


@dataclass(frozen=True, repr=False)
class RedisConfig:
    """Connection options for one Redis; ``repr`` shows no password (URL or REDIS_PASSWORD)."""

    url: str = DEFAULT_URL
    password: str | None = None
    ssl_enabled: bool = False
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    socket_timeout: float = 5.0
    socket_connect_timeout: float = 3.0
    max_connections: int = 50

    @classmethod
    def from_env(cls, env: Mapping[str, str], url_var: str = "REDIS_URL") -> RedisConfig:
        return cls(
            url=_blank_to_none(env.get(url_var)) or _blank_to_none(env.get("REDIS_URL")) or DEFAULT_URL,
            password=env.get("REDIS_PASSWORD") or None,
            ssl_enabled=env_bool(env, "REDIS_SSL_ENABLED", False),
            ssl_cert_reqs=(env.get("REDIS_SSL_CERT_REQS") or "required").strip().lower(),
            ssl_ca_certs=_blank_to_none(env.get("REDIS_SSL_CA_CERTS")),
            ssl_certfile=_blank_to_none(env.get("REDIS_SSL_CERTFILE")),
            ssl_keyfile=_blank_to_none(env.get("REDIS_SSL_KEYFILE")),
            ssl_check_hostname=env_bool(env, "REDIS_SSL_CHECK_HOSTNAME", True),
            socket_timeout=env_seconds(env, "REDIS_SOCKET_TIMEOUT", 5.0),
            socket_connect_timeout=env_seconds(env, "REDIS_SOCKET_CONNECT_TIMEOUT", 3.0),
            max_connections=env_int(env, "REDIS_MAX_CONNECTIONS", 50),
        )

    def __repr__(self) -> str:
        return f"RedisConfig(url={self.masked_url!r}, tls={self.uses_tls}, auth={self.has_auth})"

    def with_url(self, url: str | None) -> RedisConfig:
        return replace(self, url=url) if url else self

    @property
    def uses_tls(self) -> bool:
        return self.ssl_enabled or urlsplit(self.url).scheme == "rediss"

    @property
    def has_auth(self) -> bool:
        return bool(self.password or urlsplit(self.url).password)

    @property
    def effective_url(self) -> str:
        """``REDIS_URL`` with the scheme switched to ``rediss`` when TLS is enabled."""
        parts = urlsplit(self.url)
        if self.ssl_enabled and parts.scheme == "redis":
            return urlunsplit(parts._replace(scheme="rediss"))
        return self.url

    @property
    def masked_url(self) -> str:
        """The URL safe to show: any password in it replaced by ``***``."""
        parts = urlsplit(self.effective_url)
        if parts.password is None:
            return self.effective_url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]  # as written: keeps [::1] brackets and the port
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))

    @property
    def address(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"

    def tls_options(self) -> dict[str, Any]:
        if not self.uses_tls:
            return {}
        return {
            "ssl_cert_reqs": self.ssl_cert_reqs,
            "ssl_ca_certs": self.ssl_ca_certs,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_check_hostname": self.ssl_check_hostname and self.ssl_cert_reqs != "none",
        }

    def pool_kwargs(self) -> dict[str, Any]:
        """Options every Redis user gets: explicit timeouts and pool cap (redis-py 8 defaults)."""
        options: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "socket_keepalive": True,
            "health_check_interval": 30,
            "max_connections": self.max_connections,
            **self.tls_options(),
        }
        if self.password:
            options["password"] = self.password
        return options

    def cache_settings(self, *, key_prefix: str, ignore_exceptions: bool) -> dict[str, Any]:
        """A django-redis ``CACHES`` entry for this Redis."""
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": self.effective_url,
            "KEY_PREFIX": key_prefix,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "CONNECTION_POOL_KWARGS": self.pool_kwargs(),
                "IGNORE_EXCEPTIONS": ignore_exceptions,
            },
        }

    def channel_layer_host(self) -> dict[str, Any]:
        """A channels-redis host dict; a blocking reader needs a socket timeout above 5 s."""
        options = self.pool_kwargs()
        options["socket_timeout"] = max(self.socket_timeout, 15.0)
        options["max_connections"] = max(self.max_connections, 500)
        return {"address": self.effective_url, **options}


_clients: dict[RedisConfig, redis.Redis] = {}


def get_redis(config: RedisConfig | None = None) -> redis.Redis:
    """The console's client for HSI's Redis: bytes in, bytes out (values can be binary).

    One client (and pool) per configuration, built on first use, never at import.
    """
    config = config or settings.HSI_REDIS
    if config not in _clients:
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1)
        pool = redis.ConnectionPool.from_url(config.effective_url, retry=retry, **config.pool_kwargs())
        _clients[config] = redis.Redis(connection_pool=pool)
    return _clients[config]


def close_clients() -> None:
    while _clients:
        _clients.popitem()[1].connection_pool.disconnect()


def new_async_redis(
    config: RedisConfig | None = None,
    *,
    retries: int = 0,
    max_connections: int | None = None,
    blocking: bool = False,
) -> redis.asyncio.Redis:
    """A new asyncio client (bytes, like ``get_redis``) that the caller closes with ``aclose()``.

    Same password, TLS files, explicit timeouts and pool cap as every other client. ``retries=0``
    (the default) surfaces every connection error at once: the relay reconnects and logs by itself,
    and a script that appends to a stream must never be re-sent blindly. ``blocking`` makes a
    full pool wait (up to the connect timeout) for a free connection instead of raising.
    """
    config = config or settings.HSI_REDIS
    options = config.pool_kwargs()
    if max_connections is not None:
        options["max_connections"] = max_connections
    retry = (
        AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), retries) if retries else AsyncRetry(NoBackoff(), 0)
    )
    pool_class: type[redis.asyncio.ConnectionPool] = redis.asyncio.ConnectionPool
    if blocking:
        pool_class = redis.asyncio.BlockingConnectionPool
        options["timeout"] = config.socket_connect_timeout
    pool = pool_class.from_url(config.effective_url, retry=retry, **options)
    return redis.asyncio.Redis.from_pool(pool)  # the client owns its pool: aclose() closes both


_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[RedisConfig, redis.asyncio.Redis]
] = weakref.WeakKeyDictionary()


def get_async_redis(config: RedisConfig | None = None) -> redis.asyncio.Redis:
    """The shared asyncio client of the running event loop for ``config`` (reads only: one retry).

    One blocking pool per loop and configuration, so a burst of WebSocket connects waits for a
    connection instead of failing with "Too many connections"; closed when the loop closes.
    """
    config = config or settings.HSI_REDIS
    loop = asyncio.get_running_loop()
    clients = _async_clients.get(loop)
    if clients is None:
        clients = _async_clients[loop] = {}
        _close_with_loop(loop)
    if config not in clients:
        clients[config] = new_async_redis(config, retries=1, blocking=True)
    return clients[config]


def _close_with_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close the loop's shared clients before the loop itself closes (as channels-redis does)."""
    original_close = loop.close

    def close(self: asyncio.AbstractEventLoop) -> None:
        clients = _async_clients.pop(self, {})
        for client in clients.values():
            if not self.is_closed() and not self.is_running():
                self.run_until_complete(client.aclose(close_connection_pool=True))
        self.close = original_close  # type: ignore[method-assign]
        original_close()

    loop.close = types.MethodType(close, loop)  # type: ignore[method-assign]


@receiver(setting_changed)
def _reset_clients(*, setting: str, **kwargs: Any) -> None:
    if setting in {"HSI_REDIS", "CONSOLE_REDIS"}:
        close_clients()


def _tls_message(exc: BaseException, config: RedisConfig) -> str:
    text = " ".join(map(str, exc.args)) or str(exc)
    if isinstance(exc, FileNotFoundError) or "No such file" in text:
        return (
            "A TLS file named in REDIS_SSL_CA_CERTS, REDIS_SSL_CERTFILE or REDIS_SSL_KEYFILE "
            "does not exist: fix the path."
        )
    if "hostname" in text.lower() or "IP address mismatch" in text:
        return (
            f"The Redis server's TLS certificate does not match the host {config.address}: "
            "use the name the certificate was issued for in REDIS_URL, or set "
            "REDIS_SSL_CHECK_HOSTNAME=false."
        )
    if "certificate verify failed" in text or "CERTIFICATE_VERIFY_FAILED" in text:
        ca = config.ssl_ca_certs or "the system CA store"
        return (
            f"TLS certificate verification failed: the Redis server's certificate is not "
            f"signed by the CA in REDIS_SSL_CA_CERTS ({ca}). Point REDIS_SSL_CA_CERTS at the CA "
            "that signed it."
        )
    if "certificate required" in text or "CERTIFICATE_REQUIRED" in text or isinstance(exc, ssl.SSLEOFError):
        return (
            "Redis ended the TLS handshake: it requires a client certificate (mutual TLS). Set "
            "REDIS_SSL_CERTFILE and REDIS_SSL_KEYFILE to a certificate signed by a CA that Redis trusts."
        )
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return (
            f"TLS handshake failed: the server at {config.address} does not speak TLS. Set "
            "REDIS_SSL_ENABLED=false (and use redis://) or point REDIS_URL at the TLS port."
        )
    return (
        f"TLS handshake with Redis at {config.address} failed ({type(exc).__name__}): "
        "check the REDIS_SSL_* settings."
    )


SCRIPT_DENIED = "The user executing the script can't"  # an ACL denial inside a Lua script (ERR ...)


def noperm_message(text: str) -> str:
    """ACL denials: the read-only user refuses every action; any other denial is a rules gap."""
    detail = text.removeprefix("NOPERM").strip()[:160]
    return (
        f"Redis refused the command: the console's Redis user has no permission for it (NOPERM {detail}). "
        "A read-only user (manage.py redis_acl --read-only) can only browse, so actions need the full "
        "user from manage.py redis_acl; see docs/redis-acl.md."
    )


def explain(exc: BaseException, config: RedisConfig) -> str:
    """One sentence that says what is wrong and what to fix; never contains the password."""
    return wrong_type(exc) or _explain_failure(exc, config)


def _explain_failure(exc: BaseException, config: RedisConfig) -> str:
    code = str(getattr(exc, "status_code", None) or "")
    text = " ".join([code, *map(str, exc.args)]).strip() or str(exc)
    cause = exc.__cause__ or exc.__context__
    if "NOAUTH" in text or "Authentication required" in text:
        return (
            "Redis requires a password but none was sent (NOAUTH): set REDIS_PASSWORD to the "
            "password Redis was started with (--requirepass)."
        )
    if "WRONGPASS" in text or "invalid password" in text or "invalid username-password" in text:
        if urlsplit(config.url).username:
            return (
                f"Redis rejected the user {urlsplit(config.url).username!r} (WRONGPASS): REDIS_PASSWORD "
                "does not match that ACL user's password, or the user does not exist or is off. Fix it "
                "in .env (or the user, see docs/redis-acl.md) and restart the console."
            )
        return (
            "Redis rejected the password (WRONGPASS): REDIS_PASSWORD does not match the password "
            "Redis was started with. Fix it in .env and restart the console."
        )
    if isinstance(exc, redis.exceptions.NoPermissionError) or "NOPERM" in text or SCRIPT_DENIED in text:
        return noperm_message(text)
    if isinstance(exc, ssl.SSLError) or isinstance(cause, ssl.SSLError) or "SSL" in text:
        return _tls_message(cause if isinstance(cause, ssl.SSLError) else exc, config)
    if isinstance(exc, FileNotFoundError) or isinstance(cause, FileNotFoundError):
        return _tls_message(FileNotFoundError(text), config)
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return f"The Redis host in REDIS_URL ({config.address}) cannot be resolved: check the host name."
    if isinstance(exc, redis.TimeoutError) or "Timeout" in text or "timed out" in text:
        tls_hint = " If this Redis does not use TLS, set REDIS_SSL_ENABLED=false." if config.uses_tls else ""
        return (
            f"Timed out talking to Redis at {config.address}: is Redis running and reachable "
            f"from here, and is REDIS_URL right?{tls_hint}"
        )
    if "refused" in text.lower():
        return (
            f"Connection refused by {config.address}: is Redis running, and is REDIS_URL "
            f"({config.masked_url}) right?"
        )
    if "Connection closed by server" in text or "reset by peer" in text:
        hint = (
            "if this Redis uses TLS, set REDIS_SSL_ENABLED=true or use a rediss:// URL"
            if not config.uses_tls
            else "if Redis requires a client certificate (mutual TLS), set REDIS_SSL_CERTFILE and "
            "REDIS_SSL_KEYFILE; otherwise check that REDIS_URL points at the TLS port"
        )
        return f"Redis at {config.address} closed the connection: {hint}."
    if isinstance(exc, redis.ConnectionError):
        return f"Cannot connect to Redis at {config.address}: is Redis running, and is REDIS_URL right?"
    return f"Redis at {config.address} answered with an error: {text[:200]}"


# "Command # 2 (LLEN key) of pipeline caused error: ..." (redis-py), or "(LLEN key) ..." (dlq.peek)
_PIPELINE_COMMAND = re.compile(r"(?:Command # \d+ |^)\((\w+) ([^\s)]{1,200})")


def wrong_type(exc: BaseException) -> str | None:
    """The sentence for a command Redis refused because its key holds another type (WRONGTYPE):
    Redis is fine, so this is no outage to report; None for any other error."""
    text = str(exc)
    if not isinstance(exc, redis.ResponseError) or "WRONGTYPE" not in text:
        return None
    command = _PIPELINE_COMMAND.search(text)
    key = command.group(2) if command else "<key>"
    refused = f" ({command.group(1)} {key})" if command else ""
    return (
        f"The key {key if command else 'this page reads'} holds another kind of value than HSI writes "
        f"under its name, so Redis refused the command{refused}. Redis itself is fine and nothing was "
        f"changed; redis-cli TYPE {key} says what the key holds."
    )


@dataclass(frozen=True)
class ConnectionReport:
    connected: bool
    message: str
    redis_version: str = ""
    latency_ms: float = 0.0

    def as_health(self) -> dict[str, Any]:
        if self.connected:
            return {
                "status": "healthy",
                "connected": True,
                "redis_version": self.redis_version,
                "latency_ms": self.latency_ms,
            }
        return {"status": "unhealthy", "connected": False, "error": self.message}


def success_message(config: RedisConfig, version: str) -> str:
    ssl_msg = " with SSL" if config.uses_tls else ""
    auth_msg = " with authentication" if config.has_auth else ""
    return f"Successfully connected to Redis{ssl_msg}{auth_msg} (redis_version {version})"


def probe(config: RedisConfig | None = None) -> ConnectionReport:
    """PING and read the server version; every failure becomes an explained report."""
    config = config or settings.HSI_REDIS
    try:
        client = get_redis(config)
        started = time.perf_counter()
        client.ping()
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        info = client.info("server")
    except (redis.RedisError, OSError, ValueError) as exc:
        return ConnectionReport(False, explain(exc, config))
    version = str(info.get("redis_version", "unknown"))
    return ConnectionReport(True, success_message(config, version), version, latency_ms)


def log_connection_status(config: RedisConfig | None = None) -> ConnectionReport:
    report = probe(config)
    if report.connected:
        logger.info(report.message)
    else:
        logger.error("Redis is not available: %s", report.message)
    return report
