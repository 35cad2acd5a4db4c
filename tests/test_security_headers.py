"""Security headers on every kind of response, over HTTPS as in production; CSRF and size refusals.

Production runs with DJANGO_HTTPS=true; the test session runs with it off (plain-HTTP test client),
so ``https_settings`` turns on exactly what console/settings.py derives from DJANGO_HTTPS and the
requests are made with ``secure=True``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.conf import LazySettings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.views import CSRF_API_SENTENCE, CSRF_SENTENCE
from queues import dlq
from queues.demo import build_demo_world
from tests.conftest import logged_in
from tests.redis_server import free_port

pytestmark = pytest.mark.django_db
DLQ = "dlq:detection_queue"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'; connect-src 'self' wss://testserver"
)
ONE_YEAR = 365 * 24 * 3600


@pytest.fixture
def https_settings(settings: LazySettings) -> LazySettings:
    """What DJANGO_HTTPS=true (the production default) sets."""
    settings.HTTPS = True
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = ONE_YEAR
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    return settings


def dlq_item(client: redis.Redis) -> str:
    entry = dlq.page(client, DLQ, 0, 1).entries[0]
    return reverse("admin:queue_entry", args=[DLQ, entry.index, entry.id])


def stream_dlq_item(client: redis.Redis) -> str:
    rows: Any = client.xrange("detections:stream:dlq", count=1)
    return reverse("admin:stream_entry", args=["detections:stream:dlq", rows[0][0].decode()])


def down(point_at: Callable[..., Any]) -> None:
    point_at(url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there


# (name, who is logged in, path or path-maker, expected status, arranges Redis down)
PAGES: list[tuple[str, str | None, Any, int]] = [
    ("login page", None, "/login/", 200),
    ("dashboard", "admin", "/", 200),
    ("queue page", "admin", "/queues/detection_queue/", 200),
    ("DLQ item page", "admin", dlq_item, 200),
    ("stream DLQ item page", "admin", stream_dlq_item, 200),
    ("jobs", "admin", "/jobs/", 200),
    ("keys", "admin", "/keys/", 200),
    ("orchestrator", "admin", "/orchestrator/", 200),
    ("live", "admin", "/live/", 200),
    ("admin changelist", "admin", "/auth/user/", 200),
    ("audit changelist", "admin", "/console/auditentry/", 200),
    ("API JSON", "admin", "/api/queues/", 200),
    ("health endpoint", None, "/api/system/health/live", 200),
    ("404", "admin", "/no/such/page/", 404),
    ("403", "viewer", "/auth/user/", 403),
    ("503", "admin", "/queues/", 503),
    ("API 503", "admin", "/api/queues/", 503),
]


@pytest.mark.parametrize(("name", "who", "target", "status"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_type_sends_the_security_headers(
    https_settings: LazySettings,
    redis_client: redis.Redis,
    point_at: Callable[..., Any],
    admin_user: User,
    viewer: User,
    name: str,
    who: str | None,
    target: Any,
    status: int,
) -> None:
    build_demo_world(redis_client)
    path = target(redis_client) if callable(target) else target
    client = {"admin": logged_in(admin_user), "viewer": logged_in(viewer), None: Client()}[who]
    if status == 503:
        down(point_at)
    response = client.get(path, secure=True)
    assert response.status_code == status, response.content[:300]
    assert_security_headers(response)
    if status >= 400 and not path.startswith("/api/"):
        assert "Traceback" not in response.content.decode()


def assert_security_headers(response: Any, connect: str = "wss://testserver") -> None:
    assert response["Content-Security-Policy"] == CSP.replace("wss://testserver", connect)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    if connect.startswith("wss"):
        assert response["Strict-Transport-Security"] == f"max-age={ONE_YEAR}; includeSubDomains"


def test_plain_http_is_redirected_except_health(https_settings: LazySettings, admin_user: User) -> None:
    client = logged_in(admin_user)
    redirect = client.get("/queues/")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://testserver/queues/"
    # The redirect is answered before the page's middleware runs; it still carries CSP and nosniff.
    assert redirect["Content-Security-Policy"] == CSP.replace("wss://", "ws://")
    assert redirect["X-Content-Type-Options"] == "nosniff"
    assert client.get("/api/system/health/live").status_code == 200  # probes speak plain HTTP


def test_plain_http_install_names_ws_in_connect_src(redis_client: redis.Redis, admin_user: User) -> None:
    """DJANGO_HTTPS=false (this test session): same headers, the socket is ws://, no HSTS."""
    response = logged_in(admin_user).get("/live/")
    assert response.status_code == 200
    assert_security_headers(response, connect="ws://testserver")
    assert "Strict-Transport-Security" not in response


def test_login_cookies_are_secure_httponly_lax(https_settings: LazySettings, admin_user: User) -> None:
    admin_user.set_password("A-long-enough-pw-1")
    admin_user.save()
    client = Client()
    login = client.get("/login/", secure=True)
    token = login.cookies["csrftoken"]
    assert token["secure"] and token["httponly"] and token["samesite"] == "Lax"
    response = client.post(
        "/login/?next=/",
        {
            "username": admin_user.username,
            "password": "A-long-enough-pw-1",
            "csrfmiddlewaretoken": token.value,
        },
        secure=True,
    )
    assert response.status_code == 302, response.content[:500]
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert session["max-age"] == ""  # expires when the browser closes
    assert client.session.get_expiry_age() == 8 * 3600


# --- CSRF ---


def test_console_post_without_csrf_token_gets_the_sentence(redis_client: redis.Redis, operator: User) -> None:
    build_demo_world(redis_client)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    before = redis_client.llen(DLQ)
    entry = dlq.page(redis_client, DLQ, 0, 1).entries[0]
    response = client.post(reverse("admin:queue_selected", args=[DLQ, "retry"]), {"ref": entry.ref})
    assert response.status_code == 403
    assert CSRF_SENTENCE in response.content.decode()
    assert response.content.decode().count("<h1>Form expired</h1>") == 1, "one heading, not two"
    assert_security_headers(response, connect="ws://testserver")
    assert redis_client.llen(DLQ) == before  # nothing was retried


def test_api_session_post_without_csrf_token_gets_json_sentence(
    redis_client: redis.Redis, operator: User
) -> None:
    build_demo_world(redis_client)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    before = redis_client.llen(DLQ)
    response = client.post(
        f"/api/dlq/{DLQ}/retry/", json.dumps({"all": True}), content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json() == {"error": "csrf_failed", "detail": CSRF_API_SENTENCE}
    assert redis_client.llen(DLQ) == before


def test_csrf_failure_view_for_a_foreign_origin(https_settings: LazySettings, operator: User) -> None:
    """A POST from another site (wrong Origin, as a cross-site form would send) is refused the same way."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    token = client.get("/queues/", secure=True).cookies["csrftoken"].value
    response = client.post(
        "/logout/", {"csrfmiddlewaretoken": token}, secure=True, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert CSRF_SENTENCE in response.content.decode()


# --- Request size ---


def test_oversized_form_post_gets_413_sentence(settings: LazySettings, operator: User) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = logged_in(operator).post(
        reverse("admin:queue_selected", args=[DLQ, "retry"]), {"ref": "0:" + "a" * 20_000}
    )
    assert response.status_code == 413
    text = response.content.decode()
    assert "the console accepts at most 10,000 bytes in one request" in text
    assert response["Content-Security-Policy"]


def test_oversized_api_body_gets_413_json(settings: LazySettings, operator: User) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"ids": ["x" * 100] * 200})
    response = logged_in(operator).post(f"/api/dlq/{DLQ}/retry/", body, content_type="application/json")
    assert response.status_code == 413
    data = response.json()
    assert data["error"] == "request_too_large"
    assert f"This request is {len(body):,} bytes" in data["detail"]


def test_too_many_fields_gets_400_sentence(operator: User) -> None:
    refs = [f"{i}:{i:016x}" for i in range(2500)]
    response = logged_in(operator).post(reverse("admin:queue_selected", args=[DLQ, "retry"]), {"ref": refs})
    assert response.status_code == 400
    assert "more than 2,000 fields" in response.content.decode()


def test_a_full_selection_fits_the_limits(redis_client: redis.Redis, operator: User) -> None:
    """1,000 selected refs (the selection limit) in a form and in an API body pass both limits."""
    refs = [f"{i}:{i:020x}" for i in range(1000)]  # well-formed refs of entries that do not exist
    response = logged_in(operator).post(reverse("admin:queue_selection", args=[DLQ]), {"ref": refs})
    assert response.status_code < 400, response.content[:300]
    body = json.dumps({"ids": refs})
    api = logged_in(operator).post(f"/api/dlq/{DLQ}/retry/", body, content_type="application/json")
    assert api.status_code == 200, api.content[:300]
    assert api.json()["retried"] == 0  # read and acted on (none of them exists), not refused


def test_unknown_host_gets_the_400_page_with_headers() -> None:
    """A Host outside DJANGO_ALLOWED_HOSTS: Django's 400, in the console's words, still under the CSP."""
    response = Client().get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "The console could not read this request" in response.content.decode()
    assert response["Content-Security-Policy"].endswith("form-action 'self'; connect-src 'self'")
    assert response["X-Content-Type-Options"] == "nosniff"
