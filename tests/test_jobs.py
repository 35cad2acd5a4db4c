"""Job pages and the jobs service on a real private Redis: both keyspaces, bad values, stale flags,
paging, abort with a real subscriber, cancel per keyspace, 409 on a changed status, roles."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client

from console.models import AuditEntry
from queues import jobs
from tests.conftest import logged_in
from tests.job_fixtures import iso, put_status, put_tracker, stored

TRACKED = "5b0e6c1a-2f0d-4a8e-9a6e-0c1f7d0b9e21"
STATUSED = "7c1d2e3f-0000-4a8e-9a6e-0c1f7d0b9e22"


@pytest.fixture
def operator_client(operator: User) -> Client:
    return logged_in(operator)


def listing(client: redis.Redis) -> dict[tuple[str, str], jobs.Job]:
    taken = jobs.snapshot(client, fresh=True)
    return {(j.id, j.source): j for j in jobs.page(client, taken, list(range(len(taken))))}


def nonce_of(html: str) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', html)
    assert found
    return found.group(1)


def subscribe(client: redis.Redis, channel: str) -> Any:
    sub = client.pubsub()
    sub.subscribe(channel)
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    return sub


def next_message(sub: Any) -> Any:
    deadline = time.time() + 3
    while time.time() < deadline:
        message = sub.get_message(timeout=0.5)
        if message and message["type"] == "message":
            return message
    return None


# --- Reading both keyspaces -------------------------------------------------------------------------


def test_both_keyspaces_are_listed_and_decoded(redis_client: redis.Redis) -> None:
    put_tracker(redis_client, TRACKED)
    put_status(redis_client, STATUSED, "completed", ttl=3600, progress=100, completed_at=iso(10))
    # JobTracker's cancel encoding, and a JSON-quoted (RedisClient.set) value.
    put_tracker(redis_client, "cancelled-1", "failed", ttl=3600, error="Cancelled by user")
    redis_client.set("job:quoted-1", json.dumps(json.dumps({"job_type": "backup", "status": "pending"})))
    found = listing(redis_client)
    assert found[(TRACKED, "tracker")].status == "running"
    assert found[(TRACKED, "tracker")].progress == 40
    assert found[(STATUSED, "status")].status == "completed"
    assert found[(STATUSED, "status")].type == "cleanup"
    assert set(found[(STATUSED, "status")].indexes) == {"job:status:list", "jobs:completed"}
    assert found[("cancelled-1", "tracker")].status == "cancelled"
    assert found[("cancelled-1", "tracker")].stored_status == "failed"
    assert found[("quoted-1", "tracker")].status == "pending"
    # job:{id}:status and job:status:list are never mistaken for JobTracker jobs.
    assert not any(source == "tracker" and ":" in job_id for job_id, source in found)
    assert ("status:list", "tracker") not in found


def test_bad_values_are_shown_with_a_reason(redis_client: redis.Redis, viewer_client: Client) -> None:
    redis_client.set("job:notjson", b"{oops")
    redis_client.set("job:list", b"[1, 2]")
    redis_client.set("job:nostatus", json.dumps({"job_type": "export"}))
    redis_client.set("job:badstatus", json.dumps({"job_type": "export", "status": 7, "progress": "x"}))
    redis_client.set("job:binary", b"\xff\xfe\x00")
    redis_client.hset("job:hash", "status", "running")  # not what HSI writes: must not break the list
    redis_client.zadd("jobs:active", {"hash": 1.0})
    wrong = {"job_type": 5, "status": "running", "progress": "x", "created_at": 12, "message": {"a": 1}}
    redis_client.set("job:wrongtypes", json.dumps(wrong))
    found = listing(redis_client)
    assert "not a JSON object (text)" in found[("notjson", "tracker")].problem
    assert "not a JSON object (json)" in found[("list", "tracker")].problem
    assert found[("nostatus", "tracker")].problem == "missing status"
    assert found[("badstatus", "tracker")].problem == "unknown status 7"
    assert found[("badstatus", "tracker")].progress is None
    assert "not UTF-8" in found[("binary", "tracker")].problem
    assert "not a string key (WRONGTYPE" in found[("hash", "tracker")].problem
    assert found.pop(("hash", "status")).status == "expired"
    typed = found.pop(("wrongtypes", "tracker"))
    assert (typed.status, typed.type, typed.progress, typed.created) == ("running", "", None, None)
    assert typed.message == '{"a": 1}' and typed.duration is None
    assert all(job.status == "unreadable" for job in found.values())
    page = viewer_client.get("/jobs/")
    assert page.status_code == 200
    assert b"missing status" in page.content and b"unreadable" in page.content
    detail = viewer_client.get("/jobs/notjson/")
    assert detail.status_code == 200 and b"{oops" in detail.content


def test_stale_flags(redis_client: redis.Redis, settings: Any) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "JOB_STALE_SECONDS": 600}
    put_tracker(redis_client, "fresh", "running")
    put_tracker(redis_client, "stuck", "running", created_at=iso(7200), started_at=iso(7100))
    put_tracker(redis_client, "old-pending", "pending", created_at=iso(3600))
    put_tracker(redis_client, "done-forever", "completed", progress=100)  # no TTL
    put_tracker(redis_client, "done-ok", "completed", ttl=3600)
    put_status(redis_client, "expired-1", "completed")
    redis_client.delete("job:expired-1:status")  # the index entry outlived its key
    found = listing(redis_client)
    assert found[("fresh", "tracker")].stale == []
    assert found[("stuck", "tracker")].stale == ["running with no news for more than 600 s"]
    assert found[("old-pending", "tracker")].stale == ["pending with no news for more than 600 s"]
    assert found[("done-forever", "tracker")].stale == ["finished but its key never expires"]
    assert found[("done-ok", "tracker")].stale == []
    expired = found[("expired-1", "status")]
    assert expired.status == "expired" and expired.stale == ["index entry whose job key has expired"]


def test_list_page_filters_counts_and_escaping(redis_client: redis.Redis, viewer_client: Client) -> None:
    put_tracker(redis_client, TRACKED, message="<script>alert(1)</script>")
    put_tracker(redis_client, "p1", "pending", job_type="backup")
    put_status(redis_client, STATUSED, "cancelled", ttl=3600, error="Cancelled by user")
    page = viewer_client.get("/jobs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "scanned" in html and "key" in html
    assert re.search(r"running</a>: <strong>1</strong>", html)
    assert re.search(r"cancelled</a>: <strong>1</strong>", html)
    assert 'href="/jobs/"' in html  # the nav link
    only = viewer_client.get("/jobs/?status=pending").content.decode()
    assert 'data-job="p1"' in only and f'data-job="{TRACKED}"' not in only
    typed = viewer_client.get("/jobs/?type=cleanup").content.decode()
    assert f'data-job="{STATUSED}"' in typed and 'data-job="p1"' not in typed
    bad = viewer_client.get("/jobs/?since=yesterday")
    assert bad.status_code == 400 and b"&#x27;since&#x27; must be a date" in bad.content


def test_paging_and_scan_limit(redis_client: redis.Redis, viewer_client: Client, settings: Any) -> None:
    pipe = redis_client.pipeline()
    for i in range(120):
        pipe.set(
            f"job:t{i:03d}", json.dumps({"job_type": "export", "status": "completed", "created_at": iso(i)})
        )
    pipe.execute()
    first = viewer_client.get("/jobs/?size=50").content.decode()
    assert "items 1\u201350 of 120" in first and 'data-job="t000"' in first and 'data-job="t050"' not in first
    third = viewer_client.get("/jobs/?size=50&offset=100").content.decode()
    assert "items 101\u2013120 of 120" in third and 'data-job="t119"' in third
    jumped = viewer_client.get(
        "/jobs/?size=50&item=77", follow=True
    ).content.decode()  # "Go to item": its page
    assert "items 51\u2013100 of 120" in jumped and 'name="item" min="1" max="120" value="51"' in jumped
    settings.HSI_CONSOLE = {
        **settings.HSI_CONSOLE,
        "SCAN_LIMIT": 20,
        "SCAN_COUNT": 10,
        "JOB_CACHE_SECONDS": 0,
    }
    taken = jobs.snapshot(redis_client)
    assert not taken.scan_complete and taken.scanned < 120
    assert b"stopped at the scan limit" in viewer_client.get("/jobs/").content


def test_detail_page_pretty_prints_result_and_error(redis_client: redis.Redis, viewer_client: Client) -> None:
    put_tracker(
        redis_client,
        TRACKED,
        "completed",
        ttl=3600,
        result={"rows": 1000, "file": "<b>x.csv</b>"},
        error=None,
    )
    page = viewer_client.get(f"/jobs/{TRACKED}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;rows&quot;: 1000" in html and "&lt;b&gt;x.csv&lt;/b&gt;" in html
    assert "abort-link" not in html and "cancel-link" not in html  # completed, and a viewer
    assert viewer_client.get("/jobs/nope/").status_code == 404


# --- Actions ----------------------------------------------------------------------------------------


def test_abort_publishes_hsi_message_to_a_real_subscriber(
    redis_client: redis.Redis, operator_client: Client, operator: User
) -> None:
    put_tracker(redis_client, TRACKED)
    sub = subscribe(redis_client, f"job:{TRACKED}:control")
    confirm = operator_client.get(f"/jobs/{TRACKED}/abort/?source=tracker")
    assert confirm.status_code == 200 and b"will and will not notice" in confirm.content
    assert redis_client.pubsub_numsub(f"job:{TRACKED}:control")[0][1] == 1
    response = operator_client.post(
        f"/jobs/{TRACKED}/abort/",
        {
            "source": "tracker",
            "expected": "running",
            "reason": "Disk full",
            "nonce": nonce_of(confirm.content.decode()),
        },
        follow=True,
    )
    assert response.status_code == 200
    message = next_message(sub)
    assert message is not None
    assert json.loads(message["data"]) == {"action": "abort", "reason": "Disk full"}
    assert b"1 subscriber received it" in response.content
    value = stored(redis_client, f"job:{TRACKED}")
    assert value["status"] == "running" and value["message"] == "Aborting: Disk full"
    assert redis_client.ttl(f"job:{TRACKED}") == -1
    entry = AuditEntry.objects.get(action="job_abort")
    assert entry.username == operator.username and entry.detail["receivers"] == 1
    sub.close()


def test_abort_with_nobody_listening_says_so(redis_client: redis.Redis, operator_client: Client) -> None:
    put_status(redis_client, STATUSED)
    confirm = operator_client.get(f"/jobs/{STATUSED}/abort/")
    response = operator_client.post(
        f"/jobs/{STATUSED}/abort/",
        {"source": "status", "expected": "running", "nonce": nonce_of(confirm.content.decode())},
        follow=True,
    )
    assert b"0 receivers" in response.content
    # JobStatusService's record is not rewritten by an abort.
    assert stored(redis_client, f"job:{STATUSED}:status")["message"] == "Exported 400/1000 events"


def test_cancel_tracker_pending(redis_client: redis.Redis, operator_client: Client) -> None:
    put_tracker(redis_client, TRACKED, "pending")
    confirm = operator_client.get(f"/jobs/{TRACKED}/cancel/")
    assert confirm.status_code == 200
    response = operator_client.post(
        f"/jobs/{TRACKED}/cancel/",
        {"source": "tracker", "expected": "pending", "nonce": nonce_of(confirm.content.decode())},
    )
    assert response.status_code == 302
    value = stored(redis_client, f"job:{TRACKED}")
    assert value["status"] == "failed" and value["error"] == "Cancelled by user"
    assert value["message"] == "Job cancelled by user request" and value["completed_at"]
    assert 3590 < redis_client.ttl(f"job:{TRACKED}") <= 3600
    assert listing(redis_client)[(TRACKED, "tracker")].status == "cancelled"
    assert AuditEntry.objects.filter(action="job_cancel", key=f"job:{TRACKED}").count() == 1


def test_cancel_status_service_pending(redis_client: redis.Redis, operator_client: Client) -> None:
    put_status(redis_client, STATUSED, "pending")
    redis_client.zadd("jobs:active", {STATUSED: time.time()})
    response = operator_client.post(f"/jobs/{STATUSED}/cancel/", {"source": "status", "expected": "pending"})
    assert response.status_code == 302
    value = stored(redis_client, f"job:{STATUSED}:status")
    assert value["status"] == "cancelled" and value["error"] == "Cancelled by user"
    assert value["extra"] == {"requested_by": "api"}  # other fields kept
    assert redis_client.zscore("jobs:active", STATUSED) is None
    assert redis_client.zscore("jobs:completed", STATUSED) is not None


def test_changed_status_is_refused_with_409(redis_client: redis.Redis, operator_client: Client) -> None:
    put_tracker(redis_client, TRACKED, "pending")
    confirm = operator_client.get(f"/jobs/{TRACKED}/cancel/")
    put_tracker(redis_client, TRACKED, "running")  # the worker started it meanwhile
    response = operator_client.post(
        f"/jobs/{TRACKED}/cancel/",
        {"source": "tracker", "expected": "pending", "nonce": nonce_of(confirm.content.decode())},
    )
    assert response.status_code == 409
    assert b"is running now, not pending" in response.content
    assert stored(redis_client, f"job:{TRACKED}")["status"] == "running"
    assert not AuditEntry.objects.filter(action="job_cancel").exists()
    # Abort needs running: a completed job is refused too.
    put_tracker(redis_client, TRACKED, "completed")
    not_offered = operator_client.get(f"/jobs/{TRACKED}/abort/")
    assert not_offered.status_code == 409 and b"abort needs a running job" in not_offered.content
    refused = operator_client.post(f"/jobs/{TRACKED}/abort/", {"source": "tracker"})
    assert refused.status_code == 409 and b"needs a running job" in refused.content


def test_watch_catches_a_write_between_read_and_exec(redis_client: redis.Redis, redis_server: Any) -> None:
    """A second real client writes the job key after WATCH and before EXEC: EXEC fails, nothing is written.

    The write happens inside the action's own ``edit`` step (which runs after WATCH, GET and MULTI),
    so the real WATCH/MULTI/EXEC of ``jobs._change`` meets a real concurrent write; nothing is patched.
    """
    put_tracker(redis_client, TRACKED, "pending")
    job = jobs.pick(redis_client, TRACKED)
    other = redis_server.client()

    def edit(pipe: Any, data: dict[str, Any]) -> None:
        other.set(job.key, json.dumps({**data, "progress": 41}))  # HSI's progress write sneaks in
        pipe.set(job.key, json.dumps({**data, "status": "failed", "error": jobs.CANCELLED_ERROR}))

    try:
        with pytest.raises(jobs.JobConflict, match="changed while this ran"):
            jobs._change(redis_client, job, "pending", frozenset({"pending"}), edit)
    finally:
        other.close()
    after = stored(redis_client, f"job:{TRACKED}")
    assert after["status"] == "pending" and after["progress"] == 41  # HSI's write won, ours was discarded


def test_cancel_against_a_concurrent_writer_never_loses_a_write(
    redis_client: redis.Redis, redis_server: Any, db: None
) -> None:
    """A real writer thread rewrites the pending job in a loop while cancels run: each cancel either
    wins (audited, the key says cancelled) or is refused with a sentence (not audited, nothing written)."""
    put_tracker(redis_client, TRACKED, "pending")
    stop = threading.Event()
    writes = [0]

    def writer() -> None:
        hsi = redis_server.client()
        while not stop.is_set():
            writes[0] += 1
            put_tracker(hsi, TRACKED, "pending", progress=writes[0] % 100)
        hsi.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    outcomes = {"cancelled": 0, "refused": 0}
    try:
        for _ in range(150):
            job = jobs.pick(redis_client, TRACKED)
            if job.status != "pending":
                continue
            try:
                jobs.cancel(redis_client, job)
            except jobs.JobConflict as exc:
                assert "changed while this ran" in str(exc) or "not pending as when" in str(exc)
                outcomes["refused"] += 1
            else:
                outcomes["cancelled"] += 1
    finally:
        stop.set()
        thread.join(10)
    assert writes[0] > 0 and sum(outcomes.values()) > 0
    assert outcomes["refused"] > 0  # the writer did hit the WATCH window (it writes several times per cancel)
    assert AuditEntry.objects.filter(action="job_cancel").count() == outcomes["cancelled"]


def test_roles(redis_client: redis.Redis, viewer_client: Client, client: Client) -> None:
    put_tracker(redis_client, TRACKED, "pending")
    assert viewer_client.get("/jobs/").status_code == 200
    assert viewer_client.get(f"/jobs/{TRACKED}/cancel/").status_code == 403
    assert viewer_client.post(f"/jobs/{TRACKED}/cancel/", {"source": "tracker"}).status_code == 403
    assert viewer_client.post(f"/jobs/{TRACKED}/abort/", {"source": "tracker"}).status_code == 403
    assert stored(redis_client, f"job:{TRACKED}")["status"] == "pending"
    anonymous = client.get("/jobs/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_duplicate_nonce_does_nothing_twice(redis_client: redis.Redis, operator_client: Client) -> None:
    put_tracker(redis_client, TRACKED, "running")
    sub = subscribe(redis_client, f"job:{TRACKED}:control")
    form = {"source": "tracker", "expected": "running", "nonce": "n-1"}
    assert operator_client.post(f"/jobs/{TRACKED}/abort/", form).status_code == 302
    again = operator_client.post(f"/jobs/{TRACKED}/abort/", form, follow=True)
    assert b"already submitted" in again.content
    assert next_message(sub) is not None and next_message(sub) is None
    assert AuditEntry.objects.filter(action="job_abort").count() == 1
    sub.close()


def test_index_is_read_in_slices_up_to_its_limit(
    redis_client: redis.Redis, viewer_client: Client, settings: Any
) -> None:
    redis_client.zadd("job:status:list", {f"s{i:04d}": 1_700_000_000 + i for i in range(1200)})
    put_status(redis_client, "newest", "running")  # score now: the newest entry
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "JOB_INDEX_LIMIT": 1000, "JOB_CACHE_SECONDS": 0}
    taken = jobs.snapshot(redis_client)
    assert taken.indexed == 1000 and not taken.index_complete
    ids = taken.ids
    assert ids[0] == "newest" and "s1199" in ids and "s0200" not in ids
    assert taken.counts == {"running": 1, "expired": 999}
    assert taken.entry(0) == jobs.Entry(
        "newest", "status", taken.at[0], "running", "cleanup", False, taken.indexes["newest"]
    )
    assert b"only the newest of each index are read" in viewer_client.get("/jobs/").content
