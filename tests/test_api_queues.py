"""The queues/DLQ/archive JSON API against a real private Redis: shapes, paging, actions, permissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from console.models import ArchivedItem, AuditEntry
from queues import archive, dlq
from queues.codec import decode, encode_payload
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db

DLQ, TARGET = "dlq:detection_queue", "detection_queue"
MALFORMED, HOSTILE, NOT_UTF8 = b"not json {", b"<script>alert(1)</script>", b"\xff\xfe\x00\x9f binary"


def failure(n: int, *, camera: str | None = None) -> bytes:
    """A JobFailure as HSI's worker writes it; odd n fail with a detector error, even n a bad image."""
    return encode_payload(
        {
            "original_job": {"camera_id": camera or f"cam{n % 3}", "file_path": f"/export/{n}.jpg", "n": n},
            "error": "Detector unavailable: ConnectError" if n % 2 else "Invalid image: truncated JPEG",
            "error_type": "DetectorUnavailableError" if n % 2 else "ValueError",
            "attempt_count": 3,
            "first_failed_at": "2026-02-11T22:04:11+00:00",
            "last_failed_at": f"2026-02-11T22:{n % 60:02d}:14+00:00",
            "queue_name": TARGET,
        }
    )


def jobs_in(client: redis.Redis, key: str) -> list[int]:
    """The job numbers in a work queue."""
    return [decode(raw).value["n"] for raw in client.lrange(key, 0, -1)]


def failed_in(client: redis.Redis, key: str = DLQ) -> list[int]:
    """The job numbers of the (readable) failures in a DLQ."""
    return [(dlq.Entry.of(key, 0, raw).job or {})["n"] for raw in entries_of(client, key)]


def entries_of(client: redis.Redis, key: str) -> list[bytes]:
    return cast(list[bytes], client.lrange(key, 0, -1))


def url(kind: str, key: str = DLQ) -> str:
    encoded = quote(key, safe="")
    return {
        "items": f"/api/queues/{encoded}/items/",
        "retry": f"/api/dlq/{encoded}/retry/",
        "delete": f"/api/dlq/{encoded}/delete/",
    }[kind]


def post(client: Client, path: str, body: Any, **extra: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def refs(client: Client, *indexes: int) -> list[str]:
    items = client.get(url("items")).json()["items"]
    return [f"{items[i]['index']}:{items[i]['id']}" for i in indexes]


def snapshot(client: redis.Redis) -> dict[str, list[bytes]]:
    return {key: entries_of(client, key) for key in (DLQ, TARGET)}


@pytest.fixture
def operator_client(operator: User) -> Client:
    return logged_in(operator)


# --- Reading ------------------------------------------------------------------------------------


def test_queue_list_shape(viewer_client: Client, redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(1), failure(2))
    redis_client.rpush(TARGET, b'{"camera_id": "porch"}')
    response = viewer_client.get("/api/queues/")
    assert response.status_code == 200
    queues = {q["key"]: q for q in response.json()["queues"]}
    assert set(queues[DLQ]) == {
        "key",
        "kind",
        "type",
        "length",
        "source",
        "max_size",
        "fill_ratio",
        "oldest_age_seconds",
        "groups",
        "level",
        "alert",
        "change",
        "stored_type",
    }
    assert queues[DLQ] | {"oldest_age_seconds": None} == {
        "key": DLQ,
        "kind": "dlq",
        "type": "list",
        "length": 2,
        "source": TARGET,
        "max_size": 10000,
        "fill_ratio": 0.0002,
        "oldest_age_seconds": None,
        "groups": [],
        "level": "ok",
        "alert": None,
        "change": None,  # no relay sample: no trend
        "stored_type": None,
    }
    assert queues[DLQ]["oldest_age_seconds"] > 0
    assert (queues[TARGET]["kind"], queues[TARGET]["length"], queues[TARGET]["source"]) == ("queue", 1, None)


def test_queue_list_levels_say_when_hsi_stops_writing(
    viewer_client: Client, redis_client: redis.Redis
) -> None:
    redis_client.rpush(DLQ, failure(1), failure(2))
    redis_client.rpush(TARGET, b"{}", b"{}", b"{}", b"{}")
    redis_client.rpush("dlq:overflow:detection_queue", *[b"{}"] * 6)
    with override_settings(HSI_CONSOLE={"QUEUE_MAX_SIZE": 5}):
        queues = {q["key"]: q for q in viewer_client.get("/api/queues/").json()["queues"]}
    assert (queues[DLQ]["level"], queues[DLQ]["fill_ratio"], queues[DLQ]["alert"]) == ("ok", 0.4, None)
    assert queues[TARGET]["level"] == "filling" and queues[TARGET]["alert"].startswith("Filling up (4 of 5)")
    overflow = queues["dlq:overflow:detection_queue"]
    assert (overflow["max_size"], overflow["fill_ratio"], overflow["level"]) == (None, None, "ok")
    redis_client.rpush(DLQ, failure(3), failure(4), failure(5))
    with override_settings(HSI_CONSOLE={"QUEUE_MAX_SIZE": 5}):
        queues = {q["key"]: q for q in viewer_client.get("/api/queues/").json()["queues"]}
    assert queues[DLQ]["level"] == "full" and "drops failed jobs" in queues[DLQ]["alert"]


def test_items_shape_with_malformed_hostile_and_binary_entries(
    viewer_client: Client, redis_client: redis.Redis
) -> None:
    raws = [failure(1), failure(2), MALFORMED, HOSTILE, NOT_UTF8]
    redis_client.rpush(DLQ, *raws)
    response = viewer_client.get(url("items"))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    page = response.json()
    assert {k: page[k] for k in ("key", "total", "offset", "limit")} == {
        "key": DLQ,
        "total": 5,
        "offset": 0,
        "limit": 50,
    }
    items = page["items"]
    assert [(i["index"], i["id"], i["size"]) for i in items] == [
        (n, dlq.fingerprint(raw), len(raw)) for n, raw in enumerate(raws)
    ]
    assert items[0]["payload"]["original_job"]["n"] == 1 and items[0]["error"] is None
    assert items[0]["encoding"] == ["json"]
    for item in items[2:]:
        assert item["payload"] is None
        assert item["error"].startswith("not JSON")
    assert items[4]["encoding"] == ["binary"] and "UTF-8" in items[4]["error"]
    assert b"<script>" not in response.content


def test_items_paging_offset_limit_and_newest(viewer_client: Client, redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(130)])

    def page(query: str) -> Any:
        response = viewer_client.get(url("items") + query)
        assert response.status_code == 200
        return response.json()

    first = page("?offset=0&limit=100")
    assert first["total"] == 130 and len(first["items"]) == 100
    rest = page("?offset=100&limit=100")
    assert [i["payload"]["original_job"]["n"] for i in rest["items"]] == list(range(100, 130))
    newest = page("?order=newest&limit=3")
    assert [i["index"] for i in newest["items"]] == [129, 128, 127]
    assert [i["payload"]["original_job"]["n"] for i in newest["items"]] == [129, 128, 127]
    assert page("?order=newest&offset=128&limit=5")["items"][-1]["index"] == 0
    assert page("?offset=500")["items"] == []


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("order=sideways", "order"),
    ],
)
def test_bad_paging_params_are_400_with_a_sentence(
    viewer_client: Client, redis_client: redis.Redis, query: str, words: str
) -> None:
    response = viewer_client.get(f"{url('items')}?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request" and body["detail"].startswith(f"{words}: ")
    assert body["detail"].endswith(".")


def test_unknown_keys_are_404_and_stream_limits_are_explained(
    operator_client: Client, redis_client: redis.Redis
) -> None:
    redis_client.set("job:abc", b"{}")
    for response in (
        operator_client.get(url("items", "job:abc")),
        post(operator_client, url("retry", "job:abc"), {"all": True}),
        post(operator_client, url("delete", "orchestrator:x"), {"all": True}),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "unknown_key"
        assert "is not a queue or dead-letter queue" in response.json()["detail"]
    stream_dlq = post(operator_client, url("retry", "detections:stream:dlq"), {"all": True, "start": 5})
    assert stream_dlq.status_code == 400
    assert "continues from after" in stream_dlq.json()["detail"]
    deleted = post(operator_client, url("delete", "detections:stream:dlq"), {"ids": ["1:" + "ab" * 10]})
    assert deleted.status_code == 400 and "is not a stream entry id" in deleted.json()["detail"]
    queue = post(operator_client, url("retry", TARGET), {"all": True})
    assert queue.status_code == 400 and queue.json()["error"] == "not_a_dlq"
    assert not AuditEntry.objects.exists()


def test_keys_with_slashes_and_documented_layout(operator_client: Client, redis_client: redis.Redis) -> None:
    key = "hsi:queue:dlq:cams/porch"
    redis_client.rpush(key, failure(1))
    assert operator_client.get(url("items", key)).json()["total"] == 1
    response = post(operator_client, url("retry", key), {"all": True})
    assert response.json()["target"] == "hsi:queue:cams/porch"
    assert redis_client.llen("hsi:queue:cams/porch") == 1


def test_strict_json_for_nan_infinity_and_lone_surrogates(
    viewer_client: Client, redis_client: redis.Redis
) -> None:
    redis_client.rpush(DLQ, b'{"error": NaN, "n": [Infinity, -Infinity]}', b'{"error": "\\ud800 \\u001b[2J"}')
    response = viewer_client.get(url("items"))
    assert response.status_code == 200
    body = json.loads(response.content, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert body["items"][0]["payload"] == {"error": "NaN", "n": ["Infinity", "-Infinity"]}
    assert body["items"][1]["payload"]["error"] == "\ud800 \x1b[2J"
    response.content.decode("ascii")


def test_redis_down_is_503_with_the_sentence(viewer_client: Client, point_at: Any) -> None:
    point_at(url="redis://127.0.0.1:1")
    response = viewer_client.get("/api/queues/")
    assert response.status_code == 503
    assert response.json()["error"] == "redis_unavailable"
    assert "Connection refused" in response.json()["detail"]


# --- Retry --------------------------------------------------------------------------------------


def test_retry_by_ids_moves_exactly_those_and_is_audited(
    operator_client: Client, operator: User, redis_client: redis.Redis
) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(5)])
    chosen = refs(operator_client, 1, 3)
    response = post(operator_client, url("retry"), {"ids": chosen})
    assert response.status_code == 200
    result = response.json()
    assert result | {"audit_id": 0} == {
        "retried": 2,
        "skipped": 0,
        "target": TARGET,
        "skipped_reasons": {},
        "unmatched": 0,
        "put_back": 0,
        "full": False,
        "remaining": 0,
        "position": None,
        "audit_id": 0,
        "detail": f"Retried 2 of {DLQ} to {TARGET}.",
    }
    assert jobs_in(redis_client, TARGET) == [1, 3]
    assert failed_in(redis_client) == [0, 2, 4]
    audit = AuditEntry.objects.get(pk=result["audit_id"])
    assert (audit.action, audit.key, audit.count, audit.user, audit.username) == (
        "dlq.retry",
        DLQ,
        2,
        operator,
        "otto",
    )


def test_retry_bare_fingerprints_and_reports_what_was_not_found(
    operator_client: Client, redis_client: redis.Redis
) -> None:
    redis_client.rpush(DLQ, failure(1), MALFORMED, failure(3))
    items = operator_client.get(url("items")).json()["items"]
    gone = dlq.fingerprint(failure(99))
    response = post(operator_client, url("retry"), {"ids": [i["id"] for i in items] + [gone]})
    result = response.json()
    assert (result["retried"], result["skipped"]) == (2, 2)
    assert result["skipped_reasons"] == {
        "not JSON (text)": 1,
        "not found (already retried or deleted?)": 1,
    }
    assert redis_client.lrange(DLQ, 0, -1) == [MALFORMED]


def test_retry_all_with_filter_stops_when_full_then_continues_from_position(
    operator_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 40}
    redis_client.rpush(DLQ, *[failure(n) for n in range(200)])
    body = {"all": True, "filter": {"q": "detector unavailable"}, "start": 0}
    answers, retried = [], []
    while True:
        result = post(operator_client, url("retry"), body).json()
        answers.append(result)
        retried += jobs_in(redis_client, TARGET)
        redis_client.delete(TARGET)  # HSI's workers drain the queue between chunks
        if not result["remaining"]:
            break
        assert result["full"] and "is full (QUEUE_MAX_SIZE 40)" in result["detail"]
        body["start"] = result["position"]
    assert len(answers) == 3 and [a["retried"] for a in answers] == [40, 40, 20]
    assert retried == [n for n in range(200) if n % 2]
    assert failed_in(redis_client) == [n for n in range(200) if not n % 2]
    assert answers[-1]["position"] == 100 and not answers[-1]["full"]
    assert sum(a["unmatched"] for a in answers) == 100, "each call counts the even n it examined once"
    assert "100 did not match" not in answers[-1]["detail"], "a call's sentence counts that call only"
    trail = AuditEntry.objects.filter(action="dlq.retry_all").order_by("pk")
    assert [a.count for a in trail] == [40, 40, 20]
    assert trail[0].detail["filters"] == {"q": "detector unavailable"}


def test_a_run_ended_through_the_api_puts_the_dlq_back_in_its_old_order(
    operator_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0}
    redis_client.rpush(DLQ, *[failure(n) for n in range(600)])
    body: dict[str, Any] = {"all": True, "filter": {"q": "detector unavailable"}, "start": 0}
    first = post(operator_client, url("retry"), body).json()
    assert (first["retried"], first["position"], first["remaining"], first["put_back"]) == (125, 125, 350, 0)
    body |= {"start": first["position"], "unexamined": first["remaining"], "end": True}
    answers: list[dict[str, Any]] = []
    while not answers or answers[-1]["remaining"]:
        answers.append(post(operator_client, url("retry"), body).json())
        body |= {"start": answers[-1]["position"], "unexamined": answers[-1]["remaining"]}
    assert [(a["retried"], a["put_back"]) for a in answers] == [(0, 250), (0, 100)]
    assert "ended early: the 100 not examined went back" in answers[-1]["detail"]
    assert jobs_in(redis_client, TARGET) == list(range(1, 250, 2))
    assert failed_in(redis_client) == [*range(0, 250, 2), *range(250, 600)]


def test_end_applies_to_a_list_dlqs_run_only(operator_client: Client, redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(1))
    with_ids = post(operator_client, url("retry"), {"ids": ["0:" + "ab" * 10], "end": True})
    assert with_ids.status_code == 400
    assert "end only apply with all: true" in json.dumps(with_ids.json())
    stream = post(operator_client, url("retry", "detections:stream:dlq"), {"all": True, "end": True})
    assert stream.status_code == 400 and "no order to put back" in stream.json()["detail"]
    assert redis_client.lrange(DLQ, 0, -1) == [failure(1)] and redis_client.llen(TARGET) == 0


def test_full_target_stops_and_says_so(operator_client: Client, redis_client: redis.Redis, settings) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 5}
    redis_client.rpush(TARGET, *[b"existing"] * 3)
    redis_client.rpush(DLQ, *[failure(n) for n in range(4)])
    result = post(operator_client, url("retry"), {"ids": refs(operator_client, 0, 1, 2, 3)}).json()
    assert (result["retried"], result["full"]) == (2, True)
    assert f"stopped: {TARGET} is full (QUEUE_MAX_SIZE 5)" in result["detail"]
    assert redis_client.llen(TARGET) == 5 and redis_client.llen(DLQ) == 2


def test_repeated_nonce_is_409_and_nothing_moves_twice(
    operator_client: Client, redis_client: redis.Redis
) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(3)])
    body = {"all": True, "nonce": "form-7f3a"}
    assert post(operator_client, url("retry"), body).json()["retried"] == 3
    redis_client.rpush(DLQ, failure(10), failure(11))
    before = snapshot(redis_client)
    again = post(operator_client, url("retry"), body)
    assert again.status_code == 409
    assert again.json()["error"] == "duplicate_submission"
    assert again.json()["detail"].startswith("This action was already submitted")
    assert snapshot(redis_client) == before
    assert AuditEntry.objects.count() == 1


# --- Delete and restore -------------------------------------------------------------------------


def test_delete_archives_then_restore_puts_back_byte_identical(
    operator_client: Client, operator: User, redis_client: redis.Redis
) -> None:
    raws = [failure(0), NOT_UTF8, failure(2), HOSTILE]
    redis_client.rpush(DLQ, *raws)
    response = post(operator_client, url("delete"), {"ids": refs(operator_client, 1, 3)})
    result = response.json()
    assert {k: result[k] for k in ("deleted", "archived", "skipped", "remaining", "position")} == {
        "deleted": 2,
        "archived": 2,
        "skipped": 0,
        "remaining": 0,
        "position": None,
    }
    assert result["detail"] == f"Deleted 2 (archived) of {DLQ}."
    assert redis_client.lrange(DLQ, 0, -1) == [raws[0], raws[2]]
    rows = ArchivedItem.objects.order_by("pk")
    assert [(bytes(r.raw), r.state, r.key, r.deleted_by) for r in rows] == [
        (NOT_UTF8, "archived", DLQ, "otto"),
        (HOSTILE, "archived", DLQ, "otto"),
    ]
    audit = AuditEntry.objects.get(pk=result["audit_id"])
    assert (audit.action, audit.key, audit.count, audit.user) == ("dlq.delete", DLQ, 2, operator)

    listed = operator_client.get(f"/api/archive/?key={quote(DLQ)}").json()["items"]
    assert [i["id"] for i in listed] == [r.pk for r in reversed(rows)]
    assert listed[0]["fingerprint"] == dlq.fingerprint(HOSTILE) and listed[0]["state"] == "archived"
    restored = post(operator_client, "/api/archive/restore/", {"ids": [i["id"] for i in listed]})
    assert restored.status_code == 200 and restored.json() == {"restored": 2, "not_restored": 0}
    assert sorted(redis_client.lrange(DLQ, 0, -1)) == sorted(raws)
    assert set(ArchivedItem.objects.values_list("state", "restored_by")) == {("restored", "otto")}
    audit = AuditEntry.objects.get(action="archive.restore")
    assert (audit.count, audit.user) == (2, operator)
    again = post(operator_client, "/api/archive/restore/", {"ids": [i["id"] for i in listed]})
    assert again.json() == {"restored": 0, "not_restored": 2}
    assert redis_client.llen(DLQ) == 4


def test_delete_all_matching_and_restore_to_source(
    operator_client: Client, redis_client: redis.Redis
) -> None:
    redis_client.rpush(DLQ, *[failure(n, camera="porch" if n < 3 else "yard") for n in range(6)])
    body = {"all": True, "filter": {"camera": "porch", "since": "2026-02-11T22:01"}}
    result = post(operator_client, url("delete"), body).json()
    assert (result["deleted"], result["remaining"], result["position"]) == (2, 0, 4)
    assert result["unmatched"] == 4 and "4 did not match the filter (left in place)" in result["detail"]
    assert failed_in(redis_client) == [0, 3, 4, 5]
    ids = list(ArchivedItem.objects.values_list("pk", flat=True))
    restored = post(operator_client, "/api/archive/restore/", {"ids": ids, "to_source": True}).json()
    assert restored == {"restored": 2, "not_restored": 0}
    assert jobs_in(redis_client, TARGET) == [1, 2]


def test_a_delete_in_steps_is_undone_as_one(
    operator_client: Client, viewer_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    """The client sends the first answer's deletion with every later step; restore-all with it
    puts back exactly that delete's entries, not those of another delete of the same DLQ."""
    raws = [failure(n) for n in range(700)]
    redis_client.rpush(DLQ, *raws)
    head = dlq.page(redis_client, DLQ, 0, 1).entries[0].ref  # n=0
    other = post(operator_client, url("delete"), {"ids": [head]}).json()
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0.001}  # one batch per step
    first = post(operator_client, url("delete"), {"all": True, "filter": {"camera": "cam1"}}).json()
    deletion, position = first["deletion"], first["position"]
    assert other["deleted"] == 1 and other["deletion"] != deletion
    assert first["deleted"] < 233 and first["remaining"] > 0, "the delete takes several steps"
    steps = 1
    while True:
        body = {"all": True, "filter": {"camera": "cam1"}, "start": position, "deletion": deletion}
        step = post(operator_client, url("delete"), body).json()
        assert step["deletion"] == deletion
        position, steps = step["position"], steps + 1
        if not step["remaining"]:
            break
    assert steps >= 2 and ArchivedItem.objects.filter(deletion=deletion).count() == 233
    rows = viewer_client.get(f"/api/archive/?deletion={deletion}").json()["items"]
    assert len(rows) == 100 and {r["deletion"] for r in rows} == {deletion}
    bad = post(operator_client, url("delete"), {"ids": [head], "deletion": "x"})
    assert bad.status_code == 400 and "deletion" in bad.json()["detail"]
    scope = {"key": DLQ, "deletion": deletion}
    assert post(viewer_client, "/api/archive/restore-all/", scope).status_code == 403
    assert restore_all(operator_client, scope) == 233
    cam1 = [raw for n, raw in enumerate(raws) if n % 3 == 1]
    assert redis_client.lrange(DLQ, -233, -1) == cam1 and redis_client.llen(DLQ) == 699
    still = ArchivedItem.objects.filter(state="archived")
    assert [row.deletion for row in still] == [other["deletion"]], "the other delete stays archived"
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 3}
    assert post(operator_client, url("delete"), {"all": True}).json()["deleted"] == 699
    odd = {"key": DLQ, "filter": {"q": "Detector"}, "to_source": True}  # the odd n fail that way
    assert restore_all(operator_client, odd) == 350
    assert sorted(jobs_in(redis_client, TARGET)) == list(range(1, 700, 2))
    assert ArchivedItem.objects.filter(state="archived").count() == 350, "the even n and the first delete"


def test_an_api_run_that_sends_unexamined_reaches_every_match(
    operator_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    """Someone deletes entries the run has left at the tail: with the previous answer's remaining
    sent back as unexamined, the run still examines (and here deletes) every match."""
    redis_client.rpush(DLQ, *[failure(n) for n in range(700)])
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0}  # one batch per step
    body: dict[str, Any] = {"all": True, "filter": {"camera": "cam1"}}
    answer = post(operator_client, url("delete"), body).json()
    deleted, length = answer["deleted"], redis_client.llen(DLQ)
    tail = dlq.page(redis_client, DLQ, length - 5, 5).entries
    assert answer["position"] >= 5 and all((e.job or {}).get("camera_id") != "cam1" for e in tail)
    assert post(operator_client, url("delete"), {"ids": [e.ref for e in tail]}).json()["deleted"] == 5
    while answer["remaining"]:
        body |= {
            "start": answer["position"],
            "unexamined": answer["remaining"],
            "deletion": answer["deletion"],
        }
        answer = post(operator_client, url("delete"), body).json()
        deleted += answer["deleted"]
    assert deleted == 233 and all(n % 3 != 1 for n in failed_in(redis_client))
    bad = post(operator_client, url("delete"), {"ids": [tail[0].ref], "unexamined": 3})
    assert bad.status_code == 400 and "only apply with all" in bad.json()["detail"]


def test_a_run_with_hsi_failing_meanwhile_examines_each_entry_once_and_keeps_their_order(
    operator_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    """HSI appends new failures while a filtered retry runs step by step: the run examines exactly
    the entries it began with (each once: the counts add up), and those it leaves keep their order."""
    redis_client.rpush(DLQ, *[failure(n) for n in range(1_000)])
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "BULK_CHUNK_SECONDS": 0}  # one batch per step
    body: dict[str, Any] = {"all": True, "filter": {"q": "detector unavailable"}}  # the odd n
    answers: list[dict[str, Any]] = []
    while not answers or answers[-1]["remaining"]:
        answers.append(post(operator_client, url("retry"), body).json())
        step = len(answers)
        redis_client.rpush(DLQ, *[failure(n) for n in range(10_000 * step, 10_000 * step + 20)])
        body |= {"start": answers[-1]["position"], "unexamined": answers[-1]["remaining"]}
    assert len(answers) == 4 and sum(a["retried"] for a in answers) == 500
    assert sum(a["unmatched"] for a in answers) == 500, "each entry it began with examined once"
    left = failed_in(redis_client)
    assert [n for n in left if n < 1_000] == list(range(0, 1_000, 2)), "kept in their old order"
    assert len(left) == 500 + 80 and jobs_in(redis_client, TARGET) == list(range(1, 1_000, 2))


def restore_all(client: Client, body: dict[str, Any]) -> int:
    """Restore-all step after step, as a client does; how many entries went back."""
    restored, after = 0, 0
    while True:
        answer = post(client, "/api/archive/restore-all/", body | {"after": after}).json()
        restored, after = restored + int(answer["restored"]), answer["after"]
        if not answer["remaining"]:
            return restored


def test_restore_all_steps_through_a_dlqs_archive(
    operator_client: Client, redis_client: redis.Redis, settings: Any
) -> None:
    raws = [failure(n) for n in range(300)]
    redis_client.rpush(DLQ, *raws, MALFORMED)
    assert post(operator_client, url("delete"), {"all": True}).json()["deleted"] == 301
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 200}
    step = post(operator_client, "/api/archive/restore-all/", {"key": DLQ, "to_source": True}).json()
    assert step | {"after": 0, "audit_id": 0} == {
        "restored": 200,
        "not_restored": 0,
        "target": TARGET,
        "full": True,
        "after": 0,
        "remaining": 101,
        "not_matching": 0,
        "audit_id": 0,
    }
    assert jobs_in(redis_client, TARGET) == list(range(200))
    audit = AuditEntry.objects.get(pk=step["audit_id"])
    assert (audit.action, audit.key, audit.count, audit.detail["to"]) == (
        "archive.restore_all",
        DLQ,
        200,
        TARGET,
    )
    redis_client.delete(TARGET)  # HSI's workers took them
    rest = post(
        operator_client, "/api/archive/restore-all/", {"key": DLQ, "to_source": True, "after": step["after"]}
    ).json()
    assert (rest["restored"], rest["not_restored"], rest["full"], rest["remaining"]) == (100, 1, False, 0)
    assert jobs_in(redis_client, TARGET) == list(range(200, 300))
    assert bytes(ArchivedItem.objects.get(state="archived").raw) == MALFORMED, "no job: stays archived"
    back = post(operator_client, "/api/archive/restore-all/", {"key": DLQ}).json()
    assert (back["restored"], back["target"], redis_client.lrange(DLQ, 0, -1)) == (1, DLQ, [MALFORMED])
    refused = post(operator_client, "/api/archive/restore-all/", {"key": TARGET})
    assert refused.status_code == 400 and refused.json()["error"] == "not_a_dlq"


def test_archive_list_pages_with_before_and_searches_with_a_filter(
    viewer_client: Client, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = [failure(n) for n in range(250)] + [b"\xff not json", b"<script>x</script>"]
    ArchivedItem.objects.bulk_create(
        ArchivedItem(key=DLQ, raw=raw, fingerprint=dlq.fingerprint(raw), size=len(raw), state="archived")
        for raw in raws
    )
    seen: list[int] = []
    query = ""
    while True:
        answer = viewer_client.get(f"/api/archive/?key={quote(DLQ)}{query}").json()
        seen += [item["id"] for item in answer["items"]]
        assert answer["searched"] is None and len(answer["items"]) <= 100
        if answer["next_before"] is None:
            break
        query = f"&before={answer['next_before']}"
    assert seen == sorted(ArchivedItem.objects.values_list("pk", flat=True), reverse=True)
    monkeypatch.setattr(archive, "SEARCH_ROWS", 60)  # a search request examines at most 60 rows
    cam2: list[int] = []
    query = "&camera=cam2"
    while True:
        answer = viewer_client.get(f"/api/archive/?key={quote(DLQ)}{query}").json()
        cam2 += [item["id"] for item in answer["items"]]
        assert answer["searched"] <= 60
        if answer["next_before"] is None:
            break
        query = f"&camera=cam2&before={answer['next_before']}"
    wanted = [
        row.pk for row in ArchivedItem.objects.order_by("-id") if b'"camera_id": "cam2"' in bytes(row.raw)
    ]
    assert cam2 == wanted and len(wanted) == 83
    bad = viewer_client.get(f"/api/archive/?key={quote(DLQ)}&since=yesterday")
    assert bad.status_code == 400 and "'since' must be a date and time" in bad.json()["detail"]


def test_archive_list_is_newest_first_and_bounded(viewer_client: Client, redis_client: redis.Redis) -> None:
    ArchivedItem.objects.bulk_create(
        ArchivedItem(
            key=DLQ if n % 2 else "dlq:analysis_queue", raw=b"x", fingerprint="f", size=1, state="archived"
        )
        for n in range(130)
    )
    items = viewer_client.get("/api/archive/").json()["items"]
    assert len(items) == 100 and items[0]["id"] > items[-1]["id"]
    assert set(items[0]) == {
        "id",
        "key",
        "fingerprint",
        "size",
        "state",
        "deleted_at",
        "deleted_by",
        "restored_at",
        "restored_by",
        "restored_to",
        "kind",
        "entry_id",
        "deletion",
    }
    assert items[0]["kind"] == "list" and items[0]["entry_id"] == ""
    only = viewer_client.get(f"/api/archive/?key={quote(DLQ)}").json()["items"]
    assert len(only) == 65 and {i["key"] for i in only} == {DLQ}


# --- Permissions and authentication -------------------------------------------------------------


POSTS = [
    ("retry", {"all": True}),
    ("retry", {"ids": ["0:" + "0" * 20]}),
    ("delete", {"all": True}),
    ("restore", {"ids": [1]}),
    ("restore-all", {"key": DLQ}),
]


def _post_path(kind: str) -> str:
    return f"/api/archive/{kind}/" if kind.startswith("restore") else url(kind)


@pytest.mark.parametrize(("kind", "body"), POSTS)
def test_viewer_gets_403_for_every_post_and_nothing_changes(
    viewer_client: Client, redis_client: redis.Redis, kind: str, body: dict[str, Any]
) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(3)])
    ArchivedItem.objects.create(key=DLQ, raw=failure(9), fingerprint="f", size=1, state="archived")
    before = snapshot(redis_client)
    response = post(viewer_client, _post_path(kind), body)
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert "permission (Operator or Admin role)" in response.json()["detail"]
    assert snapshot(redis_client) == before
    assert redis_client.llen(DLQ) == 3 and not redis_client.exists(TARGET)
    assert list(ArchivedItem.objects.values_list("state", flat=True)) == ["archived"]
    assert not AuditEntry.objects.exists()


def test_anonymous_and_roleless_are_refused(
    client: Client, roleless: User, redis_client: redis.Redis
) -> None:
    redis_client.rpush(DLQ, failure(1))
    for path in ("/api/queues/", url("items"), "/api/archive/", "/api/schema/"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"] == "not_authenticated"
        assert logged_in(roleless).get(path).status_code == 403, path
    for kind, body in POSTS:
        assert post(client, _post_path(kind), body).status_code == 401
        assert post(logged_in(roleless), _post_path(kind), body).status_code == 403
    assert redis_client.llen(DLQ) == 1


def test_token_auth_works_for_reads_and_actions(operator: User, redis_client: redis.Redis) -> None:
    token = Token.objects.create(user=operator)
    header = f"Token {token.key}"
    redis_client.rpush(DLQ, failure(1))
    api = Client(enforce_csrf_checks=True)
    assert api.get("/api/queues/", HTTP_AUTHORIZATION=header).status_code == 200
    result = post(api, url("retry"), {"all": True}, HTTP_AUTHORIZATION=header)
    assert result.status_code == 200 and result.json()["retried"] == 1
    assert AuditEntry.objects.get().user == operator
    assert api.get("/api/queues/", HTTP_AUTHORIZATION="Token nope").status_code == 401


# --- Bad bodies ---------------------------------------------------------------------------------


FP = "0:" + "a" * 20


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({}, "Send either ids or all: true"),
        ({"ids": []}, "Send either ids or all: true"),
        ({"ids": [FP], "all": True}, "Send either ids or all: true"),
        ({"all": False}, "Send either ids or all: true"),
        ({"ids": ["zz"]}, "ids: 'zz' is not an entry id"),
        ({"ids": FP}, "ids: Expected a list of items"),
        ({"ids": [FP], "filter": {"q": "x"}}, "filter, start, unexamined and end only apply with all: true"),
        ({"all": "maybe"}, "all: Must be a valid boolean"),
        ({"all": True, "start": -1}, "start: Ensure this value is greater than or equal to 0"),
        ({"all": True, "filter": {"since": "yesterday"}}, "'since' must be a date and time"),
        ({"all": True, "filter": {"q": ["x"]}}, "filter.q: Not a valid string"),
        ({"ids": [FP] * 1001}, "ids: Ensure this field has no more than 1000 elements"),
        ([1, 2], "Invalid data. Expected a dictionary"),
    ],
)
@pytest.mark.parametrize("verb", ["retry", "delete"])
def test_bad_action_bodies_are_400_with_a_sentence(
    operator_client: Client, redis_client: redis.Redis, verb: str, body: Any, sentence: str
) -> None:
    redis_client.rpush(DLQ, failure(1))
    response = post(operator_client, url(verb), body)
    assert response.status_code == 400
    assert response.json()["error"] in {"bad_request", "bad_filter"}
    assert sentence in response.json()["detail"]
    assert redis_client.llen(DLQ) == 1 and not AuditEntry.objects.exists()


def test_unparseable_bodies_are_400(operator_client: Client, redis_client: redis.Redis) -> None:
    response = operator_client.post(url("retry"), "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "parse_error"
    assert response.json()["detail"].startswith("JSON parse error")
    for body, sentence in [({"ids": []}, "ids: "), ({"ids": ["one"]}, "ids[0]: A valid integer")]:
        response = post(operator_client, "/api/archive/restore/", body)
        assert response.status_code == 400 and response.json()["detail"].startswith(sentence)


def test_json_nested_too_deeply_is_a_400_not_a_500(
    operator_client: Client, redis_client: redis.Redis
) -> None:
    """DRF's parser catches only ``ValueError``; JSON deeper than Python can read raises
    ``RecursionError``, which was a 500 page on every POST of the API."""
    redis_client.rpush(DLQ, failure(1))
    deep = "[" * 200_000 + "]" * 200_000
    for address in (url("retry"), url("delete"), "/api/archive/restore/"):
        response = operator_client.post(address, deep, content_type="application/json")
        assert response.status_code == 400, address
        assert response.json() == {
            "error": "parse_error",
            "detail": "JSON parse error - nested too deeply to read.",
        }
    assert redis_client.llen(DLQ) == 1 and not AuditEntry.objects.exists()


# --- Schema -------------------------------------------------------------------------------------


def test_schema_is_json_for_viewers(viewer_client: Client, redis_client: redis.Redis) -> None:
    response = viewer_client.get("/api/schema/")
    assert response.status_code == 200
    schema = json.loads(response.content)
    retry = schema["paths"]["/api/dlq/{key}/retry/"]["post"]
    assert "start" in retry["description"] and "position" in retry["description"]
    assert set(retry["responses"]) >= {"200", "400", "403", "404", "409"}
    assert "/api/queues/{key}/items/" in schema["paths"] and "/api/archive/restore/" in schema["paths"]
    assert viewer_client.get("/api/schema/?format=yaml").content.startswith(b"openapi:")


# --- Arbitrary bytes ----------------------------------------------------------------------------

ENTRIES = st.lists(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=80).map(lambda t: f"<script>{t}</script>".encode("utf-8", "surrogatepass")),
        st.text(max_size=80).map(lambda t: json.dumps({"error": t, "x": [t]}).encode()),
    ),
    min_size=1,
    max_size=8,
)


@hypothesis_settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raws=ENTRIES)
def test_items_answer_json_for_any_bytes(viewer: User, redis_client: redis.Redis, raws: list[bytes]) -> None:
    redis_client.delete(DLQ)
    redis_client.rpush(DLQ, *raws)
    response = logged_in(viewer).get(url("items"))
    assert response.status_code == 200
    body = json.loads(response.content.decode("ascii"), parse_constant=lambda c: pytest.fail(c))
    assert [i["id"] for i in body["items"]] == [dlq.fingerprint(raw) for raw in raws]
    assert all(i["payload"] is None or isinstance(i["payload"], dict | list) for i in body["items"])


def test_openapi_schema_validates_without_warnings(tmp_path: Path) -> None:
    schema = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema))
    text = schema.read_text()
    assert "/api/dlq/{key}/retry/" in text and "/api/redis/overview" in text


def test_stream_dlq_pages_by_id_and_retries_by_id(operator_client: Client, redis_client: redis.Redis) -> None:
    ids = [
        redis_client.xadd("detections:stream:dlq", {"camera_id": "porch", "n": str(n), "dlq_reason": "x"})
        for n in range(5)
    ]
    first = operator_client.get(url("items", "detections:stream:dlq") + "?limit=2").json()
    assert [item["fields"]["n"] for item in first["items"]] == ["0", "1"] and first["total"] == 5
    rest = operator_client.get(
        url("items", "detections:stream:dlq") + f"?limit=10&after={first['next_after']}"
    )
    assert [item["fields"]["n"] for item in rest.json()["items"]] == ["2", "3", "4"]
    chosen = [dlq.as_bytes(ids[1]).decode(), dlq.as_bytes(ids[3]).decode()]
    answer = post(operator_client, url("retry", "detections:stream:dlq"), {"ids": chosen})
    assert answer.status_code == 200 and answer.json()["retried"] == 2
    moved: Any = redis_client.xrange("detections:stream")
    assert [fields[b"n"] for _, fields in moved] == [b"1", b"3"]
    assert all(b"dlq_reason" not in fields for _, fields in moved)
    assert redis_client.xlen("detections:stream:dlq") == 3
    assert AuditEntry.objects.get(action="dlq.retry").count == 2
