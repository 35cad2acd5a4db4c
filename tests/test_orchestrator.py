"""The orchestrator page and API: HSI's persisted service state on a real private Redis, and service
actions against a small local HTTP server that speaks HSI's ``/api/system/services`` API."""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from console.models import AuditEntry
from orchestrator import hsi_api, state
from queues import keys
from queues.codec import encode_text
from tests.conftest import logged_in

API_KEY = "s3cr3t-hsi-api-key-8f2a91"
PAGE = "/orchestrator/"


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).isoformat()


def put(client: redis.Redis, name: str, value: Any) -> None:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    client.set(keys.orchestrator_state_key(name), raw)


def healthy(**changes: Any) -> dict[str, Any]:
    base = {
        "enabled": True,
        "failure_count": 0,
        "last_failure_at": None,
        "last_restart_at": iso(timedelta(hours=5)),
        "restart_count": 1,
        "status": "running",
    }
    return base | changes


def row(content: str, name: str) -> str:
    start = content.index(f'data-service="{name}"')
    return html.unescape(content[start : content.index("</tr>", start)])


# --- A fake HSI --------------------------------------------------------------------------------------


class FakeHSI(BaseHTTPRequestHandler):
    """``POST /api/system/services/{name}/{action}`` as HSI answers it (contract §6)."""

    services: ClassVar[dict[str, dict[str, Any]]] = {}
    calls: ClassVar[list[tuple[str, str | None]]] = []
    running = True  # False: the orchestrator is not running → 503
    delay = 0.0

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def reply(self, status: int, body: dict[str, Any] | bytes) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        FakeHSI.calls.append((self.path, self.headers.get("X-API-Key")))
        if FakeHSI.delay:
            time.sleep(FakeHSI.delay)
        if self.headers.get("X-API-Key") != API_KEY:
            self.reply(401, {"detail": "Invalid or missing API key"})
            return
        if "deep-json" in self.path:  # a proxy's or a broken HSI's answer
            self.reply(502, b"[" * 100_000 + b"]" * 100_000)
            return
        if "redirect-me" in self.path:
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        parts = self.path.strip("/").split("/")
        if len(parts) != 5 or parts[:3] != ["api", "system", "services"]:
            self.reply(404, {"detail": "Not Found"})
            return
        name, action = parts[3], parts[4]
        if not FakeHSI.running:
            self.reply(503, {"detail": "Container orchestrator not running"})
            return
        service = FakeHSI.services.get(name)
        if service is None:
            self.reply(404, {"detail": f"Service '{name}' not found"})
            return
        if action == "restart" and service["status"] == "disabled":
            self.reply(400, {"detail": f"Service '{name}' is disabled. Enable it first."})
            return
        if action == "start" and service["status"] in ("running", "disabled"):
            self.reply(400, {"detail": f"Service '{name}' is already {service['status']}"})
            return
        service["status"] = {"disable": "disabled", "enable": "stopped"}.get(action, "starting")
        body = {"success": True, "message": f"Service '{name}' {action} initiated", "service": service}
        self.reply(200, body)


@pytest.fixture
def hsi(settings: Any) -> Iterator[type[FakeHSI]]:
    FakeHSI.services = {
        "ai-llm": {"name": "ai-llm", "category": "ai", "status": "running", "enabled": True},
        "grafana": {"name": "grafana", "category": "monitoring", "status": "disabled", "enabled": False},
    }
    FakeHSI.calls = []
    FakeHSI.running, FakeHSI.delay = True, 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHSI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.HSI_API_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.HSI_API_KEY = API_KEY
    settings.HSI_API_TIMEOUT = 2
    yield FakeHSI
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_an_answer_nested_too_deeply_to_read_is_shown_as_text(hsi: type[FakeHSI]) -> None:
    answer = hsi_api.call("deep-json", "restart")
    assert (answer.ok, answer.status, answer.message) == (False, 502, "[" * 300)


@pytest.fixture
def no_api(settings: Any) -> None:
    settings.HSI_API_URL = ""
    settings.HSI_API_KEY = ""


@pytest.fixture
def operator_client(operator: User) -> Client:
    return logged_in(operator)


# --- Reading the state -------------------------------------------------------------------------------


def test_services_grouped_by_category_with_badges(
    viewer_client: Client, redis_client: redis.Redis, no_api: None
):
    put(redis_client, "postgres", healthy())
    put(redis_client, "ai-detector", healthy(status="unhealthy", failure_count=1))
    # JSON-quoted whole value (RedisClient.set) and zstd-compressed, as HSI may store them.
    put(redis_client, "prometheus", json.dumps(json.dumps(healthy(status="stopped"))).encode())
    put(redis_client, "jaeger", encode_text(json.dumps(healthy(status="not_found", pad="x" * 2000)).encode()))
    put(redis_client, "custom-svc", healthy(status="starting"))  # unknown name, found by SCAN
    response = viewer_client.get(PAGE)
    assert response.status_code == 200
    content = response.content.decode()
    assert 'data-testid="category-infrastructure"' in content and 'data-testid="category-ai"' in content
    assert content.index('data-testid="category-ai"') < content.index('data-testid="category-monitoring"')
    assert "orchestrator-running" in row(content, "postgres")
    assert "orchestrator-unhealthy" in row(content, "ai-detector")
    assert "orchestrator-stopped" in row(content, "prometheus")
    assert "orchestrator-not_found" in row(content, "jaeger") and "zstd" in row(content, "jaeger")
    assert "orchestrator-starting" in row(content, "custom-svc")
    assert content.index('data-testid="category-other"') > content.index('data-testid="category-monitoring"')
    assert "no state key" in row(content, "redis")
    assert "5\xa0hours ago" in row(content, "postgres")
    assert "persisted state, not commands" in content and "changes nothing in the running backend" in content


def test_disabled_and_flapping_stand_out(viewer_client: Client, redis_client: redis.Redis, no_api: None):
    put(redis_client, "grafana", healthy(status="disabled", enabled=False, failure_count=6))
    put(redis_client, "ai-clip", healthy(restart_count=4, last_restart_at=iso(timedelta(minutes=3))))
    put(redis_client, "ai-llm", healthy(restart_count=9, last_restart_at=iso(timedelta(hours=2))))
    put(redis_client, "redis", healthy(failure_count=3))
    content = viewer_client.get(PAGE).content.decode()
    assert 'class="orchestrator-disabled"' in row(content, "grafana") and "flag-disabled" in row(
        content, "grafana"
    )
    assert 'class="orchestrator-flapping"' in row(content, "ai-clip") and "flag-flapping" in row(
        content, "ai-clip"
    )
    assert "flag-flapping" in row(content, "redis")
    assert "flag-" not in row(content, "ai-llm")  # many restarts, but long ago


BAD_VALUES: list[tuple[bytes, str]] = [
    (b"not json at all", "not a JSON object"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b"\xff\xfe\x00binary", "not a JSON object"),
    (b"", "not a JSON object"),
    (
        json.dumps({"enabled": "yes", "status": "exploded"}).encode(),
        "status 'exploded' is not one HSI writes",
    ),
    (json.dumps(healthy(failure_count="many")).encode(), "failure_count is str, not an int"),
    (json.dumps(healthy(restart_count=None)).encode(), "restart_count is missing"),
    (
        json.dumps(healthy(last_restart_at="yesterday")).encode(),
        "last_restart_at 'yesterday' is not an ISO time",
    ),
    (json.dumps(healthy(last_failure_at=12345)).encode(), "last_failure_at is int, not an ISO time"),
    (json.dumps({"status": "running"}).encode(), "enabled is missing"),
    (json.dumps(healthy(enabled="true")).encode(), "enabled 'true' is not true/false"),
    (json.dumps(healthy(failure_count=-2)).encode(), "failure_count is negative"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_VALUES)
def test_bad_values_are_shown_with_a_reason(
    viewer_client: Client, redis_client: redis.Redis, no_api: None, raw: bytes, reason: str
):
    redis_client.set(keys.orchestrator_state_key("ai-florence"), raw)
    response = viewer_client.get(PAGE)
    assert response.status_code == 200
    assert reason in row(response.content.decode(), "ai-florence")
    api = viewer_client.get("/api/orchestrator/")
    assert api.status_code == 200
    (florence,) = [s for s in api.json()["services"] if s["name"] == "ai-florence"]
    assert any(reason in problem for problem in florence["problems"])


def test_numeric_string_counts_are_read_with_a_note():
    service = state.parse("redis", json.dumps(healthy(failure_count="4")).encode())
    assert service.failure_count == 4 and "read as a number" in service.problems[0]


def test_all_services_in_one_pipelined_round_trip(redis_client: redis.Redis):
    for i in range(30):
        put(redis_client, f"extra-{i}", healthy())
    redis_client.set("job:abc", b"{}")  # another family: not a service
    redis_client.config_resetstat()
    inventory = state.read_services(redis_client)
    names = {s.name for s in inventory.services}
    assert {f"extra-{i}" for i in range(30)} <= names and "postgres" in names and inventory.complete
    stats = redis_client.info("commandstats")
    # One GET per service (pipelined) plus the console cache's lookup of the discovered names.
    assert stats["cmdstat_get"]["calls"] == len(state.SERVICES) + 30 + 1
    assert "cmdstat_keys" not in stats and stats["cmdstat_scan"]["calls"] >= 1
    redis_client.config_resetstat()
    state.read_services(redis_client)  # discovered names are cached: no SCAN this time
    assert "cmdstat_scan" not in redis_client.info("commandstats")


def test_scan_is_bounded(redis_client: redis.Redis, settings: Any):
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "SCAN_LIMIT": 10, "SCAN_COUNT": 10}
    pipe = redis_client.pipeline()
    for i in range(3000):
        pipe.set(f"other:{i}", b"1")
    pipe.execute()
    put(redis_client, "zz-hidden", healthy())
    redis_client.config_resetstat()
    inventory = state.read_services(redis_client)
    assert redis_client.info("commandstats")["cmdstat_scan"]["calls"] == 1
    assert not inventory.complete


def test_api_lists_services(viewer_client: Client, redis_client: redis.Redis):
    restarted = iso(timedelta(minutes=1))
    put(redis_client, "ai-llm", healthy(status="starting", restart_count=4, last_restart_at=restarted))
    response = viewer_client.get("/api/orchestrator/")
    assert response.status_code == 200
    services = {s["name"]: s for s in response.json()["services"]}
    llm = services["ai-llm"]
    assert {k: llm[k] for k in ("category", "status", "enabled", "failure_count", "restart_count")} == {
        "category": "ai",
        "status": "starting",
        "enabled": True,
        "failure_count": 0,
        "restart_count": 4,
    }
    assert datetime.fromisoformat(llm["last_restart_at"]) == datetime.fromisoformat(restarted)
    assert llm["last_failure_at"] is None and llm["flapping"] is True
    assert services["postgres"]["status"] is None and services["postgres"]["exists"] is False


def test_redis_down_is_a_sentence_not_a_stack_trace(viewer_client: Client, point_at: Any, no_api: None):
    point_at(None, url="redis://127.0.0.1:1/0")
    response = viewer_client.get(PAGE)
    assert response.status_code == 503
    assert b"Connection refused" in response.content and b"Traceback" not in response.content


# --- Actions -----------------------------------------------------------------------------------------


def test_without_api_url_the_page_explains_and_offers_no_buttons(
    operator_client: Client, redis_client: redis.Redis, no_api: None
):
    content = operator_client.get(PAGE).content.decode()
    assert 'data-testid="api-help"' in content and "HSI_API_URL" in content
    assert "action-restart" not in content
    response = operator_client.post("/orchestrator/ai-llm/restart/")
    assert response.status_code == 503 and b"HSI_API_URL is not set" in response.content
    api = operator_client.post("/api/orchestrator/ai-llm/restart/")
    assert api.status_code == 503 and api.json()["error"] == "not_configured"
    assert not AuditEntry.objects.exists()


def test_viewers_see_no_buttons_and_cannot_act(
    viewer_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI]
):
    content = viewer_client.get(PAGE).content.decode()
    assert "action-restart" not in content and 'data-testid="no-manage"' in content
    assert viewer_client.get("/orchestrator/ai-llm/restart/").status_code == 403
    assert viewer_client.post("/orchestrator/ai-llm/restart/").status_code == 403
    api = viewer_client.post("/api/orchestrator/ai-llm/restart/")
    assert api.status_code == 403 and "manage_services" in api.json()["detail"]
    assert hsi.calls == [] and not AuditEntry.objects.exists()


def test_operator_confirms_then_restarts(
    operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI]
):
    put(redis_client, "ai-llm", healthy())
    content = operator_client.get(PAGE).content.decode()
    assert 'href="/orchestrator/ai-llm/restart/"' in content
    confirm = operator_client.get("/orchestrator/ai-llm/restart/")
    assert confirm.status_code == 200 and b"Yes, restart ai-llm" in confirm.content
    assert b"csrfmiddlewaretoken" in confirm.content and hsi.calls == []  # nothing happens on GET
    response = operator_client.post("/orchestrator/ai-llm/restart/")
    assert response.status_code == 200
    assert b"Service &#x27;ai-llm&#x27; restart initiated" in response.content
    assert hsi.calls == [("/api/system/services/ai-llm/restart", API_KEY)]
    entry = AuditEntry.objects.get()
    assert entry.action == "service_restart" and entry.key == "ai-llm" and entry.username == "otto"
    assert entry.detail["status"] == 200 and entry.detail["ok"] is True


def test_csrf_is_enforced(operator: User, redis_client: redis.Redis, hsi: type[FakeHSI]):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post("/orchestrator/ai-llm/restart/").status_code == 403
    assert hsi.calls == []


def test_hsi_400_is_shown(operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI]):
    response = operator_client.post("/orchestrator/grafana/restart/")
    assert response.status_code == 400
    assert b"is disabled. Enable it first." in response.content
    assert b'data-testid="answer-status">400<' in response.content
    assert AuditEntry.objects.get().detail["status"] == 400
    api = operator_client.post("/api/orchestrator/ai-llm/start/")
    assert api.status_code == 400 and "already running" in api.json()["message"]
    assert api.json()["ok"] is False and api.json()["audit_id"] == AuditEntry.objects.latest("pk").pk


def test_hsi_503_when_orchestrator_not_running(
    operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI]
):
    hsi.running = False
    response = operator_client.post("/orchestrator/ai-llm/enable/")
    assert response.status_code == 503 and b"Container orchestrator not running" in response.content
    assert AuditEntry.objects.get().detail == {
        "service": "ai-llm",
        "action": "enable",
        "ok": False,
        "status": 503,
        "message": "Container orchestrator not running",
        "reached": True,
    }


def test_wrong_api_key_says_so(
    operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI], settings: Any
):
    settings.HSI_API_KEY = "wrong-key"
    response = operator_client.post("/api/orchestrator/ai-llm/restart/")
    assert response.status_code == 401 and "check HSI_API_KEY" in response.json()["message"]
    assert "wrong-key" not in response.content.decode()


def test_api_action_succeeds_and_is_audited(
    operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI]
):
    response = operator_client.post("/api/orchestrator/ai-llm/disable/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["status"] == 200 and body["service"]["status"] == "disabled"
    assert AuditEntry.objects.get(pk=body["audit_id"]).action == "service_disable"


def test_unknown_action_and_bad_name(operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI]):
    assert operator_client.post("/orchestrator/ai-llm/explode/").status_code == 404
    assert operator_client.post("/orchestrator/..%2Fetc/restart/").status_code == 404
    api = operator_client.post("/api/orchestrator/ai-llm/explode/")
    assert api.status_code == 404 and api.json()["error"] == "unknown_action"
    assert hsi.calls == []


def test_unreachable_hsi_is_a_503_sentence(operator_client: Client, redis_client: redis.Redis, settings: Any):
    settings.HSI_API_URL, settings.HSI_API_KEY = "http://127.0.0.1:1", API_KEY
    response = operator_client.post("/orchestrator/ai-llm/restart/")
    assert response.status_code == 503
    assert (
        b"Could not reach HSI at http://127.0.0.1:1" in response.content
        and b"Traceback" not in response.content
    )
    assert AuditEntry.objects.get().detail["reached"] is False


def test_timeout_is_a_503_sentence(
    operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI], settings: Any
):
    settings.HSI_API_TIMEOUT = 0.3
    hsi.delay = 1.0
    response = operator_client.post("/api/orchestrator/ai-llm/restart/")
    assert response.status_code == 503 and "did not answer within 0.3 s" in response.json()["message"]


def test_secret_never_appears(
    operator_client: Client, viewer_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI], caplog: Any
):
    put(redis_client, "ai-llm", healthy())
    pages = [
        operator_client.get(PAGE),
        viewer_client.get(PAGE),
        operator_client.get("/orchestrator/ai-llm/restart/"),
        operator_client.post("/orchestrator/ai-llm/restart/"),
        operator_client.post("/orchestrator/grafana/restart/"),
        operator_client.get("/api/orchestrator/"),
        operator_client.post("/api/orchestrator/ai-llm/restart/"),
        operator_client.get("/api/schema/"),
    ]
    for response in pages:
        assert API_KEY.encode() not in response.content
    assert all(API_KEY not in json.dumps(entry.detail) for entry in AuditEntry.objects.all())
    assert API_KEY not in caplog.text
    assert len(hsi.calls) == 3 and all(key == API_KEY for _, key in hsi.calls)


def test_schema_lists_orchestrator_endpoints(viewer_client: Client, redis_client: redis.Redis):
    paths = json.loads(viewer_client.get("/api/schema/").content)["paths"]
    assert "/api/orchestrator/" in paths
    assert set(paths["/api/orchestrator/{name}/{action}/"]["post"]["responses"]) >= {
        "200",
        "400",
        "403",
        "503",
    }


def test_nav_link_and_live_module(viewer_client: Client, redis_client: redis.Redis, no_api: None):
    content = viewer_client.get("/").content.decode()
    assert 'href="/orchestrator/"' in content
    page = viewer_client.get(PAGE).content.decode()
    assert 'type="module" src="/static/orchestrator/js/orchestrator.js"' in page
    assert "<script>" not in page


def test_redirects_are_not_followed(operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI]):
    response = operator_client.post("/api/orchestrator/redirect-me/restart/")
    assert response.status_code == 502 and response.json()["status"] == 307
    assert len(hsi.calls) == 1


def test_credentials_in_the_url_are_masked(
    operator_client: Client, redis_client: redis.Redis, hsi: type[FakeHSI], settings: Any
):
    settings.HSI_API_URL = settings.HSI_API_URL.replace("http://", "http://bob:hunter2@")
    confirm = operator_client.get("/orchestrator/ai-llm/restart/")
    assert b"http://***@127.0.0.1:" in confirm.content and b"hunter2" not in confirm.content


def test_a_url_without_scheme_is_explained(operator_client: Client, redis_client: redis.Redis, settings: Any):
    settings.HSI_API_URL = "backend:8000"
    content = operator_client.get(PAGE).content.decode()
    assert 'data-testid="api-url-bad"' in content and "action-restart" not in content
