"""Edit-and-retry: HSI's payload rules, a diff, and the same atomic move."""

from __future__ import annotations

import json

import pytest
import redis

from console.models import AuditEntry
from queues import actions, dlq, validation
from tests.test_dlq_core import DLQ, TARGET, failure

pytestmark = pytest.mark.django_db

GOOD = {
    "camera_id": "garage_side",
    "file_path": "/export/foscam/garage_side/a.jpg",
    "timestamp": "2026-02-12T07:15:03.418221",
    "media_type": "image",
}


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"camera_id": "bad id!"}, "camera_id"),
        ({"file_path": "relative/a.jpg"}, "absolute"),
        ({"file_path": "/export/../etc/passwd"}, "'..'"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"media_type": "gif"}, "media_type"),
        ({"file_hash": "xyz"}, "sha256"),
    ],
)
def test_detection_rules(change: dict[str, str], phrase: str) -> None:
    assert validation.job_errors(TARGET, GOOD) == []
    errors = validation.job_errors(TARGET, {**GOOD, **change})
    assert len(errors) == 1 and phrase in errors[0]


def test_analysis_rules() -> None:
    good = {"batch_id": "batch-7be03a91", "camera_id": "porch", "detection_ids": [1, "2"], "timestamp": 1.5}
    assert validation.job_errors("analysis_queue", good) == []
    errors = validation.job_errors("analysis_queue", {**good, "detection_ids": [0], "batch_id": ""})
    assert len(errors) == 2


def test_edit_and_retry_moves_the_edited_job(redis_client: redis.Redis, operator) -> None:
    redis_client.rpush(DLQ, failure(1), failure(2))
    entry = dlq.page(redis_client, DLQ).entries[1]
    edited = {**GOOD, "camera_id": "porch"}
    request = type("Req", (), {"user": operator, "META": {}})()
    outcome, errors = actions.edit_and_retry(
        redis_client, DLQ, entry.ref, json.dumps(edited), request=request
    )
    assert errors == [] and outcome is not None and outcome.done == 1
    assert json.loads(dlq.as_bytes(redis_client.lindex(TARGET, 0) or b"")) == edited
    assert redis_client.llen(DLQ) == 1
    audit = AuditEntry.objects.get(action="dlq.edit_and_retry")
    assert any(line.startswith('+  "camera_id": "porch"') for line in audit.detail["diff"])


def test_invalid_edit_changes_nothing(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(1))
    entry = dlq.page(redis_client, DLQ).entries[0]
    outcome, errors = actions.edit_and_retry(redis_client, DLQ, entry.ref, '{"camera_id": 1', request=None)
    assert outcome is None and "not valid JSON" in errors[0]
    outcome, errors = actions.edit_and_retry(redis_client, DLQ, entry.ref, json.dumps({"x": 1}), request=None)
    assert outcome is None and len(errors) == 3
    assert redis_client.llen(DLQ) == 1 and not redis_client.exists(TARGET)
