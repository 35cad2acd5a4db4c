"""Production settings: ``check --deploy`` is clean, DJANGO_HTTPS and its companions, weak keys refused.

Each case runs manage.py in a fresh process with an explicit environment (no .env, no inherited
DJANGO_* variables), exactly as a deployment would start.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from console.checks import PLAIN_HTTP_WARNING
from tests.live_server import ROOT

PRODUCTION = {
    "DJANGO_ENV_FILE": "",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "console.example.org",
}
SHOW = """
import json
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in (
    "DEBUG", "HTTPS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_AGE", "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "CSRF_COOKIE_HTTPONLY", "DATA_UPLOAD_MAX_MEMORY_SIZE", "DATA_UPLOAD_MAX_NUMBER_FIELDS")}))
"""


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """manage.py with the production environment plus ``env``, and nothing of this test session's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_SSL_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base | PRODUCTION | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def shown(**env: str) -> dict[str, object]:
    result = manage("shell", "-c", SHOW, **env)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and "?: (security" not in output, output
    assert "System check identified no issues (1 silenced)" in output  # security.W021, see settings


def test_production_defaults_follow_https() -> None:
    values = shown()
    assert values["HTTPS"] is True
    assert values["SECURE_SSL_REDIRECT"] and values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000 and values["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert values["SECURE_HSTS_PRELOAD"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["SESSION_COOKIE_AGE"] == 8 * 3600 and values["SESSION_EXPIRE_AT_BROWSER_CLOSE"]
    assert values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 2 * 1024 * 1024
    assert values["DATA_UPLOAD_MAX_NUMBER_FIELDS"] == 2000


def test_debug_defaults_to_plain_http_for_make_run() -> None:
    """scripts/run-console sets DJANGO_DEBUG=true: plain http://127.0.0.1:8000 must keep working."""
    values = shown(DJANGO_DEBUG="true", DJANGO_SECRET_KEY="")
    assert values["HTTPS"] is False
    assert not values["SECURE_SSL_REDIRECT"] and not values["SESSION_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 0


def test_preload_proxy_header_and_session_length_are_configurable() -> None:
    values = shown(
        DJANGO_HSTS_PRELOAD="true",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto=https",
        DJANGO_SESSION_SECONDS="3600",
    )
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_AGE"] == 3600
    assert shown(DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_SCHEME=https")["SECURE_PROXY_SSL_HEADER"] == [
        "HTTP_X_SCHEME",
        "https",
    ]


@pytest.mark.parametrize("value", ["X-Forwarded-Proto", "=https", "X-Forwarded-Proto=", "X Forwarded=https"])
def test_a_malformed_proxy_header_stops_the_start_with_a_sentence(value: str) -> None:
    result = manage("check", DJANGO_SECURE_PROXY_SSL_HEADER=value)
    assert result.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER is" in result.stderr
    assert "write it as HEADER=value, e.g. X-Forwarded-Proto=https" in result.stderr


def test_plain_http_install_says_what_it_gives_up() -> None:
    result = manage("check", "--deploy", DJANGO_HTTPS="false")
    output = result.stdout + result.stderr
    assert "(hsi.W010) " + PLAIN_HTTP_WARNING in output
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output  # not hidden: the consequences are listed
    assert "hsi.W010" not in manage("check", "--deploy").stdout  # only when it applies


def test_plain_http_install_logs_the_warning_when_the_server_loads() -> None:
    load = "from django.core.asgi import get_asgi_application; get_asgi_application()"
    result = manage("shell", "-c", load, DJANGO_HTTPS="false")
    assert result.returncode == 0, result.stderr
    assert f"WARNING console.security: {PLAIN_HTTP_WARNING}" in result.stderr
    assert "console.security" not in manage("shell", "-c", load).stderr


@pytest.mark.parametrize(
    ("key", "sentence"),
    [
        ("short-" + "k" * 20, "DJANGO_SECRET_KEY is only 26 characters long; it needs at least 50."),
        ("ab" * 40, "DJANGO_SECRET_KEY uses fewer than 5 different characters."),
        ("django-insecure-" + secrets.token_urlsafe(50), "DJANGO_SECRET_KEY is a published example value"),
        ("insecure-development-key-only-used-when-DJANGO_DEBUG-is-true", "a published example value"),
    ],
    ids=["short", "few-characters", "django-insecure-prefix", "development-key"],  # one key is random
)
def test_weak_secret_keys_are_refused_outside_debug(key: str, sentence: str) -> None:
    result = manage("check", DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert sentence in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr  # and how to make a good one
    assert manage("check", DJANGO_SECRET_KEY=key, DJANGO_DEBUG="true").returncode == 0


def test_staff_passwords_need_12_characters() -> None:
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password("Kq7#mZp2vX!")  # 11 characters, otherwise strong
    validate_password("Kq7#mZp2vX!w")
