"""Stream DLQs: paging by id and retry back to the stream, atomically, without trimming."""

from __future__ import annotations

from typing import Any

import redis

from queues import streams

DLQ, STREAM = "detections:stream:dlq", "detections:stream"
DLQ_FIELDS = {"dlq_reason": "max_delivery_exceeded", "delivery_count": "3"}


def fill(client: redis.Redis, count: int) -> list[str]:
    ids = []
    for n in range(count):
        fields: dict[Any, Any] = {"camera_id": "porch", "detection_id": str(n), "file_path": f"/x/{n}.jpg"}
        fields |= {"original_message_id": f"{n}-0", **DLQ_FIELDS}
        ids.append(streams.as_text(client.xadd(DLQ, fields)))
    return ids


def stream_fields(client: redis.Redis, key: str) -> list[dict[Any, Any]]:
    entries: Any = client.xrange(key)
    return [dict(fields) for _, fields in entries]


def test_page_by_id_both_directions(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 7)
    first = streams.page(redis_client, DLQ, limit=3)
    assert [e.id for e in first.entries] == ids[:3] and first.total == 7 and first.next_id == ids[2]
    second = streams.page(redis_client, DLQ, after=first.next_id or "-", limit=3)
    assert [e.id for e in second.entries] == ids[3:6]
    newest = streams.page(redis_client, DLQ, limit=2, newest_first=True)
    assert [e.id for e in newest.entries] == [ids[6], ids[5]]
    assert newest.entries[0].job == {"camera_id": "porch", "detection_id": "6", "file_path": "/x/6.jpg"}


def test_retry_moves_original_fields_once(redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 3)
    outcome = streams.retry(redis_client, DLQ, [ids[0], ids[2]])
    assert (outcome.done, outcome.target) == (2, STREAM)
    moved = stream_fields(redis_client, STREAM)
    assert [fields[b"detection_id"] for fields in moved] == [b"0", b"2"]
    assert all(b"dlq_reason" not in fields for fields in moved)
    assert redis_client.xlen(DLQ) == 1
    again = streams.retry(redis_client, DLQ, [ids[0]])
    assert again.done == 0 and again.skipped_count == 1 and redis_client.xlen(STREAM) == 2


def test_full_stream_is_not_trimmed(redis_client: redis.Redis, settings) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 2}
    redis_client.xadd(STREAM, {"camera_id": "old"})
    ids = fill(redis_client, 3)
    outcome = streams.retry(redis_client, DLQ, ids)
    assert outcome.done == 1 and outcome.full
    assert redis_client.xlen(STREAM) == 2 and redis_client.xlen(DLQ) == 2
