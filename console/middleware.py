"""Console-wide middleware.

RedisUnavailableMiddleware turns a Redis failure inside any page into a 503 page with the sentence
that says what to fix (a command refused because its key holds another type: a 409, Redis is
fine). ContentSecurityPolicyMiddleware sends the console's CSP on every response (Django 5.2 has
none built in). RequestLimitsMiddleware answers an oversized body with a sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

from console.checks import PLAIN_HTTP_WARNING
from console.redis import explain, wrong_type
from console.views import refuse, wants_json

logger = logging.getLogger("console.redis")
security_logger = logging.getLogger("console.security")

# Nothing inline: every script and style sheet is a file under static/ (Django's admin included),
# so neither script-src nor style-src needs 'unsafe-inline' and injected markup cannot run or restyle.
# img-src allows data: for the admin's CSS icons; connect-src names the live socket's origin.
CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)


class RedisUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, redis.RedisError):
            return None
        from console.admin import console_site

        if mismatch := wrong_type(exception):
            logger.warning("Page %s refused: %s", request.path, mismatch)
            if wants_json(request):
                return JsonResponse({"error": "wrong_type", "detail": mismatch}, status=409)
            facts = {"detail": mismatch, "title": "Key of another type"}
            context = {**console_site.each_context(request), **facts}
            return TemplateResponse(request, "console/wrong_type.html", context, status=409).render()
        message = explain(exception, settings.HSI_REDIS)
        logger.warning("Page %s failed: %s", request.path, message)
        if wants_json(request):
            return JsonResponse({"error": "redis_unavailable", "detail": message}, status=503)
        context = {**console_site.each_context(request), "redis_error": message, "title": "Redis unavailable"}
        response = TemplateResponse(request, "console/redis_unavailable.html", context, status=503)
        return response.render()


def content_security_policy(request: HttpRequest) -> str:
    """The console's policy; connect-src names the socket URL live.js opens (same host, ws or wss)."""
    connect = "connect-src 'self'"
    try:
        host = request.get_host()
    except DisallowedHost:
        host = ""
    if host:
        connect += f" {'wss' if request.is_secure() else 'ws'}://{host}"
    return "; ".join((*CSP_DIRECTIVES, connect))


class ContentSecurityPolicyMiddleware:
    """Content-Security-Policy on every response, static files and error pages included.

    Listed first so that it wraps the HTTPS redirect, WhiteNoise and every error page. It also
    says once, when the server loads it, that DJANGO_HTTPS=false sends secrets in clear text.
    """

    warned = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        if not settings.DEBUG and not settings.HTTPS and not ContentSecurityPolicyMiddleware.warned:
            ContentSecurityPolicyMiddleware.warned = True
            security_logger.warning("%s", PLAIN_HTTP_WARNING)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = content_security_policy(request)
        return response


class RequestLimitsMiddleware:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE or with too many fields gets a sentence, not a bare 400.

    Django raises RequestDataTooBig / TooManyFieldsSent only when a view (or the CSRF check) first
    reads the body, and answers with a generic 400; DRF reads JSON bodies through a stream that is
    not checked at all. Checking here, before anything reads the body, gives every page and API
    endpoint the same limit and the same kind of answer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return too_big(request, length, limit)
        if request.method != "POST":
            return None
        try:
            request.POST  # noqa: B018 - parses (and caches) the form, raising on the limits
        except RequestDataTooBig:
            return too_big(request, length, limit or 0)
        except TooManyFieldsSent:
            fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
            return refuse(
                request,
                400,
                "too_many_fields",
                "Too many fields",
                f"This form sent more than {fields:,} fields, the most the console accepts in one "
                "request. Select fewer entries (at most 1,000 at a time), or act on all matching "
                "entries instead of a selection.",
            )
        return None


def too_big(request: HttpRequest, length: int, limit: int) -> HttpResponse:
    size = f"{length:,} bytes" if length else "more than the limit"
    return refuse(
        request,
        413,
        "request_too_large",
        "Request too large",
        f"This request is {size}; the console accepts at most {limit:,} bytes in one request "
        "(DJANGO_MAX_REQUEST_BYTES). Select fewer entries, or shorten the payload.",
    )
