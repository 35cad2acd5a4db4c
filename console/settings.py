"""HSI Console settings: every value comes from the environment (or a ``.env`` file).

See README.md "Configuration" for the table of variables.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from console.envvars import env_bool, env_int, env_log_level, env_seconds
from console.redis import RedisConfig

BASE_DIR = Path(__file__).resolve().parent.parent

_env_file = os.environ.get("DJANGO_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file:
    load_dotenv(_env_file, override=False)
env = os.environ


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env.get(name, default).split(",") if item.strip()]


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto=https`` (or ``HTTP_X_FORWARDED_PROTO=https``) → Django's tuple; "" → None.

    Only set it when a proxy you run always sets (or strips) that header: otherwise any client
    could claim HTTPS. A malformed value stops the start, since a silently ignored one would make
    every request look insecure and redirect forever.
    """
    if not value.strip():
        return None
    header, sep, expected = (part.strip() for part in value.partition("="))
    if not sep or not header or not expected or " " in header:
        raise ImproperlyConfigured(
            f"DJANGO_SECURE_PROXY_SSL_HEADER is {value!r}; write it as HEADER=value, "
            "e.g. X-Forwarded-Proto=https (the header your TLS proxy sets and the value that means HTTPS)."
        )
    name = header.upper().replace("-", "_")
    return (name if name.startswith("HTTP_") else f"HTTP_{name}", expected)


DEBUG = env_bool(env, "DJANGO_DEBUG", False)
DEVELOPMENT_SECRET_KEY = "insecure-development-key-only-used-when-DJANGO_DEBUG-is-true"  # noqa: S105
KNOWN_WEAK_SECRET_KEYS = frozenset({DEVELOPMENT_SECRET_KEY, "changeme", "secret", "build-only-not-secret"})

SECRET_KEY = env.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Put a long random value in .env "
            '(python -c "import secrets; print(secrets.token_urlsafe(50))"), '
            "or set DJANGO_DEBUG=true for local development."
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY


def secret_key_weakness(key: str) -> str:
    """Why ``key`` cannot sign production sessions, or "" (Django's own --deploy rules, enforced at start).

    A key someone else knows or can guess lets them forge session cookies and password-reset
    links, so outside DEBUG the console refuses to start with one instead of warning.
    """
    if key in KNOWN_WEAK_SECRET_KEYS or key.startswith("django-insecure-"):
        return "DJANGO_SECRET_KEY is a published example value, so anyone could forge sessions with it."
    if len(key) < 50:
        return f"DJANGO_SECRET_KEY is only {len(key)} characters long; it needs at least 50."
    if len(set(key)) < 5:
        return "DJANGO_SECRET_KEY uses fewer than 5 different characters."
    return ""


if not DEBUG and (weakness := secret_key_weakness(SECRET_KEY)):
    raise ImproperlyConfigured(
        f"{weakness} Put a long random value in .env "
        '(python -c "import secrets; print(secrets.token_urlsafe(50))").'
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "console.apps.ConsoleConfig",
    "queues.apps.QueuesConfig",
    "realtime.apps.RealtimeConfig",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
]

MIDDLEWARE = [
    "console.middleware.ContentSecurityPolicyMiddleware",  # first: wraps even the HTTPS redirect
    "django.middleware.security.SecurityMiddleware",
    "console.middleware.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "console.ratelimit.RateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "console.middleware.RedisUnavailableMiddleware",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database(url: str) -> dj_database_url.DBConfig:
    """``DATABASE_URL`` as Django settings; a refusal names only the scheme (the URL may hold a password)."""
    try:
        return dj_database_url.parse(url, conn_max_age=60)
    except ValueError:
        scheme = url.partition("://")[0] if "://" in url else "no scheme"
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a database URL the console can use ({scheme}): write "
            "sqlite:////absolute/path.sqlite3 or postgres://user:password@host:5432/name."
        ) from None


DATABASES = {"default": database(env.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    # Every account here is staff that can act on the pipeline's jobs: 12 characters, not Django's 8.
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/login/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_MANIFEST_STRICT = False  # a missing manifest entry falls back to the plain name

# --- Redis: one config for HSI's Redis, one (by default the same) for the console's own keys.
HSI_REDIS = RedisConfig.from_env(env)
CONSOLE_REDIS = RedisConfig.from_env(env, url_var="CONSOLE_REDIS_URL")

CACHES = {
    "default": CONSOLE_REDIS.cache_settings(key_prefix="console:cache", ignore_exceptions=True),
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "console.cache"

# The pub/sub layer, not the core RedisChannelLayer: one PUBLISH per group_send, no shared
# `capacity` that silently drops bursts, membership in process memory (survives a Redis restart).
# Its per-channel queues are unbounded, so LiveEventsConsumer drains them at once into its own
# bounded buffer (LIVE_BUFFER). Timeouts and pool cap come from console/redis.py.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [CONSOLE_REDIS.channel_layer_host()], "prefix": "console:layer:"},
    },
}

HSI_CONSOLE = {
    "QUEUE_MAX_SIZE": env_int(env, "QUEUE_MAX_SIZE", 10000),
    "SCAN_LIMIT": env_int(env, "HSI_SCAN_LIMIT", 20000),
    # Live events (realtime/, docs/live-protocol.md): what the relay subscribes to, the console's
    # capped stream, the depth sampler, per-socket buffer, relay lock and session re-check.
    "EVENT_CHANNELS": env_list("HSI_EVENT_CHANNELS", "security_events,system_status,performance_update"),
    "EVENT_PATTERNS": env_list("HSI_EVENT_PATTERNS"),
    "EVENTS_STREAM": env.get("HSI_EVENTS_STREAM") or "console:events",
    "EVENTS_MAXLEN": env_int(env, "HSI_EVENTS_MAXLEN", 10000),
    "DEPTH_SAMPLE_SECONDS": env_seconds(env, "HSI_DEPTH_SAMPLE_SECONDS", 2.0),
    "JOB_SAMPLE_SECONDS": env_seconds(env, "HSI_JOB_SAMPLE_SECONDS", 2.0),
    "BULK_CHUNK_SECONDS": env_seconds(env, "HSI_BULK_CHUNK_SECONDS", 3.0),
    "LIVE_BUFFER": env_int(env, "HSI_LIVE_BUFFER", 500),
    "RELAY_LOCK_SECONDS": env_seconds(env, "HSI_RELAY_LOCK_SECONDS", 5.0),
    "LIVE_RECHECK_SECONDS": env_seconds(env, "HSI_LIVE_RECHECK_SECONDS", 15.0),
    "EVENT_MAX_BYTES": env_int(env, "HSI_EVENT_MAX_BYTES", 65536),
    # Inbound /ws/events/ messages: the client sends only tiny control messages, so a bigger one
    # closes the socket (4009); daphne's own 64 KiB frame limit applies before the consumer sees it.
    "WS_MAX_MESSAGE_BYTES": env_int(env, "HSI_WS_MAX_MESSAGE_BYTES", 4096),
}

# HSI's own API, for service actions (orchestrator/hsi_api.py). The key is never logged or shown.
HSI_API_URL = (env.get("HSI_API_URL") or "").strip().rstrip("/")
HSI_API_KEY = env.get("HSI_API_KEY") or ""
HSI_API_TIMEOUT = env_seconds(env, "HSI_API_TIMEOUT", 5.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "console.views.SessionAuthentication",  # DRF's, with the console's CSRF sentence
    ],
    "DEFAULT_PERMISSION_CLASSES": ["console.permissions.CanViewConsole"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "console.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "console.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HSI Console API",
    "DESCRIPTION": "Queues, dead-letter queues and the archive of HSI's Redis. Token or session auth.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Transport, cookies and headers (docs/security.md). One switch, DJANGO_HTTPS, says whether the
# browser reaches the console over TLS (directly or through a proxy); everything that only makes
# sense over TLS follows it, so a plain-HTTP LAN install is one deliberate choice, not five.
HTTPS = env_bool(env, "DJANGO_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and env_bool(env, "DJANGO_HSTS_PRELOAD", False)
# Health probes (Docker's healthcheck, load balancers) speak plain HTTP to the container itself.
SECURE_REDIRECT_EXEMPT = [r"^api/system/health/"]
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env.get("DJANGO_SECURE_PROXY_SSL_HEADER") or "")
# Preloading is a promise about every subdomain of the parent domain that is hard to take back
# (removal from browsers' lists takes months), which a console cannot make for its organisation:
# it is opt-in (DJANGO_HSTS_PRELOAD=true), and --deploy's reminder about it is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Staff sessions: a working day, and gone when the browser closes. SameSite=Lax (Django's default)
# keeps the cookie off cross-site POSTs and WebSocket handshakes. No script reads the CSRF cookie
# (static/ JS takes the token from the form), so it is HttpOnly too.
SESSION_COOKIE_AGE = env_int(env, "DJANGO_SESSION_SECONDS", 8 * 3600, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "console.views.csrf_failure"

# Request size. The largest legitimate bodies are a selection of 1,000 entry refs (about 100 KiB)
# and an edit-and-retry form with one payload (HSI caps payloads far below this); 2 MiB leaves room
# and still refuses a body that would only cost memory. Bigger requests get a 413 sentence
# (console.middleware.RequestLimitsMiddleware), too many fields a 400 sentence.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int(env, "DJANGO_MAX_REQUEST_BYTES", 2 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_log_level(env)},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# --- Rate limits (console/ratelimit.py, README "Rate limits"). Their own django-redis alias on the
# console's Redis that does NOT ignore exceptions: a Redis outage reaches the limiter, whose
# per-class policy (ratelimit.FAIL_OPEN) lets reads through and refuses sign-in and changes.
from console.ratelimit import parse_networks, rates_from_env  # noqa: E402 - settings read in order

CACHES["ratelimit"] = CONSOLE_REDIS.cache_settings(key_prefix="console:rl", ignore_exceptions=False)
RATELIMIT_ENABLED = env_bool(env, "DJANGO_RATELIMIT_ENABLED", True)
RATELIMIT_RATES = rates_from_env(env)
# Proxies whose X-Forwarded-For is believed (IPs or CIDRs); empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = parse_networks("DJANGO_TRUSTED_PROXIES", env.get("DJANGO_TRUSTED_PROXIES", ""))
