"""Live job rows: ``queues.jobs.LiveSampler`` against a real Redis, and a real ``relay_events``
process sending only the changed rows to the real channels-redis layer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from queues import jobs, keys
from realtime.events import DEPTHS_GROUP, LEADER_KEY
from tests.redis_server import RedisServer
from tests.relay_helpers import GroupListener, RelayProcess, relay_env


def put_status_job(
    client: redis.Redis, job_id: str, status: str = "running", progress: int = 0, **extra: Any
) -> None:
    value = {"job_id": job_id, "job_type": "export", "status": status, "progress": progress, "message": ""}
    client.set(keys.job_status_key(job_id), json.dumps(value | extra))
    if status in ("running", "pending", "queued"):
        client.zadd(keys.JOBS_ACTIVE, {job_id: 1_770_000_000})


def put_tracker_job(client: redis.Redis, job_id: str, status: str = "running", progress: int = 0) -> None:
    value = {"job_id": job_id, "job_type": "import", "status": status, "progress": progress, "message": ""}
    client.set(keys.job_key(job_id), json.dumps(value))


def ids(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(row["id"], row["source"]) for row in rows}


def test_sampler_sends_every_row_first_then_only_changes(redis_client: redis.Redis) -> None:
    put_status_job(redis_client, "a1", progress=10)
    put_status_job(redis_client, "a2", progress=20)
    put_tracker_job(redis_client, "t1", progress=5)
    put_tracker_job(redis_client, "t-done", status="completed", progress=100)
    sampler = jobs.LiveSampler()
    sampler.discover(redis_client)
    assert sampler.tracker_ids == ["t1"]  # finished JobTracker jobs are not followed
    first = sampler.sample(redis_client, "2026-11-29T10:00:00Z")
    assert ids(first) == {("a1", "status"), ("a2", "status"), ("t1", "tracker")}
    assert set(first[0]) == set(jobs.LIVE_FIELDS)
    assert sampler.sample(redis_client, "2026-11-29T10:00:02Z") == []  # nothing moved

    put_status_job(redis_client, "a1", progress=55, message="Exported 550/1000 events")
    put_tracker_job(redis_client, "t1", progress=6)
    changed = sampler.sample(redis_client, "2026-11-29T10:00:04Z")
    assert ids(changed) == {("a1", "status"), ("t1", "tracker")}
    row = next(r for r in changed if r["id"] == "a1")
    assert row["progress"] == 55 and row["message"] == "Exported 550/1000 events"
    assert row["status"] == "running" and row["updated_at"] == "2026-11-29T10:00:04Z"

    # Finishing removes it from jobs:active: its final row is sent once, then it is no longer read.
    put_status_job(
        redis_client, "a2", status="completed", progress=100, completed_at="2026-11-29T10:00:05+00:00"
    )
    redis_client.zrem(keys.JOBS_ACTIVE, "a2")
    final = sampler.sample(redis_client, "2026-11-29T10:00:06Z")
    assert [(r["id"], r["status"], r["progress"]) for r in final] == [("a2", "completed", 100)]
    assert final[0]["updated_at"] == "2026-11-29T10:00:05+00:00"
    put_status_job(redis_client, "a2", status="completed", progress=100, message="changed later")
    redis_client.zrem(keys.JOBS_ACTIVE, "a2")
    assert sampler.sample(redis_client, "2026-11-29T10:00:08Z") == []


def test_sampler_reads_a_bounded_number_of_jobs(redis_client: redis.Redis) -> None:
    for n in range(30):
        put_status_job(redis_client, f"job-{n:02d}", progress=n)
    sampler = jobs.LiveSampler(limit=10)
    rows = sampler.sample(redis_client, "2026-11-29T10:00:00Z")
    assert len(rows) == 10


def test_an_expired_job_is_sent_once_as_expired(redis_client: redis.Redis) -> None:
    put_status_job(redis_client, "gone", progress=30)
    sampler = jobs.LiveSampler()
    assert ids(sampler.sample(redis_client, "t0")) == {("gone", "status")}
    redis_client.delete(keys.job_status_key("gone"))
    redis_client.zrem(keys.JOBS_ACTIVE, "gone")
    rows = sampler.sample(redis_client, "t1")
    assert [(r["id"], r["status"]) for r in rows] == [("gone", "expired")]
    assert sampler.sample(redis_client, "t2") == []


@pytest.fixture
def relay(redis_server: RedisServer, tmp_path: Path) -> Iterator[RelayProcess]:
    env = relay_env(redis_server.url, HSI_JOB_SAMPLE_SECONDS="0.3")
    process = RelayProcess("relay-jobs", env, tmp_path / "relay.log")
    yield process
    process.kill()


def test_the_relay_pushes_only_changed_rows(redis_client: redis.Redis, relay: RelayProcess) -> None:
    put_status_job(redis_client, "moving", progress=10)
    put_status_job(redis_client, "still", progress=70)

    def has(message: dict[str, Any], job_id: str, progress: int) -> bool:
        body = message.get("message") or {}
        rows = (body.get("data") or {}).get("jobs") or [] if body.get("type") == "jobs" else []
        return any(row["id"] == job_id and row["progress"] == progress for row in rows)

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with GroupListener(DEPTHS_GROUP) as group:
            relay.start()
            relay.wait_leading(redis_client)
            first = await group.wait_for(lambda m: has(m, "moving", 10) and has(m, "still", 70))
            put_status_job(redis_client, "moving", progress=60, message="halfway")
            later = await group.wait_for(lambda m: has(m, "moving", 60))
            await asyncio.sleep(1.0)  # a few more ticks with nothing changing
            return list(group.messages), later | {"first": first}

    messages, later = asyncio.run(scenario())
    assert json.loads(later["text"]) == later["message"]  # the pre-encoded frame says the same
    rows = later["message"]["data"]["jobs"]
    assert [(r["id"], r["progress"], r["message"]) for r in rows] == [("moving", 60, "halfway")]
    job_messages = [m for m in messages if (m.get("message") or {}).get("type") == "jobs"]
    assert len(job_messages) == 2  # the first full sample, then the one change; quiet ticks send nothing
    assert later["message"]["id"] is None and later["message"]["channel"] == "console"


def test_a_large_first_sample_goes_out_in_small_messages(
    redis_client: redis.Redis, relay: RelayProcess
) -> None:
    for n in range(120):
        put_status_job(redis_client, f"bulk-{n:03d}", progress=n % 100, message="x" * 1000)

    async def scenario() -> list[dict[str, Any]]:
        async with GroupListener(DEPTHS_GROUP) as group:
            relay.start()
            relay.wait_leading(redis_client)

            def rows_seen() -> int:
                found = [m for m in group.messages if (m.get("message") or {}).get("type") == "jobs"]
                return sum(len(m["message"]["data"]["jobs"]) for m in found)

            await group.wait_for(lambda m: rows_seen() >= 120)
            return [m for m in group.messages if (m.get("message") or {}).get("type") == "jobs"]

    messages = asyncio.run(scenario())
    assert [len(m["message"]["data"]["jobs"]) for m in messages] == [50, 50, 20]
    assert all(len(m["text"]) < 25_000 for m in messages)
    rows = [row for m in messages for row in m["message"]["data"]["jobs"]]
    assert {len(row["message"]) for row in rows} == {jobs.LIVE_MESSAGE_CHARS}
    assert len({m["message"]["data"]["sampled_at"] for m in messages}) == 1


def test_a_refused_sampling_command_does_not_stop_the_relay(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A real ACL user without MGET: the relay logs once, keeps leading and keeps sending depths."""
    put_status_job(redis_client, "moving", progress=10)
    redis_client.acl_setuser(
        "nomget",
        enabled=True,
        passwords=["+pw-nomget"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-mget"],
    )
    url = redis_server.url.replace("redis://", "redis://nomget:pw-nomget@")
    env = relay_env(url, HSI_JOB_SAMPLE_SECONDS="0.3")
    process = RelayProcess("relay-nomget", env, tmp_path / "relay.log")
    try:

        async def scenario() -> dict[str, Any]:
            async with GroupListener(DEPTHS_GROUP) as group:
                process.start()
                process.wait_leading(redis_client)
                await group.wait_for(lambda m: (m.get("message") or {}).get("type") == "queue_depths")
                await asyncio.sleep(1.5)  # several depth samples and job ticks later
                return {"messages": list(group.messages)}

        seen = asyncio.run(scenario())["messages"]
        kinds = [(m.get("message") or {}).get("type") for m in seen]
        assert "jobs" not in kinds and kinds.count("queue_depths") >= 3
        assert process.alive() and redis_client.get(LEADER_KEY) == b"relay-nomget"
        output = process.output()
        assert output.count("job sampling skipped for a minute") == 1
        assert "no permissions to run the 'mget' command" in output
        assert "lost Redis" not in output and "cannot reach Redis" not in output
    finally:
        process.kill()
        redis_client.acl_deluser("nomget")


def test_a_finished_job_left_in_jobs_active_is_sent_once(redis_client: redis.Redis) -> None:
    """HSI prunes orphans from jobs:active only after 2 h: they must not be re-sent every tick."""
    put_status_job(redis_client, "orphan", status="running", progress=90)
    sampler = jobs.LiveSampler()
    assert ids(sampler.sample(redis_client, "t0")) == {("orphan", "status")}
    put_status_job(redis_client, "orphan", status="completed", progress=100)  # still in jobs:active
    assert [(r["id"], r["status"]) for r in sampler.sample(redis_client, "t1")] == [("orphan", "completed")]
    assert sampler.sample(redis_client, "t2") == []
    assert sampler.sample(redis_client, "t3") == []
    redis_client.delete(keys.job_status_key("orphan"))  # its key expires while the index entry stays
    assert [(r["id"], r["status"]) for r in sampler.sample(redis_client, "t4")] == [("orphan", "expired")]
    assert sampler.sample(redis_client, "t5") == []
    redis_client.zrem(keys.JOBS_ACTIVE, "orphan")
    assert sampler.sample(redis_client, "t6") == [] and sampler.last == {}
