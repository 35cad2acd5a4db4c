"""Settings → RedisConfig → every Redis user; system checks; secret handling at startup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from console.checks import check_redis_config
from console.envvars import env_bool, env_int, env_seconds
from console.redis import RedisConfig, explain, success_message
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
GUIDE_ENV = {
    "REDIS_URL": "redis://redis:6379",
    "REDIS_PASSWORD": PASSWORD,
    "REDIS_SSL_ENABLED": "true",
    "REDIS_SSL_CERT_REQS": "required",
    "REDIS_SSL_CA_CERTS": "/etc/ssl/redis-ca.pem",
    "REDIS_SSL_CERTFILE": "/etc/ssl/client.pem",
    "REDIS_SSL_KEYFILE": "/etc/ssl/client.key",
    "REDIS_SSL_CHECK_HOSTNAME": "true",
}


def test_defaults_match_the_operator_guide() -> None:
    config = RedisConfig.from_env({})
    assert config.url == "redis://localhost:6379/0"
    assert config.password is None and not config.uses_tls
    assert (config.ssl_cert_reqs, config.ssl_check_hostname) == ("required", True)
    assert config.pool_kwargs()["socket_timeout"] == 5.0
    assert "ssl_ca_certs" not in config.pool_kwargs()


def test_empty_password_means_no_auth() -> None:
    config = RedisConfig.from_env({"REDIS_PASSWORD": ""})
    assert not config.has_auth and "password" not in config.pool_kwargs()


def test_same_options_reach_client_cache_and_channel_layer() -> None:
    config = RedisConfig.from_env(GUIDE_ENV)
    assert config.effective_url == "rediss://redis:6379"
    pool = config.pool_kwargs()
    cache_pool = config.cache_settings(key_prefix="x", ignore_exceptions=True)["OPTIONS"][
        "CONNECTION_POOL_KWARGS"
    ]
    host = config.channel_layer_host()
    for options in (pool, cache_pool, host):
        assert options["password"] == PASSWORD
        assert options["ssl_ca_certs"] == "/etc/ssl/redis-ca.pem"
        assert options["ssl_certfile"] == "/etc/ssl/client.pem"
        assert options["ssl_keyfile"] == "/etc/ssl/client.key"
        assert options["ssl_cert_reqs"] == "required" and options["ssl_check_hostname"] is True
        assert options["socket_connect_timeout"] == config.socket_connect_timeout
    assert host["address"] == "rediss://redis:6379"
    assert host["socket_timeout"] > 5, "channels-redis blocks 5 s in BZPOPMIN (channels_redis#422)"


def test_settings_wire_the_config_everywhere(settings) -> None:
    assert settings.CACHES["default"]["LOCATION"] == settings.CONSOLE_REDIS.effective_url
    assert (
        settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"]
        == settings.CONSOLE_REDIS.effective_url
    )
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"].startswith("channels_redis.")


def test_cert_reqs_none_turns_hostname_check_off() -> None:
    config = RedisConfig.from_env({"REDIS_URL": "rediss://h:1", "REDIS_SSL_CERT_REQS": "none"})
    assert config.tls_options()["ssl_check_hostname"] is False


def test_masked_url_and_repr_hide_the_password() -> None:
    config = RedisConfig(url=f"redis://console:{PASSWORD}@redis:6379/0", password=PASSWORD)
    assert config.masked_url == "redis://console:***@redis:6379/0"
    assert PASSWORD not in repr(config)
    assert PASSWORD not in explain(ConnectionRefusedError("refused"), config)


def test_success_message_matches_the_guide() -> None:
    assert success_message(RedisConfig(), "7.4.1") == "Successfully connected to Redis (redis_version 7.4.1)"
    both = RedisConfig(url="rediss://h:1", password="x")
    assert success_message(both, "7.4.1").startswith(
        "Successfully connected to Redis with SSL with authentication"
    )


def ids(config: RedisConfig) -> set[str]:
    return {str(message.id) for message in check_redis_config(config)}


def test_checks_flag_missing_tls_files_and_inconsistent_options(tmp_path: Path) -> None:
    assert ids(RedisConfig.from_env(GUIDE_ENV)) == {"hsi.E002"}
    lone_cert = tmp_path / "client.pem"
    lone_cert.write_text("x")
    config = RedisConfig(url="redis://h:1", ssl_certfile=str(lone_cert))
    assert ids(config) == {"hsi.W003", "hsi.E004"}
    assert ids(RedisConfig(url="rediss://h:1", ssl_cert_reqs="maybe")) == {"hsi.E001"}
    assert ids(RedisConfig(url="rediss://h:1", ssl_cert_reqs="none")) == {"hsi.W005"}
    assert ids(RedisConfig()) == set()
    message = check_redis_config(RedisConfig.from_env(GUIDE_ENV))[0]
    assert "/etc/ssl/redis-ca.pem" in message.msg and message.hint


def test_in_memory_channel_layer_is_an_error_outside_tests(settings) -> None:
    from django.core.management.base import SystemCheckError

    redis_layers = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with pytest.raises(SystemCheckError, match=r"hsi\.E006"):
        call_command("check")
    settings.DEBUG = True  # relay_events is its own process: in DEBUG too the layer must cross processes
    with pytest.raises(SystemCheckError, match=r"hsi\.E007"):
        call_command("check")
    settings.CHANNEL_LAYERS = redis_layers
    call_command("check")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SECRET")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secret_key_is_required_outside_debug() -> None:
    result = manage("check", DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert manage("check", DJANGO_DEBUG="true").returncode == 0


def test_env_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DJANGO_SECRET_KEY=from-the-env-file-" + "z" * 40 + "\nQUEUE_MAX_SIZE=1234\n")
    code = "from django.conf import settings; print(settings.HSI_CONSOLE['QUEUE_MAX_SIZE'])"
    result = manage("shell", "-c", code, DJANGO_ENV_FILE=str(env_file), DJANGO_DEBUG="false")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("1234")


def test_database_url_selects_the_database() -> None:
    code = (
        "from django.conf import settings; d = settings.DATABASES['default']; print(d['ENGINE'], d['NAME'])"
    )
    result = manage(
        "shell", "-c", code, DATABASE_URL="postgres://u:p@db.example:5432/hsi", DJANGO_DEBUG="true"
    )
    assert result.stdout.split()[-2:] == ["django.db.backends.postgresql", "hsi"], result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "sentence"),
    [
        ("QUEUE_MAX_SIZE", "10k", "QUEUE_MAX_SIZE must be a whole number of at least 1; it is '10k'"),
        ("HSI_SCAN_LIMIT", "-5", "HSI_SCAN_LIMIT must be a whole number of at least 1; it is '-5'"),
        ("HSI_BULK_CHUNK_SECONDS", "3s", "HSI_BULK_CHUNK_SECONDS must be a number of seconds"),
        ("REDIS_SOCKET_TIMEOUT", "nan", "REDIS_SOCKET_TIMEOUT must be a number of seconds"),
        ("DJANGO_SESSION_SECONDS", "30", "DJANGO_SESSION_SECONDS must be a whole number of at least 60"),
        ("DJANGO_HTTPS", "flase", "DJANGO_HTTPS must be true or false; it is 'flase'."),
        ("REDIS_SSL_ENABLED", "tls", "REDIS_SSL_ENABLED must be true or false; it is 'tls'."),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (
            "DATABASE_URL",
            "mongo://u:secret-pw@db/x",
            "DATABASE_URL is not a database URL the console can use (mongo)",
        ),
    ],
)
def test_a_wrong_setting_stops_the_start_with_one_sentence(variable: str, value: str, sentence: str) -> None:
    """Never a traceback, never a silent default (``flase`` is not false), never the value of a URL."""
    result = manage("check", DJANGO_DEBUG="true", **{variable: value})
    assert result.returncode == 2
    assert result.stderr.startswith(f"HSI Console cannot start: {sentence}"), result.stderr
    assert "Traceback" not in result.stderr
    assert "secret-pw" not in result.stderr


def test_daphne_refuses_a_wrong_setting_with_the_same_sentence() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "-m", "daphne", "-p", "0", "console.asgi:application"],
        cwd=ROOT,
        env=env | {"DJANGO_ENV_FILE": "", "DJANGO_DEBUG": "true", "HSI_LIVE_BUFFER": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "HSI Console cannot start: HSI_LIVE_BUFFER must be a whole number of at least 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_boolean_and_number_words() -> None:
    assert [env_bool({"X": w}, "X", False) for w in ("1", "true", "Yes", " on ")] == [True] * 4
    assert [env_bool({"X": w}, "X", True) for w in ("0", "false", "No", "OFF")] == [False] * 4
    assert env_bool({"X": "  "}, "X", True) is True
    assert env_int({}, "X", 7) == 7
    assert env_int({"X": "12"}, "X", 7) == 12
    assert env_seconds({"X": "0.25"}, "X", 3.0) == 0.25
