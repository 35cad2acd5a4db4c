"""HSI's service API: ``POST {HSI_API_URL}/api/system/services/{name}/{action}`` (contract §6).

The only way to act on a service: the Redis keys are persisted state, not commands. Uses urllib
with an explicit timeout; the API key goes in ``X-API-Key`` and is never logged, returned or shown.
Every outcome (success, HSI's 400/503, a network error) comes back as an ``Answer`` with a sentence.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings

ACTIONS = ("restart", "start", "enable", "disable")
API_KEY_HEADER = "X-API-Key"
MAX_BODY = 64 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What HSI (or the network) said. ``status`` is HSI's HTTP status, or 503 when unreachable."""

    ok: bool
    status: int
    message: str
    service: dict[str, Any] | None = None
    reached: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "message": self.message, "service": self.service}


def api_url() -> str:
    return str(getattr(settings, "HSI_API_URL", "") or "").rstrip("/")


def shown_url() -> str:
    """``HSI_API_URL`` for pages and logs, with any user:password in it masked."""
    parts = urlsplit(api_url())
    if parts.password is None and parts.username is None:
        return api_url()
    host = parts.hostname or ""
    netloc = f"***@{host}:{parts.port}" if parts.port else f"***@{host}"
    return parts._replace(netloc=netloc).geturl()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as is: the API key is never sent on to another address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def configured() -> bool:
    """True when ``HSI_API_URL`` is an http(s) URL; the key is optional (HSI checks it only when on)."""
    return urlsplit(api_url()).scheme in ("http", "https")


def endpoint(name: str, action: str) -> str:
    return f"{api_url()}/api/system/services/{quote(name, safe='')}/{action}"


def _message(body: bytes, status: int) -> tuple[str, dict[str, Any] | None]:
    """HSI's ``message`` (or FastAPI's ``detail``) and ``service`` from a response body."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        text = body.decode("utf-8", "replace").strip()
        return (text[:300] or f"HSI answered HTTP {status} with an empty body."), None
    if not isinstance(data, dict):
        return f"HSI answered HTTP {status} with unexpected JSON.", None
    message = data.get("message") or data.get("detail") or ""
    if not isinstance(message, str):
        message = json.dumps(message)[:300]
    service = data.get("service") if isinstance(data.get("service"), dict) else None
    return (message or f"HSI answered HTTP {status}."), service


def call(name: str, action: str) -> Answer:
    """POST the action to HSI; never raises, never includes the API key in what it returns."""
    if action not in ACTIONS:
        sentence = f"{action!r} is not an action HSI offers ({', '.join(ACTIONS)})."
        return Answer(False, 400, sentence, reached=False)
    if not configured():
        return Answer(False, 503, "HSI_API_URL is not set to an http(s) URL.", reached=False)
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if getattr(settings, "HSI_API_KEY", ""):
        headers[API_KEY_HEADER] = settings.HSI_API_KEY
    url = endpoint(name, action)
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")  # noqa: S310 - http(s) only
    timeout = float(getattr(settings, "HSI_API_TIMEOUT", 5))
    try:
        with _opener.open(request, timeout=timeout) as response:
            body, status = response.read(MAX_BODY), response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(MAX_BODY), exc.code
        exc.close()
    except TimeoutError:
        return _unreachable(f"HSI did not answer within {timeout:g} s ({shown_url()}).")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return _unreachable(f"HSI did not answer within {timeout:g} s ({shown_url()}).")
        return _unreachable(f"Could not reach HSI at {shown_url()}: {reason}.")
    except (OSError, ValueError) as exc:
        return _unreachable(f"Could not reach HSI at {shown_url()}: {exc}.")
    message, service = _message(body, status)
    if status == 401:
        message = f"HSI refused the API key (401): check HSI_API_KEY. {message}"
    log.info("HSI service action %s %s answered %s", action, name, status)
    return Answer(200 <= status < 300, status, message, service)


def _unreachable(sentence: str) -> Answer:
    log.warning("HSI service API unreachable: %s", sentence)
    return Answer(False, 503, sentence, reached=False)
