"""Rate limits against a real private redis-server: sign-in, API classes, bulk actions, outages.

Each test points the ``ratelimit`` cache at its own redis-server (``limiter``) with tiny limits,
so counting starts from zero and stopping that server takes only the limiter down; HSI's Redis
(the session's server, ``redis_client``) keeps answering.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token

from console import ratelimit
from console.models import AuditEntry
from console.ratelimit import Rate, Scope, client_ip, parse_networks, parse_rate
from console.redis import RedisConfig
from queues.codec import encode_payload
from tests.conftest import logged_in
from tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple-9"
WRONG = "Wrong-Password-Never-Stored-42"
DLQ = "dlq:detection_queue"
ITEMS = f"/api/queues/{quote(DLQ, safe='')}/items/"
RETRY = f"/api/dlq/{quote(DLQ, safe='')}/retry/"
BIG = Rate(1000, 60)


@pytest.fixture
def limiter(settings: Any, start_server: Callable[..., RedisServer]) -> RedisServer:
    """The limiter on its own redis-server; every class allows 1000/min until a test says otherwise."""
    server = start_server()
    config = RedisConfig(url=server.url, socket_timeout=1, socket_connect_timeout=1)
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": config.cache_settings(key_prefix="console:rl", ignore_exceptions=False),
    }
    settings.RATELIMIT_ENABLED = True
    settings.TRUSTED_PROXIES = ()
    settings.RATELIMIT_RATES = dict.fromkeys(Scope, BIG)
    return server


@pytest.fixture
def limits(settings: Any) -> Callable[..., None]:
    def set_limits(**rates: str) -> None:
        parsed = {Scope(name): parse_rate(name, value) for name, value in rates.items()}
        settings.RATELIMIT_RATES = {**settings.RATELIMIT_RATES, **parsed}

    return set_limits


def person(username: str, role: str = "Operator") -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/login/", {"username": username, "password": password, "next": "/"}, **extra)


def signed_in(response: Any) -> bool:
    return bool(response.status_code == 302 and response["Location"] == "/")


def retry_after(response: Any) -> int:
    return int(response["Retry-After"])


# --- Configuration ---------------------------------------------------------------------------------


def test_rates_parse_and_bad_values_get_a_sentence() -> None:
    assert parse_rate("X", "20/5m") == Rate(20, 300)
    assert parse_rate("X", "600/m") == Rate(600, 60)
    assert parse_rate("X", " 10 / 30s ") == Rate(10, 30)
    assert parse_rate("X", "2/h") == Rate(2, 3600)
    for bad in ("", "20", "20/", "0/m", "-1/m", "5/0m", "5/5w", "five/m", "5/m/2"):
        with pytest.raises(ImproperlyConfigured, match=r"DJANGO_RATELIMIT_BULK=.* is not a rate: write it"):
            parse_rate("DJANGO_RATELIMIT_BULK", bad)
    rates = ratelimit.rates_from_env({"DJANGO_RATELIMIT_API_WRITE": "7/m"})
    assert rates[Scope.API_WRITE] == Rate(7, 60) and rates[Scope.LOGIN_USER] == Rate(5, 300)


def test_trusted_proxies_parse_and_a_bad_entry_stops_the_start() -> None:
    assert [str(n) for n in parse_networks("P", " 10.0.0.5, 10.1.0.0/16 ,,::1")] == [
        "10.0.0.5/32",
        "10.1.0.0/16",
        "::1/128",
    ]
    assert parse_networks("P", "") == ()
    with pytest.raises(ImproperlyConfigured, match=r"DJANGO_TRUSTED_PROXIES contains 'proxy\.local'"):
        parse_networks("DJANGO_TRUSTED_PROXIES", "10.0.0.5,proxy.local")


# --- Client IP -------------------------------------------------------------------------------------


def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(settings: Any) -> None:
    factory = RequestFactory()

    def ip(remote: str, forwarded: str | None = None) -> str | None:
        request = factory.get("/", REMOTE_ADDR=remote)
        if forwarded is not None:
            request.META["HTTP_X_FORWARDED_FOR"] = forwarded
        return client_ip(request)

    settings.TRUSTED_PROXIES = ()
    assert ip("203.0.113.7", "198.51.100.1") == "203.0.113.7"  # nobody is trusted: header ignored
    settings.TRUSTED_PROXIES = parse_networks("P", "10.0.0.0/24")
    assert ip("203.0.113.7", "198.51.100.1") == "203.0.113.7"  # spoofed by an untrusted client
    assert ip("10.0.0.2", "198.51.100.1") == "198.51.100.1"
    # The client forged a left part; the rightmost hop that is not one of our proxies is the client.
    assert ip("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.9") == "198.51.100.1"
    assert ip("10.0.0.2", "garbage, 198.51.100.1") == "198.51.100.1"
    assert ip("10.0.0.2", "198.51.100.1, not-an-ip") == "10.0.0.2"  # malformed: stay at the proxy
    assert ip("10.0.0.2", "10.0.0.7, 10.0.0.8") == "10.0.0.7"  # only proxies: the farthest one
    assert ip("10.0.0.2") == "10.0.0.2"
    assert client_ip(None) is None


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    assert ratelimit.ip_bucket("2001:db8:1:2:aaaa::1") == ratelimit.ip_bucket("2001:db8:1:2:bbbb::9")
    assert ratelimit.ip_bucket("2001:db8:1:2::1") != ratelimit.ip_bucket("2001:db8:1:3::1")
    assert ratelimit.ip_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    assert ratelimit.ip_bucket(None) == "unknown"


# --- Sign-in -----------------------------------------------------------------------------------------


def test_login_ip_limit_counts_every_attempt_and_says_when(limiter: RedisServer, limits: Any) -> None:
    person("otto")
    limits(login_ip="3/5m")
    client = Client()
    assert sign_in(client, "someone", WRONG).status_code == 200
    assert sign_in(client, "other", WRONG).status_code == 200
    assert signed_in(sign_in(client, "otto"))  # successes count per IP too
    refused = sign_in(Client(), "otto")
    assert refused.status_code == 429 and not signed_in(refused)
    assert 60 < retry_after(refused) <= 100  # 3/5m: one slot frees every 100 s
    html = refused.content.decode()
    assert re.search(r"Too many sign-in attempts from your address\. Try again in 2 minutes\.", html)
    assert 'name="username"' in html  # still the login page
    assert sign_in(Client(), "otto", REMOTE_ADDR="192.0.2.10").status_code == 302  # another address


def test_username_limit_counts_only_failures_and_cools_off(limiter: RedisServer, limits: Any) -> None:
    person("otto")
    person("vera", "Viewer")
    limits(login_user="2/5m")
    for _ in range(4):
        assert signed_in(sign_in(Client(), "vera"))  # successes never lock an account
    assert sign_in(Client(), "otto", WRONG).status_code == 200
    assert sign_in(Client(), "otto", WRONG).status_code == 200
    refused = sign_in(Client(), "otto")  # even the right password waits now
    assert refused.status_code == 429 and 120 < retry_after(refused) <= 150
    assert "Too many sign-in attempts for this account. Try again in 3 minutes." in refused.content.decode()
    assert signed_in(sign_in(Client(), "vera"))  # another account is not affected
    # A window, not a lockout: the bucket expires, and refused attempts do not push it further.
    key = ratelimit.bucket_key(Scope.LOGIN_USER, ratelimit.username_bucket("otto"))
    limiter_client = limiter.client()
    ttl = limiter_client.pttl(key)
    assert 0 < ttl <= 300_000
    for _ in range(3):
        assert sign_in(Client(), "otto", WRONG).status_code == 429
    assert limiter_client.pttl(key) <= ttl


def test_a_successful_sign_in_clears_the_accounts_failures(limiter: RedisServer, limits: Any) -> None:
    person("otto")
    limits(login_user="2/5m")
    assert sign_in(Client(), "otto", WRONG).status_code == 200
    assert signed_in(sign_in(Client(), "otto"))
    assert sign_in(Client(), "otto", WRONG).status_code == 200
    assert sign_in(Client(), "otto", WRONG).status_code == 200  # two failures since the success
    assert sign_in(Client(), "otto").status_code == 429


def test_sign_ins_failures_and_refusals_are_audited_without_the_password(
    limiter: RedisServer, limits: Any
) -> None:
    otto = person("otto")
    limits(login_user="1/5m")
    assert signed_in(sign_in(Client(), "otto"))
    assert sign_in(Client(), "otto", WRONG).status_code == 200
    assert sign_in(Client(), "otto", WRONG).status_code == 429
    trail = list(AuditEntry.objects.order_by("pk"))
    assert [(e.action, e.username, e.ip_address) for e in trail] == [
        ("login", "otto", "127.0.0.1"),
        ("login_failed", "otto", "127.0.0.1"),
        ("login_rate_limited", "otto", "127.0.0.1"),
    ]
    assert trail[0].user == otto and trail[1].user is None
    assert trail[2].detail["limit"] == "login_user" and 0 < trail[2].detail["retry_after"] <= 300
    stored = repr([(e.username, e.key, e.detail) for e in trail])
    assert WRONG not in stored and PASSWORD not in stored


def test_force_login_is_not_a_sign_in(limiter: RedisServer) -> None:
    """Code that logs a user in without a request (tests, shells) writes no audit entry."""
    logged_in(person("otto"))
    assert not AuditEntry.objects.exists()


def test_spoofed_forwarded_for_does_not_escape_the_ip_limit(
    limiter: RedisServer, limits: Any, settings: Any
) -> None:
    limits(login_ip="2/5m")
    for n in range(2):
        assert sign_in(Client(), "x", WRONG, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code == 200
    refused = sign_in(Client(), "x", WRONG, HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert refused.status_code == 429
    assert AuditEntry.objects.get(action="login_rate_limited").ip_address == "127.0.0.1"


def test_forwarded_for_from_a_trusted_proxy_is_the_client(
    limiter: RedisServer, limits: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = parse_networks("P", "127.0.0.1")
    limits(login_ip="2/5m")
    for _ in range(2):
        assert sign_in(Client(), "x", WRONG, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 200
    assert sign_in(Client(), "x", WRONG, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    other = sign_in(Client(), "x", WRONG, HTTP_X_FORWARDED_FOR="198.51.100.1, 198.51.100.2")
    assert other.status_code == 200  # the rightmost untrusted hop is a different client
    addresses = set(AuditEntry.objects.values_list("ip_address", flat=True))
    assert addresses == {"198.51.100.1", "198.51.100.2"}


def test_limits_can_be_switched_off(limiter: RedisServer, limits: Any, settings: Any) -> None:
    settings.RATELIMIT_ENABLED = False
    limits(login_ip="1/5m")
    limiter.kill()  # not even consulted
    assert [sign_in(Client(), "x", WRONG).status_code for _ in range(3)] == [200, 200, 200]


# --- API and pages -------------------------------------------------------------------------------------


def seed(client: redis.Redis, count: int) -> None:
    payload = {"original_job": {"camera_id": "cam1"}, "error": "boom", "queue_name": "detection_queue"}
    client.rpush(DLQ, *[encode_payload({**payload, "n": n}) for n in range(count)])


def test_api_reads_writes_and_exports_have_separate_buckets(
    limiter: RedisServer, limits: Any, redis_client: redis.Redis
) -> None:
    seed(redis_client, 3)
    limits(api_read="2/m", api_write="1/m", export="1/m")
    client = logged_in(person("otto"))
    assert [client.get(ITEMS).status_code for _ in range(2)] == [200, 200]
    refused = client.get(ITEMS)
    assert refused.status_code == 429 and refused["Content-Type"] == "application/json"
    body = refused.json()
    assert body["error"] == "rate_limited" and body["retry_after"] == retry_after(refused)
    assert 0 < body["retry_after"] <= 30
    assert re.fullmatch(r"Too many API reads\. Try again in \d+ seconds?\.", body["detail"])
    # Writes have their own bucket: still allowed once although reads are exhausted.
    first = client.post(RETRY, {"all": True}, content_type="application/json")
    assert first.status_code == 200 and redis_client.llen(DLQ) == 0
    seed(redis_client, 1)
    second = client.post(RETRY, {"all": True}, content_type="application/json")
    assert second.status_code == 429 and second.json()["detail"].startswith("Too many API changes.")
    assert redis_client.llen(DLQ) == 1  # the refused retry did nothing
    # Exports (any path or view named export) have theirs.
    export = f"/api/queues/{quote(DLQ, safe='')}/export/"
    assert client.get(export).status_code == 404  # no such endpoint yet: counted, then refused
    assert client.get(export).json()["detail"].startswith("Too many exports.")


def test_each_user_has_their_own_bucket_whether_by_session_or_token(
    limiter: RedisServer, limits: Any, redis_client: redis.Redis
) -> None:
    limits(api_read="2/m")
    otto, vera = person("otto"), person("vera", "Viewer")
    otto_token = f"Token {Token.objects.create(user=otto).key}"
    api = Client()
    answers = [api.get("/api/queues/", HTTP_AUTHORIZATION=otto_token).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert logged_in(otto).get("/api/queues/").status_code == 429  # the same user by session
    vera_token = f"Token {Token.objects.create(user=vera).key}"
    assert api.get("/api/queues/", HTTP_AUTHORIZATION=vera_token).status_code == 200
    assert logged_in(vera).get("/api/queues/").status_code == 200
    # A wrong token is not a user: it counts against the client's address (and gets DRF's 401).
    assert Client().get("/api/queues/", HTTP_AUTHORIZATION="Token nope").status_code == 401


def test_health_endpoints_are_never_limited(
    limiter: RedisServer, limits: Any, redis_client: redis.Redis
) -> None:
    limits(api_read="1/m")
    client = Client()
    for _ in range(5):
        assert client.get("/api/system/health/live").status_code == 200
        assert client.get("/api/system/health/ready").status_code == 200


def test_bulk_page_action_is_limited_with_an_html_page(
    limiter: RedisServer, limits: Any, redis_client: redis.Redis
) -> None:
    seed(redis_client, 4)
    limits(bulk="1/m")
    client = logged_in(person("otto"))
    action = reverse("admin:queue_matching", args=[DLQ, "retry"])
    assert client.get(action).status_code == 200  # the confirm page is not an action
    assert client.post(action, {"nonce": "a" * 32}).status_code == 302
    assert redis_client.llen(DLQ) == 0
    seed(redis_client, 2)
    refused = client.post(action, {"nonce": "b" * 32})
    assert refused.status_code == 429 and refused["Content-Type"].startswith("text/html")
    html = refused.content.decode()
    assert "Too many bulk actions. Try again in 1 minute." in html and 0 < retry_after(refused) <= 60
    assert "Traceback" not in html and "HSI Console" in html
    assert redis_client.llen(DLQ) == 2
    restore_all = client.post(reverse("admin:archive_restore_all"), {"key": DLQ, "nonce": "c" * 32})
    assert restore_all.status_code == 429, "restoring a whole archive is a bulk action too"
    assert client.get(reverse("admin:queue_items", args=[DLQ])).status_code == 200  # pages still open


def test_classes_by_path_and_method() -> None:
    factory = RequestFactory()
    cases = {
        ("GET", "/api/queues/"): Scope.API_READ,
        ("HEAD", "/api/jobs/"): Scope.API_READ,
        ("POST", "/api/dlq/x/retry/"): Scope.API_WRITE,
        ("DELETE", "/api/jobs/1/"): Scope.API_WRITE,
        ("GET", "/api/dlq/x/export/"): Scope.EXPORT,
        ("POST", "/api/dlq/x/export.ndjson"): Scope.EXPORT,
        ("GET", "/api/system/health/ready"): None,
        ("GET", "/queues/"): None,
        ("POST", "/login/"): None,  # sign-in has its own limits, in the login form
    }
    for (method, path), scope in cases.items():
        assert ratelimit.classify(factory.generic(method, path)) == scope, (method, path)


# --- Redis down --------------------------------------------------------------------------------------


def test_limiter_down_closes_sign_in_and_changes_but_not_reads(
    limiter: RedisServer, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    # A bucket lives for one interval (period / limit): 3.6 s here, not BIG's 60 ms, so the check
    # at the end that the requests were counted again does not race the buckets' expiry.
    settings.RATELIMIT_RATES = dict.fromkeys(Scope, Rate(1000, 3600))
    seed(redis_client, 2)
    person("otto")
    client = logged_in(User.objects.get(username="otto"))
    assert client.get(ITEMS).status_code == 200  # the pool has a live connection now
    limiter.kill()
    paused = sign_in(Client(), "otto")
    sentence = (
        f"Sign-in is paused: the rate limiter cannot reach Redis at 127.0.0.1:{limiter.port} — "
        "check CONSOLE_REDIS_URL and that this Redis is running."
    )
    assert paused.status_code == 503 and sentence in paused.content.decode()
    assert "_auth_user_id" not in Client().session
    write = client.post(RETRY, {"all": True}, content_type="application/json")
    assert write.status_code == 503 and write.json()["error"] == "rate_limiter_unavailable"
    assert write.json()["detail"].startswith("This action is paused: the rate limiter cannot reach Redis at")
    assert redis_client.llen(DLQ) == 2
    bulk = client.post(reverse("admin:queue_matching", args=[DLQ, "delete"]), {"nonce": "c" * 32})
    assert bulk.status_code == 503 and "CONSOLE_REDIS_URL" in bulk.content.decode()
    assert redis_client.llen(DLQ) == 2
    caplog.clear()
    ratelimit._last_logged.clear()  # a fresh minute for the log
    with caplog.at_level(logging.WARNING, logger="console.ratelimit"):
        assert [client.get(ITEMS).status_code for _ in range(3)] == [200, 200, 200]
    warnings = [r.getMessage() for r in caplog.records if r.name == "console.ratelimit"]
    assert len(warnings) == 1 and "Rate limits are not enforced (api_read" in warnings[0]
    assert not AuditEntry.objects.filter(action="login").exists()
    # Redis back: sign-in and changes work again, and are counted again.
    limiter.start()
    assert signed_in(sign_in(Client(), "otto"))
    assert client.post(RETRY, {"all": True}, content_type="application/json").status_code == 200
    assert redis_client.llen(DLQ) == 0
    assert limiter.client().keys("console:rl:*")


def test_limiter_timeout_is_fast_enough_for_pages(limiter: RedisServer, redis_client: redis.Redis) -> None:
    """A stopped limiter answers at once (connection refused), so fail-open reads cost no waiting."""
    person("otto")
    client = logged_in(User.objects.get(username="otto"))
    limiter.kill()
    started = time.monotonic()
    assert client.get(ITEMS).status_code == 200
    assert time.monotonic() - started < 2
