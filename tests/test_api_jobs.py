"""The jobs API on a real private Redis: shapes, filters, abort/cancel, 409s and roles."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from console.models import AuditEntry
from tests.conftest import logged_in
from tests.job_fixtures import iso, put_status, put_tracker, stored

TRACKED = "5b0e6c1a-2f0d-4a8e-9a6e-0c1f7d0b9e21"
STATUSED = "7c1d2e3f-0000-4a8e-9a6e-0c1f7d0b9e22"
LIST_FIELDS = {
    "id",
    "type",
    "status",
    "progress",
    "message",
    "created_at",
    "started_at",
    "completed_at",
    "stale",
}


@pytest.fixture
def operator_client(operator: User) -> Client:
    return logged_in(operator)


def post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def test_list_shape_and_filters(redis_client: redis.Redis, viewer_client: Client) -> None:
    put_tracker(redis_client, TRACKED)
    put_tracker(redis_client, "c1", "failed", ttl=3600, error="Cancelled by user")
    put_status(redis_client, STATUSED, "completed")  # no TTL: stale
    redis_client.set("job:broken", b"not json")
    response = viewer_client.get("/api/jobs/")
    assert response.status_code == 200
    body = response.json()
    by_id = {job["id"]: job for job in body["jobs"]}
    assert set(by_id[TRACKED]) >= LIST_FIELDS
    assert by_id[TRACKED]["status"] == "running" and by_id[TRACKED]["progress"] == 40
    assert by_id[TRACKED]["stale"] is False
    assert by_id["c1"]["status"] == "cancelled" and by_id["c1"]["stored_status"] == "failed"
    assert by_id[STATUSED]["stale"] is True
    assert by_id[STATUSED]["stale_reasons"] == ["finished but its key never expires"]
    assert by_id["broken"]["status"] == "unreadable" and "not a JSON object" in by_id["broken"]["problem"]
    assert body["counts"]["running"] == 1 and body["scan_complete"] is True
    only = viewer_client.get("/api/jobs/?status=cancelled").json()["jobs"]
    assert [job["id"] for job in only] == ["c1"]
    typed = viewer_client.get("/api/jobs/?type=cleanup").json()["jobs"]
    assert [job["id"] for job in typed] == [STATUSED]
    bad = viewer_client.get("/api/jobs/?since=soon")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_filter"
    assert viewer_client.get("/api/jobs/?limit=0").status_code == 400


def test_list_pages(redis_client: redis.Redis, viewer_client: Client) -> None:
    for i in range(30):
        put_tracker(redis_client, f"j{i:02d}", "completed", ttl=3600, created_at=iso(i))
    page = viewer_client.get("/api/jobs/?limit=10&offset=10").json()
    assert [job["id"] for job in page["jobs"]] == [f"j{i:02d}" for i in range(10, 20)]
    assert page["total"] == 30


def test_detail(redis_client: redis.Redis, viewer_client: Client) -> None:
    put_status(redis_client, STATUSED, "failed", ttl=3600, error="Disk full", result={"rows": 3})
    body = viewer_client.get(f"/api/jobs/{STATUSED}/").json()
    (job,) = body["jobs"]
    assert job["source"] == "status" and job["data"]["error"] == "Disk full"
    assert job["data"]["result"] == {"rows": 3} and "job:status:list" in job["indexes"]
    missing = viewer_client.get("/api/jobs/nope/")
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_job"


def test_abort_reaches_a_subscriber(redis_client: redis.Redis, operator_client: Client) -> None:
    put_tracker(redis_client, TRACKED)
    sub = redis_client.pubsub()
    sub.subscribe(f"job:{TRACKED}:control")
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    response = post(operator_client, f"/api/jobs/{TRACKED}/abort/", {"reason": "User requested"})
    assert response.status_code == 200
    body = response.json()
    assert body["receivers"] == 1 and body["channel"] == f"job:{TRACKED}:control"
    assert body["job"]["message"] == "Aborting: User requested"
    deadline, message = time.time() + 3, None
    while time.time() < deadline and not (message and message["type"] == "message"):
        message = sub.get_message(timeout=0.5)
    assert message and message["data"] == b'{"action": "abort", "reason": "User requested"}'
    assert AuditEntry.objects.get(pk=body["audit_id"]).action == "job_abort"
    sub.close()


def test_abort_refuses_a_pending_job_and_cancel_a_running_one(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    put_tracker(redis_client, TRACKED, "pending")
    refused = post(operator_client, f"/api/jobs/{TRACKED}/abort/", {})
    assert refused.status_code == 409 and refused.json()["error"] == "status_changed"
    assert "needs a running job" in refused.json()["detail"]
    put_tracker(redis_client, TRACKED, "running")
    assert post(operator_client, f"/api/jobs/{TRACKED}/cancel/", {}).status_code == 409
    stale = post(operator_client, f"/api/jobs/{TRACKED}/abort/", {"expected_status": "pending"})
    assert stale.status_code == 409 and "not pending" in stale.json()["detail"]
    assert post(operator_client, "/api/jobs/nope/abort/", {}).status_code == 404


def test_cancel_each_keyspace(redis_client: redis.Redis, operator_client: Client) -> None:
    put_tracker(redis_client, TRACKED, "pending")
    put_status(redis_client, STATUSED, "queued")
    tracked = post(operator_client, f"/api/jobs/{TRACKED}/cancel/", {"expected_status": "pending"})
    assert tracked.status_code == 200 and tracked.json()["job"]["status"] == "cancelled"
    assert stored(redis_client, f"job:{TRACKED}")["status"] == "failed"
    statused = post(operator_client, f"/api/jobs/{STATUSED}/cancel/", {"source": "status"})
    assert statused.status_code == 200
    assert stored(redis_client, f"job:{STATUSED}:status")["status"] == "cancelled"
    assert redis_client.ttl(f"job:{STATUSED}:status") > 0
    again = post(operator_client, f"/api/jobs/{STATUSED}/cancel/", {})
    assert again.status_code == 409


def test_same_id_in_both_keyspaces_needs_a_source(redis_client: redis.Redis, operator_client: Client) -> None:
    put_tracker(redis_client, TRACKED, "pending")
    put_status(redis_client, TRACKED, "pending")
    ambiguous = post(operator_client, f"/api/jobs/{TRACKED}/cancel/", {})
    assert ambiguous.status_code == 409 and ambiguous.json()["error"] == "ambiguous_job"
    assert post(operator_client, f"/api/jobs/{TRACKED}/cancel/", {"source": "status"}).status_code == 200
    assert stored(redis_client, f"job:{TRACKED}")["status"] == "pending"
    assert post(operator_client, f"/api/jobs/{TRACKED}/cancel/", {"source": "nope"}).status_code == 400


def test_roles(redis_client: redis.Redis, viewer_client: Client, client: Client, roleless: User) -> None:
    put_tracker(redis_client, TRACKED, "running")
    for verb in ("abort", "cancel"):
        denied = post(viewer_client, f"/api/jobs/{TRACKED}/{verb}/", {})
        assert denied.status_code == 403 and "cancel_jobs" in denied.json()["detail"]
    assert stored(redis_client, f"job:{TRACKED}")["message"] == "Exported 400/1000 events"
    assert client.get("/api/jobs/").status_code in (401, 403)
    assert logged_in(roleless).get("/api/jobs/").status_code == 403


def test_schema_lists_the_job_endpoints(redis_client: redis.Redis, viewer_client: Client) -> None:
    paths = viewer_client.get("/api/schema/").json()["paths"]
    assert {
        "/api/jobs/",
        "/api/jobs/{job_id}/",
        "/api/jobs/{job_id}/abort/",
        "/api/jobs/{job_id}/cancel/",
    } <= set(paths)


def test_nan_and_infinity_do_not_break_the_json(redis_client: redis.Redis, viewer_client: Client) -> None:
    redis_client.set(
        "job:weird", b'{"job_type": "export", "status": "running", "progress": NaN, "result": Infinity}'
    )
    redis_client.zadd("job:status:list", {"weird": float("inf")})
    listed = viewer_client.get("/api/jobs/")
    assert listed.status_code == 200
    assert {job["id"]: job["progress"] for job in listed.json()["jobs"]}["weird"] is None
    detail = viewer_client.get("/api/jobs/weird/")
    assert detail.status_code == 200
    by_source = {job["source"]: job for job in detail.json()["jobs"]}
    assert by_source["tracker"]["data"]["result"] == "Infinity"
    assert by_source["status"]["indexes"] == {"job:status:list": "Infinity"}
    assert by_source["status"]["status"] == "expired"
    assert viewer_client.get("/jobs/weird/").status_code == 200
    assert viewer_client.get("/jobs/").status_code == 200


def test_actions_on_a_key_that_is_not_a_job_answer_409(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    redis_client.hset("job:hash", "status", "running")
    redis_client.set("job:text", b"plain text")
    for job_id in ("hash", "text"):
        for verb in ("abort", "cancel"):
            response = post(operator_client, f"/api/jobs/{job_id}/{verb}/", {})
            assert response.status_code == 409, (job_id, verb)
            assert "cannot be changed" in response.json()["detail"]
    assert redis_client.type("job:hash") == b"hash" and redis_client.get("job:text") == b"plain text"
    assert operator_client.get("/jobs/hash/").status_code == 200
    assert operator_client.get("/jobs/text/abort/").status_code == 409


def test_delete_a_stale_key_then_restore_it(redis_client: redis.Redis, operator_client: Client) -> None:
    put_status(redis_client, STATUSED, "completed")  # finished without TTL: stale
    before = redis_client.get(f"job:{STATUSED}:status")
    detail = operator_client.get(f"/api/jobs/{STATUSED}/").json()["jobs"][0]
    changed = post(operator_client, f"/api/jobs/{STATUSED}/delete/", {"expected_fingerprint": "0" * 40})
    assert changed.status_code == 409 and "changed since" in changed.json()["detail"]
    assert redis_client.get(f"job:{STATUSED}:status") == before
    response = post(
        operator_client, f"/api/jobs/{STATUSED}/delete/", {"expected_fingerprint": detail["fingerprint"]}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["key"] == f"job:{STATUSED}:status" and f"#{body['archive_id']}" in body["detail"]
    assert redis_client.get(f"job:{STATUSED}:status") is None
    assert AuditEntry.objects.filter(action="job_delete", pk=body["audit_id"]).exists()
    assert redis_client.zscore("jobs:completed", STATUSED) is not None
    # Its index entries now point at nothing: stale too, removed (and archived) by a second delete.
    again = post(operator_client, f"/api/jobs/{STATUSED}/delete/", {})
    assert again.status_code == 200 and redis_client.zscore("jobs:completed", STATUSED) is None
    ids = [body["archive_id"], again.json()["archive_id"], 999999]
    restored = post(operator_client, "/api/jobs/archive/restore/", {"ids": ids})
    assert restored.status_code == 200
    result = restored.json()
    assert result["restored"] == ids[:2]
    assert [row["id"] for row in result["not_restored"]] == [999999]
    assert "not an archived job key" in result["not_restored"][0]["detail"]
    assert redis_client.get(f"job:{STATUSED}:status") == before
    assert redis_client.zscore("jobs:completed", STATUSED) is not None
    assert AuditEntry.objects.filter(action="job_restore").count() == 2


def test_delete_refuses_a_job_that_is_not_stale(redis_client: redis.Redis, operator_client: Client) -> None:
    put_tracker(redis_client, TRACKED, "running")
    response = post(operator_client, f"/api/jobs/{TRACKED}/delete/", {})
    assert response.status_code == 409 and "not stale" in response.json()["detail"]
    assert redis_client.exists(f"job:{TRACKED}") == 1
    missing = post(operator_client, "/api/jobs/nope/delete/", {})
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_job"
    bad = post(operator_client, "/api/jobs/archive/restore/", {"ids": []})
    assert bad.status_code == 400 and bad.json()["detail"]
    to_source = post(operator_client, "/api/jobs/archive/restore/", {"ids": [1], "to_source": True})
    assert to_source.status_code == 400 and "to_source is for DLQ entries" in to_source.json()["detail"]


def test_restore_never_overwrites_a_key_hsi_wrote_again(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    put_tracker(redis_client, TRACKED, "completed")  # no TTL: stale
    archive_id = post(operator_client, f"/api/jobs/{TRACKED}/delete/", {}).json()["archive_id"]
    put_tracker(redis_client, TRACKED, "running", message="HSI wrote it again")
    result = post(operator_client, "/api/jobs/archive/restore/", {"ids": [archive_id]}).json()
    assert result["restored"] == [] and "not overwritten" in result["not_restored"][0]["detail"]
    assert stored(redis_client, f"job:{TRACKED}")["message"] == "HSI wrote it again"


def test_viewers_may_not_delete_or_restore(redis_client: redis.Redis, viewer_client: Client) -> None:
    put_status(redis_client, STATUSED, "completed")
    denied = post(viewer_client, f"/api/jobs/{STATUSED}/delete/", {})
    assert denied.status_code == 403 and "delete_items" in denied.json()["detail"]
    assert redis_client.exists(f"job:{STATUSED}:status") == 1
    refused = post(viewer_client, "/api/jobs/archive/restore/", {"ids": [1]})
    assert refused.status_code == 403


def test_schema_documents_delete_and_restore(redis_client: redis.Redis, viewer_client: Client) -> None:
    paths = viewer_client.get("/api/schema/").json()["paths"]
    delete = paths["/api/jobs/{job_id}/delete/"]["post"]
    assert "stale" in delete["description"] and "409" in delete["responses"]
    restore = paths["/api/jobs/archive/restore/"]["post"]
    assert restore["operationId"] == "jobs_archive_restore" and "200" in restore["responses"]
