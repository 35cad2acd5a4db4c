"""Answers for requests the console refuses before any view runs: a failed CSRF check, a body too big.

Django's own answers to these are a bare "400 Bad Request" or a page about CSRF internals; the
console answers with one sentence that says what happened and what to do, as HTML for pages and
as ``{"error": ..., "detail": ...}`` for the API and for the pages' scripts (``wants_json``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from drf_spectacular import authentication as authentication_schemes
from rest_framework import authentication, exceptions
from rest_framework.request import Request

CSRF_SENTENCE = "This form has expired or was sent from another site. Reload the page and try again."
CSRF_API_SENTENCE = (
    "This request carries the console's session cookie but no valid CSRF token: send the token from "
    "the csrftoken form field in the X-CSRFToken header, or authenticate with an API token instead."
)


def wants_json(request: HttpRequest) -> bool:
    """API clients and scripts that ask for JSON (bulk.js's steps) get JSON, browsers a page; the
    same split RedisUnavailableMiddleware, the rate limits and the bulk views make."""
    accepted = request.get_preferred_type(["text/html", "application/json"])
    return request.path.startswith("/api/") or accepted == "application/json"


def refuse(request: HttpRequest, status: int, error: str, title: str, detail: str) -> HttpResponse:
    """One refusal in the console's style: a sentence, never a stack trace or framework jargon."""
    if wants_json(request):
        return JsonResponse({"error": error, "detail": detail}, status=status)
    context = {"title": title, "detail": detail}
    return TemplateResponse(request, "request_refused.html", context, status=status).render()


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the reason Django gives is for developers, so it is not shown."""
    detail = CSRF_API_SENTENCE if request.path.startswith("/api/") else CSRF_SENTENCE
    return refuse(request, 403, "csrf_failed", "Form expired", detail)


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session auth, whose CSRF refusal says what to do instead of "CSRF Failed: <reason>"."""

    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as denied:
            raise exceptions.PermissionDenied(CSRF_API_SENTENCE, code="csrf_failed") from denied


class SessionScheme(authentication_schemes.SessionScheme):
    """The OpenAPI schema describes the console's session auth as DRF's (cookie auth)."""

    target_class = "console.views.SessionAuthentication"
