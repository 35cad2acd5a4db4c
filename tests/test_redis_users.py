"""The one RedisConfig drives every Redis user: console client, check_redis, django-redis, channels-redis."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.core.cache import caches
from django.core.management import CommandError, call_command

from console.redis import RedisConfig, get_redis
from tests.conftest import PASSWORD
from tests.redis_server import RedisServer


def secured(start_server, tls_files) -> tuple[RedisConfig, RedisServer]:
    server = start_server(password=PASSWORD, tls=tls_files, require_client_cert=True)
    config = RedisConfig(
        url=server.url,
        password=PASSWORD,
        ssl_ca_certs=str(tls_files.ca),
        ssl_certfile=str(tls_files.client_cert),
        ssl_keyfile=str(tls_files.client_key),
    )
    return config, server


def test_check_redis_logs_ssl_and_authentication(start_server, tls_files, settings, capsys, caplog) -> None:
    config, _ = secured(start_server, tls_files)
    settings.HSI_REDIS = config
    with caplog.at_level(logging.INFO, logger="console.redis"):
        call_command("check_redis")
    expected = "Successfully connected to Redis with SSL with authentication (redis_version "
    assert expected in capsys.readouterr().out
    assert any(expected in record.getMessage() for record in caplog.records)
    assert PASSWORD not in caplog.text


def test_check_redis_plain_says_no_ssl_no_auth(redis_client, capsys) -> None:
    call_command("check_redis")
    out = capsys.readouterr().out
    assert "Successfully connected to Redis (redis_version" in out


def test_check_redis_failure_is_a_sentence(start_server, settings) -> None:
    server = start_server(password=PASSWORD)
    settings.HSI_REDIS = RedisConfig(url=server.url)
    with pytest.raises(CommandError, match=r"NOAUTH.*set REDIS_PASSWORD") as failure:
        call_command("check_redis")
    assert failure.value.returncode == 2


def test_console_client_is_bytes(redis_client) -> None:
    redis_client.set("k", "\u00e9")
    assert get_redis().get("k") == "\u00e9".encode()


def test_django_redis_cache_uses_tls_and_password(start_server, tls_files, settings) -> None:
    config, server = secured(start_server, tls_files)
    settings.CACHES = {
        **settings.CACHES,
        "secured": config.cache_settings(key_prefix="t", ignore_exceptions=False),
    }
    cache = caches["secured"]
    cache.set("greeting", {"hello": "tls"}, 30)
    assert cache.get("greeting") == {"hello": "tls"}
    with server.client() as direct:
        assert direct.exists(":1:greeting") == 0  # the key lives under the prefix
        assert any(key.startswith(b"t:") for key in direct.scan_iter(count=100))


def test_channel_layer_uses_tls_and_password(start_server, tls_files) -> None:
    config, _ = secured(start_server, tls_files)

    async def round_trip() -> dict[str, str]:
        layer = RedisPubSubChannelLayer(hosts=[config.channel_layer_host()], prefix="console:test:")
        channel = await layer.new_channel()
        await layer.group_add("events", channel)
        await layer.group_send("events", {"type": "event.message", "text": "over TLS"})
        message: dict[str, str] = await asyncio.wait_for(layer.receive(channel), 5)
        await layer.flush()
        return message

    assert asyncio.run(round_trip()) == {"type": "event.message", "text": "over TLS"}
