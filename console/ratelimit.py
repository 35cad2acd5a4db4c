"""Rate limits on the console's Redis: sign-in, the JSON API, exports and bulk page actions.

One GCRA script (``console/lua/gcra.lua``) runs atomically in one round trip on the
``ratelimit`` django-redis alias. That alias does not ignore exceptions: when Redis cannot be
reached, ``FAIL_OPEN`` below decides per class whether the request goes through (reads, so staff
can investigate the outage) or is refused with a 503 that says what to fix (sign-in, changes).

The first part (rates, proxies) is read by ``console/settings.py``, so this module imports
nothing that needs the app registry at import time.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

from console import lua

logger = logging.getLogger("console.ratelimit")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LUA = Path(__file__).with_name("lua") / "gcra.lua"
CACHE_ALIAS = "ratelimit"
LOG_EVERY_SECONDS = 60.0


class Scope(StrEnum):
    """An endpoint class: each has its own rate, bucket family and fail policy."""

    LOGIN_IP = "login_ip"
    LOGIN_USER = "login_user"
    API_READ = "api_read"
    API_WRITE = "api_write"
    EXPORT = "export"
    BULK = "bulk"


# When the limiter cannot reach Redis: True lets the request through (logged, at most once a
# minute), False refuses it with a 503. Reads stay open so an outage does not lock staff out of
# the pages they need to investigate it; sign-in, changes, bulk actions and exports (the costly
# reads) stay closed, because an unlimited burst of those is what the limits exist to stop.
FAIL_OPEN: Mapping[Scope, bool] = {
    Scope.LOGIN_IP: False,
    Scope.LOGIN_USER: False,
    Scope.API_READ: True,
    Scope.API_WRITE: False,
    Scope.EXPORT: False,
    Scope.BULK: False,
}

ENV_VARS: Mapping[Scope, tuple[str, str]] = {
    Scope.LOGIN_IP: ("DJANGO_RATELIMIT_LOGIN_IP", "20/5m"),
    Scope.LOGIN_USER: ("DJANGO_RATELIMIT_LOGIN_USER", "5/5m"),
    Scope.API_READ: ("DJANGO_RATELIMIT_API_READ", "600/m"),
    Scope.API_WRITE: ("DJANGO_RATELIMIT_API_WRITE", "60/m"),
    Scope.EXPORT: ("DJANGO_RATELIMIT_EXPORT", "10/m"),
    Scope.BULK: ("DJANGO_RATELIMIT_BULK", "30/m"),
}

NOUNS: Mapping[Scope, str] = {
    Scope.LOGIN_IP: "sign-in attempts from your address",
    Scope.LOGIN_USER: "sign-in attempts for this account",
    Scope.API_READ: "API reads",
    Scope.API_WRITE: "API changes",
    Scope.EXPORT: "exports",
    Scope.BULK: "bulk actions",
}

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


# --- Configuration (read by settings.py) -------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period`` seconds."""

    limit: int
    period: int

    def __str__(self) -> str:
        return f"{self.limit}/{self.period}s"


def parse_rate(name: str, value: str) -> Rate:
    """``N/period`` as in ``20/5m``, ``600/m`` or ``10/30s``; anything else stops the start-up."""
    match = RATE_RE.match(value)
    if not match or int(match[1]) < 1 or match[2] == "0":
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate: write it as N/period, e.g. 20/5m, 600/m or 10/30s "
            "(N at least 1; period in s, m, h or d, with an optional multiplier)."
        )
    return Rate(int(match[1]), int(match[2] or 1) * PERIODS[match[3]])


def rates_from_env(env: Mapping[str, str]) -> dict[Scope, Rate]:
    """Every class's rate from its ``DJANGO_RATELIMIT_*`` variable, or the default."""
    return {scope: parse_rate(var, env.get(var) or default) for scope, (var, default) in ENV_VARS.items()}


def parse_networks(name: str, value: str) -> tuple[Network, ...]:
    """Comma-separated IPs and CIDRs (``10.0.0.5, 10.1.0.0/16``) as networks."""
    networks: list[Network] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} contains {item!r}, which is not an IP address or CIDR network "
                "(write e.g. 10.0.0.5 or 10.0.0.0/24, separated by commas)."
            ) from None
    return tuple(networks)


# --- Who is asking -----------------------------------------------------------------------------------


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    return address is not None and any(address in network for network in settings.TRUSTED_PROXIES)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's IP, for rate limits and the audit trail alike.

    ``X-Forwarded-For`` is anyone's to write, so it is read only when the connection comes from a
    proxy in ``DJANGO_TRUSTED_PROXIES``; then the rightmost hop that is not a trusted proxy is the
    client (everything left of it may be forged). A hop that is not an address ends the walk at
    the last trusted one, so a malformed header never lets a client choose its own bucket.
    """
    if request is None:
        return None
    remote: str | None = request.META.get("REMOTE_ADDR") or None
    if not remote or not _trusted(_address(remote)):
        return remote
    client = remote
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(hop)
        if address is None:
            break
        client = str(address)
        if not _trusted(address):
            break
    return client


def ip_bucket(ip: str | None) -> str:
    """An IPv4 address, or an IPv6 client's /64 (one host usually owns the whole /64)."""
    address = _address(ip or "")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else address or "unknown")


def username_bucket(username: str) -> str:
    """A digest: any typed text makes a short key, and no username is stored in Redis."""
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# --- The limiter -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # whole seconds, at least 1 when refused


class LimiterUnavailable(Exception):
    """The ``ratelimit`` cache's Redis did not answer; ``address`` says which one."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(reason)
        self.address = address
        self.reason = reason


def _explain(exc: BaseException) -> LimiterUnavailable:
    """Which Redis and what is wrong with it, in the words the rest of the console uses."""
    from console.redis import RedisConfig, explain

    config = RedisConfig(url=str(settings.CACHES[CACHE_ALIAS]["LOCATION"]))
    return LimiterUnavailable(config.address, explain(exc, config))


def bucket_key(scope: Scope, identity: str) -> str:
    return f"{settings.CACHES[CACHE_ALIAS]['KEY_PREFIX']}:{scope}:{identity}"


def _connection() -> redis.Redis:
    from django_redis import get_redis_connection

    client: redis.Redis = get_redis_connection(CACHE_ALIAS)
    return client


def _run(scope: Scope, identity: str, cost: int) -> Verdict:
    rate: Rate = settings.RATELIMIT_RATES[scope]
    try:
        client = _connection()
        args = [rate.period * 1000, rate.limit, cost]
        reply = lua.load(LUA).call(client, [bucket_key(scope, identity)], args)
    except (redis.RedisError, OSError) as exc:
        raise _explain(exc) from exc
    allowed, retry_ms = (int(value) for value in reply)
    return Verdict(bool(allowed), 0 if allowed else max(1, math.ceil(retry_ms / 1000)))


def take(scope: Scope, identity: str) -> Verdict:
    """Count one request against ``identity``'s bucket; a refused request is not counted."""
    return _run(scope, identity, 1)


def peek(scope: Scope, identity: str) -> Verdict:
    """Would one more request be allowed? Counts nothing (the username limit counts failures)."""
    return _run(scope, identity, 0)


def forget(scope: Scope, identity: str) -> None:
    """Empty a bucket (a successful sign-in clears its account's failures); errors are logged."""
    try:
        _connection().delete(bucket_key(scope, identity))
    except (redis.RedisError, OSError) as exc:
        logger.warning("Could not reset the %s rate-limit bucket: %s", scope, type(exc).__name__)


_last_logged: dict[Scope, float] = {}


def _log_outage(scope: Scope, exc: LimiterUnavailable) -> None:
    """One warning a minute per class at most: an outage must be visible, not flood the log."""
    now = time.monotonic()
    if now - _last_logged.get(scope, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
        return
    _last_logged[scope] = now
    if FAIL_OPEN[scope]:
        logger.warning("Rate limits are not enforced (%s requests let through): %s", scope, exc.reason)
    else:
        logger.warning("Refusing %s requests (503) while the rate limiter is down: %s", scope, exc.reason)


# --- Refusals ----------------------------------------------------------------------------------------


def wait_text(seconds: int) -> str:
    """``12 seconds`` / ``4 minutes``: rounded up, so the client never comes back too early."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True)
class Refusal:
    """Why a request is not served: 429 (limit reached) or 503 (limiter unreachable)."""

    status: int
    error: str
    detail: str
    retry_after: int | None = None

    @classmethod
    def limited(cls, scope: Scope, verdict: Verdict) -> Refusal:
        detail = f"Too many {NOUNS[scope]}. Try again in {wait_text(verdict.retry_after)}."
        return cls(429, "rate_limited", detail, verdict.retry_after)

    @classmethod
    def unavailable(cls, scope: Scope, exc: LimiterUnavailable) -> Refusal:
        what = "Sign-in is paused" if scope in (Scope.LOGIN_IP, Scope.LOGIN_USER) else "This action is paused"
        detail = (
            f"{what}: the rate limiter cannot reach Redis at {exc.address} — check CONSOLE_REDIS_URL "
            "and that this Redis is running."
        )
        return cls(503, "rate_limiter_unavailable", detail)

    @property
    def title(self) -> str:
        return "Too many requests" if self.status == 429 else "Rate limiter unavailable"

    def apply(self, response: HttpResponse) -> HttpResponse:
        """Give an already built response (the login page) this refusal's status and header."""
        response.status_code = self.status
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        return response

    def respond(self, request: HttpRequest) -> HttpResponse:
        """JSON for the API (with ``retry_after``), else the console's refusal page."""
        from console.views import refuse, wants_json

        if self.retry_after is not None and wants_json(request):
            body = {"error": self.error, "detail": self.detail, "retry_after": self.retry_after}
            return self.apply(JsonResponse(body))
        return self.apply(refuse(request, self.status, self.error, self.title, self.detail))


def guard(scope: Scope, identity: str, count: Callable[[Scope, str], Verdict] = take) -> Refusal | None:
    """Apply ``scope``'s limit to ``identity``: None to serve the request, else the refusal."""
    try:
        verdict = count(scope, identity)
    except LimiterUnavailable as exc:
        _log_outage(scope, exc)
        return None if FAIL_OPEN[scope] else Refusal.unavailable(scope, exc)
    return None if verdict.allowed else Refusal.limited(scope, verdict)


# --- Sign-in -----------------------------------------------------------------------------------------


def check_login(request: HttpRequest, username: str) -> Refusal | None:
    """Before a sign-in is tried: every attempt counts per IP; the account's failures are read.

    Only failures count toward the account (``note_login_failure``), so nobody can lock a user
    out by signing in as them, and its window cools off instead of locking forever.
    """
    if not settings.RATELIMIT_ENABLED:
        return None
    scope, refusal = Scope.LOGIN_IP, guard(Scope.LOGIN_IP, ip_bucket(client_ip(request)))
    if refusal is None and username:
        scope, refusal = Scope.LOGIN_USER, guard(Scope.LOGIN_USER, username_bucket(username), count=peek)
    if refusal is not None and refusal.status == 429:
        from console import audit

        detail = {"limit": str(scope), "retry_after": refusal.retry_after}
        audit.record(None, "login_rate_limited", username=username, detail=detail, request=request)
    return refusal


def note_login_failure(username: str) -> None:
    """Count a failed sign-in against the account (the IP was counted before the attempt)."""
    if not settings.RATELIMIT_ENABLED or not username:
        return
    try:
        take(Scope.LOGIN_USER, username_bucket(username))
    except LimiterUnavailable as exc:
        logger.warning("Could not count a failed sign-in: %s", exc.reason)


def note_login_success(username: str) -> None:
    if settings.RATELIMIT_ENABLED and username:
        forget(Scope.LOGIN_USER, username_bucket(username))


# --- Everything else: one middleware classifies by path and method ---------------------------------

API_PREFIX = "/api/"
NEVER_LIMITED = ("/api/system/health/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The page actions that retry, delete or clear many entries at once (queues/views.py,
# queues/keyspace_views.py); single-entry and single-job actions are not bulk.
BULK_VIEWS = frozenset(
    {
        "queue_selected",
        "queue_selection_act",
        "queue_matching",
        "stream_selected",
        "stream_all",
        "archive_restore",
        "archive_restore_all",
        "keys_dedupe_clear",
        "keys_cache_invalidate",
        "keys_rate_limit_reset",
    }
)


def is_export(request: HttpRequest) -> bool:
    """An export view (its URL name says so) or a path whose last segment starts with ``export``."""
    match = request.resolver_match
    last = request.path_info.rstrip("/").rsplit("/", 1)[-1]
    return "export" in ((match.url_name if match else None) or "") or last.startswith("export")


def classify(request: HttpRequest) -> Scope | None:
    path = request.path_info
    if path.startswith(NEVER_LIMITED):
        return None
    if is_export(request):
        return Scope.EXPORT
    if path.startswith(API_PREFIX):
        return Scope.API_READ if request.method in SAFE_METHODS else Scope.API_WRITE
    match = request.resolver_match
    if request.method == "POST" and match is not None and match.url_name in BULK_VIEWS:
        return Scope.BULK
    return None


def _token_user_id(request: HttpRequest) -> int | None:
    """The user of a valid ``Authorization: Token`` header, checked the way DRF checks it."""
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.exceptions import AuthenticationFailed

    words = str(request.META.get("HTTP_AUTHORIZATION", "")).split()
    if len(words) != 2 or words[0].lower() != "token":
        return None
    try:
        user, _ = TokenAuthentication().authenticate_credentials(words[1])
    except AuthenticationFailed:
        return None
    return int(user.pk)


def identity(request: HttpRequest) -> str:
    """Per user (session or API token), else per client IP."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    user_id = _token_user_id(request) if request.path_info.startswith(API_PREFIX) else None
    return f"user:{user_id}" if user_id is not None else f"ip:{ip_bucket(client_ip(request))}"


class RateLimitMiddleware:
    """Limits API reads, API changes, exports and bulk page actions per user (see ``classify``).

    It runs in ``process_view``, after URL resolution (bulk actions are known by URL name) and,
    for pages, after the CSRF check, so a forged POST is refused before it costs a round trip.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if not settings.RATELIMIT_ENABLED:
            return None
        scope = classify(request)
        if scope is None:
            return None
        refusal = guard(scope, identity(request))
        if refusal is None:
            return None
        return refusal.respond(request)
