"""schemathesis against the console's own OpenAPI schema, in-process, as each role.

The WSGI application answers on the session's private Redis filled with the demo world. Cases are
generated from ``GET /api/schema/`` for every operation (free values, and values anchored on real
demo keys, jobs and services so the views do real work). Every answer must conform to the schema,
no answer may be a 5xx, every error must be JSON with a sentence, and a Viewer's mutations must be
refused with 403 while Redis stays byte-for-byte the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import schemathesis
from django.conf import settings
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator import hsi_api
from queues.demo import build_demo_world
from queues.inventory import list_queues
from tests.conftest import make_user
from tests.test_orchestrator import FakeHSI, hsi  # noqa: F401 - fixture: a local HSI service API

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 30
MUTATIONS = {"POST", "PUT", "PATCH", "DELETE"}
ROLES = ("Viewer", "Operator", "Admin")


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """Django's WSGI application, sharing the test's database transaction as Django's test Client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def demo_redis(redis_client: redis.Redis) -> redis.Redis:
    """The app's private Redis, emptied and filled with the demo world."""
    build_demo_world(redis_client)
    return redis_client


@pytest.fixture
def api_schema(wsgi_app: WSGIHandler, admin_user: User, demo_redis: redis.Redis) -> Any:
    return schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, headers=auth(admin_user))


def auth(user: User) -> dict[str, str]:
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


Snapshot = dict[bytes, tuple[bytes | None, bool]]


def snapshot(client: redis.Redis) -> Snapshot:
    """Every key with its DUMP and whether it expires: what "nothing changed" compares.

    The console's own caches are left out (page cache, rate-limit counters: refused requests count).
    """
    own = tuple(
        f"{cache['KEY_PREFIX']}:".encode() for cache in settings.CACHES.values() if "KEY_PREFIX" in cache
    )
    return {
        key: (client.dump(key), client.ttl(key) >= 0)
        for key in client.scan_iter(count=1000)
        if not key.startswith(own)
    }


def changes(before: Snapshot, after: Snapshot) -> dict[bytes, tuple[object, object]]:
    """The keys that differ between two snapshots: added, removed, rewritten, expiry changed. A key
    that had a TTL and is gone has expired meanwhile (the relay's depth sample, a receipt), which no
    request did."""
    expired = {key for key, (_, volatile) in before.items() if volatile and key not in after}
    return {
        key: (before.get(key), after.get(key))
        for key in before.keys() | after.keys()
        if key not in expired and before.get(key) != after.get(key)
    }


def demo_jobs(client: redis.Redis) -> list[str]:
    """Job ids of the demo world, those still in flight (which abort and cancel act on) first."""
    active: dict[str, bool] = {}
    for key in client.scan_iter(match="job:*", count=1000):
        job_id = key.decode().split(":")[1]
        raw = (client.get(key) if client.type(key) == b"string" else None) or b""
        moving = any(f'"{status}"'.encode() in raw for status in ("pending", "queued", "running"))
        active[job_id] = active.get(job_id, False) or moving
    return sorted(active, key=lambda job_id: (not active[job_id], job_id))[:8]


def anchors(client: redis.Redis) -> dict[str, list[str]]:
    """Real path values of the demo world per path parameter, so generated cases hit real data."""
    queues = list_queues(client)
    dlqs = [info.key for info in queues if info.kind == "dlq"]
    streams = [info.key for info in queues if info.type == "stream"]
    job_ids = demo_jobs(client)
    assert dlqs and streams and job_ids, "the demo world should hold DLQs, streams and jobs"
    return {
        "key": dlqs[:4] + streams[:2] + [queues[0].key],
        "job_id": job_ids,
        "name": [*FakeHSI.services, "no-such-service"],
        "action": list(hsi_api.ACTIONS),
    }


# Bodies that do real work, beside the generated ones (which the views mostly refuse with 400).
BODIES: dict[str, list[Any]] = {
    "POST /api/dlq/{key}/retry/": [{"all": True}, {"all": True, "filter": {"camera": "porch"}}],
    "POST /api/dlq/{key}/delete/": [{"all": True}, {"all": True, "filter": {"q": "timeout"}}],
    "POST /api/archive/restore/": [{"ids": [1, 2, 3]}, {"ids": [4, 5], "to_source": True}],
    "POST /api/archive/restore-all/": [
        {"key": "dlq:detection_queue"},
        {"key": "dlq:analysis_queue", "to_source": True, "after": 2},
    ],
    "POST /api/jobs/{job_id}/cancel/": [{}],
    "POST /api/jobs/{job_id}/abort/": [{"reason": "schemathesis"}],
}


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def strategy(operation: Any, values: dict[str, list[str]]) -> st.SearchStrategy[Case]:
    """Free cases, plus cases with real path values (demo keys, jobs, services) and working bodies."""
    names = [p.name for p in operation.path_parameters]
    paths = st.fixed_dictionaries({name: st.sampled_from(values.get(name, ["x"])) for name in names})
    anchored = paths.flatmap(lambda chosen: operation.as_strategy(path_parameters=chosen or None))
    bodies = BODIES.get(operation.label, [])
    working = st.tuples(paths, st.sampled_from(bodies or [None])).flatmap(
        lambda pair: operation.as_strategy(
            path_parameters=pair[0] or None, body=pair[1], media_type="application/json"
        )
    )
    return st.one_of(operation.as_strategy(), anchored, *([working] if bodies else []))


def explore(operation: Any, values: dict[str, list[str]], check: Callable[[Case], None]) -> None:
    """Run ``check`` on generated cases of one operation (bounded, reproducible, no shrinking)."""

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy(operation, values))
    def run(case: Case) -> None:
        check(case)

    run()


def error_sentence(response: Any) -> str | None:
    """Why an error answer is not JSON ``{"error": code, "detail": sentence}``; None when it is."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} is not JSON: {response.text[:200]!r}"
    if not (isinstance(body, dict) and body.get("error") and isinstance(body.get("detail"), str)):
        return f"{response.status_code} body has no error code and detail: {body!r:.200}"
    if len(body["detail"].split()) < 3:
        return f"{response.status_code} detail is not a sentence: {body['detail']!r:.200}"
    return None


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_conforms_and_never_fails_for_role(
    role: str,
    api_schema: Any,
    demo_redis: redis.Redis,
    hsi: type[FakeHSI],  # noqa: F811 - fixture
) -> None:
    headers = auth(make_user(f"schema-{role.lower()}", role))
    values = anchors(demo_redis)
    problems: list[str] = []
    seen: dict[str, set[int]] = {}

    def check(case: Case) -> None:
        response = case.call(headers=headers)
        seen.setdefault(case.operation.label, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as failure:
            problems.append(f"{case.operation.label}: {failure}")
        if response.status_code >= 400 and (why := error_sentence(response)):
            problems.append(f"{case.operation.label} {case.formatted_path}: {why}")

    for operation in operations(api_schema):
        explore(operation, values, check)

    assert not problems, "\n".join(problems[:10])
    assert len(seen) == len(operations(api_schema))
    never_ok = sorted(label for label, statuses in seen.items() if 200 not in statuses)
    assert not never_ok or role == "Viewer", f"no case of {never_ok} did any work: {seen}"
    if role == "Viewer":
        assert all(seen[op.label] == {403} for op in operations(api_schema) if op.method.upper() in MUTATIONS)


def test_schema_is_valid_without_warnings(tmp_path: Path) -> None:
    """drf-spectacular's own validation: e.g. two serializers sharing a component name fail here."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/jobs/{job_id}/cancel/" in (tmp_path / "schema.yaml").read_text()


def test_schema_covers_every_api_view(api_schema: Any) -> None:
    labels = {operation.label for operation in operations(api_schema)}
    expected = {
        "GET /api/queues/",
        "GET /api/queues/{key}/items/",
        "POST /api/dlq/{key}/retry/",
        "POST /api/dlq/{key}/delete/",
        "GET /api/archive/",
        "POST /api/archive/restore/",
        "GET /api/overview/",
        "GET /api/redis/overview",
        "GET /api/jobs/",
        "GET /api/jobs/{job_id}/",
        "POST /api/jobs/{job_id}/abort/",
        "POST /api/jobs/{job_id}/cancel/",
        "POST /api/jobs/{job_id}/delete/",
        "POST /api/jobs/archive/restore/",
        "GET /api/orchestrator/",
        "POST /api/orchestrator/{name}/{action}/",
    }
    assert expected <= labels, sorted(expected - labels)
    for operation in operations(api_schema):
        if operation.method.upper() in MUTATIONS and operation.path != "/api/orchestrator/{name}/{action}/":
            assert operation.body, f"{operation.label} documents no request body"


def test_viewer_is_refused_every_mutation_and_redis_is_unchanged(
    api_schema: Any,
    demo_redis: redis.Redis,
    viewer: User,
    hsi: type[FakeHSI],  # noqa: F811 - fixture
) -> None:
    headers = auth(viewer)
    values = anchors(demo_redis)
    before = snapshot(demo_redis)
    answers: dict[str, list[int]] = {}

    def check(case: Case) -> None:
        response = case.call(headers=headers)
        answers.setdefault(case.operation.label, []).append(response.status_code)
        assert response.status_code == 403, f"{case.formatted_path} {case.body!r}: {response.status_code}"
        body = response.json()
        assert body["error"] == "permission_denied" and "permission" in body["detail"], body
        assert not changes(before, snapshot(demo_redis)), f"{case.formatted_path} changed Redis"

    mutations = [op for op in operations(api_schema) if op.method.upper() in MUTATIONS]
    assert len(mutations) >= 5
    for operation in mutations:
        explore(operation, values, check)

    assert set(answers) == {op.label for op in mutations}
    assert not changes(before, snapshot(demo_redis))
    assert hsi.calls == [], "a Viewer's service action reached HSI"


def test_anonymous_requests_get_a_json_401(api_schema: Any) -> None:
    refused: list[int] = []

    def check(case: Case) -> None:
        response = case.call()
        refused.append(response.status_code)
        assert response.status_code == 401, f"{case.formatted_path}: {response.status_code}"
        assert error_sentence(response) is None, response.text[:200]

    for operation in operations(api_schema):
        explore(operation, {}, check)
    assert len(refused) >= len(operations(api_schema))
