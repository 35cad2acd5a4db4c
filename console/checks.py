"""System checks for Redis, Channels and transport misconfiguration (``manage.py check``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from console.redis import CERT_REQS, RedisConfig

TLS_FILES = (
    ("ssl_ca_certs", "REDIS_SSL_CA_CERTS"),
    ("ssl_certfile", "REDIS_SSL_CERTFILE"),
    ("ssl_keyfile", "REDIS_SSL_KEYFILE"),
)


def check_redis_config(config: RedisConfig, label: str = "REDIS") -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if config.ssl_cert_reqs not in CERT_REQS:
        messages.append(
            Error(
                f"REDIS_SSL_CERT_REQS is {config.ssl_cert_reqs!r}.",
                hint="Use one of: none, optional, required.",
                id="hsi.E001",
            )
        )
    for attribute, variable in TLS_FILES:
        path = getattr(config, attribute)
        if path and not Path(path).is_file():
            messages.append(
                Error(
                    f"{variable} names {path}, which does not exist.",
                    hint=f"Fix the path in {variable}, or leave it empty.",
                    id="hsi.E002",
                )
            )
        if path and not config.uses_tls:
            messages.append(
                Warning(
                    f"{variable} is set but TLS is not enabled, so it is ignored.",
                    hint="Set REDIS_SSL_ENABLED=true (or use a rediss:// URL), or remove it.",
                    id="hsi.W003",
                )
            )
    if bool(config.ssl_certfile) != bool(config.ssl_keyfile):
        messages.append(
            Error(
                "Mutual TLS needs both REDIS_SSL_CERTFILE and REDIS_SSL_KEYFILE; only one is set.",
                hint="Set both to the client certificate and its key, or neither.",
                id="hsi.E004",
            )
        )
    if config.uses_tls and config.ssl_cert_reqs == "none":
        messages.append(
            Warning(
                "REDIS_SSL_CERT_REQS=none turns off certificate verification.",
                hint="Set REDIS_SSL_CA_CERTS to the CA that signed Redis's certificate instead.",
                id="hsi.W005",
            )
        )
    return messages


@register("redis")
def redis_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    messages = check_redis_config(settings.HSI_REDIS)
    if settings.CONSOLE_REDIS.url != settings.HSI_REDIS.url:
        messages += check_redis_config(settings.CONSOLE_REDIS, "CONSOLE_REDIS")
    return messages


@register("channels")
def channel_layer(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    if "InMemoryChannelLayer" in backend and not settings.DEBUG:
        return [
            Error(
                "The in-memory channel layer is configured outside DEBUG.",
                hint="Live events need channels_redis: it is the only layer that crosses "
                "processes. Use channels_redis.pubsub.RedisPubSubChannelLayer.",
                id="hsi.E006",
            )
        ]
    if "InMemoryChannelLayer" in backend:
        # System checks do not run inside the test suite, which may still use the in-memory layer.
        return [
            Error(
                "The in-memory channel layer is configured: manage.py relay_events runs in its own "
                "process and cannot reach daphne through it, so live pages would stay empty.",
                hint="Use channels_redis.pubsub.RedisPubSubChannelLayer (console/settings.py's default), "
                "in DEBUG too.",
                id="hsi.E007",
            )
        ]
    return []


PLAIN_HTTP_WARNING = (
    "DJANGO_HTTPS=false: cookies and passwords cross the network in clear text; anyone on the "
    "network path can read them and take over a session. Serve the console over TLS (directly or "
    "behind a proxy) and remove DJANGO_HTTPS=false."
)


@register("security", deploy=True)
def plain_http(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Say why --deploy's cookie, redirect and HSTS warnings appear, instead of silencing them."""
    if settings.DEBUG or getattr(settings, "HTTPS", True):
        return []
    return [
        Warning(
            PLAIN_HTTP_WARNING,
            hint="security.W004, W008, W012 and W016 below are the consequences of this one choice.",
            id="hsi.W010",
        )
    ]
