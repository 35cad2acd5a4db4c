"""``manage.py dlq``: list, show, retry, delete and export against a real private Redis."""

from __future__ import annotations

import base64
import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import CommandError, call_command
from django.test import override_settings

from console.models import ArchivedItem, AuditEntry
from queues import dlq, inventory
from tests.test_api_queues import DLQ, HOSTILE, MALFORMED, NOT_UTF8, TARGET, failed_in, failure, jobs_in

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("dlq", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@override_settings(HSI_CONSOLE={"QUEUE_MAX_SIZE": 2})
def test_list_shows_every_queue_with_length_fill_and_source(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(1), failure(2))
    redis_client.rpush("dlq:overflow:analysis_queue", b"{}", b"{}", b"{}")
    out, err = StringIO(), StringIO()
    call_command("dlq", "list", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["KEY", "KIND", "TYPE", "LENGTH", "FILL", "SOURCE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows[DLQ] == ["dlq", "list", "2", "100%", TARGET]
    assert rows["dlq:overflow:analysis_queue"] == ["dlq", "list", "3", "-", "analysis_queue"], "no limit"
    assert rows[TARGET] == ["queue", "list", "0", "0%", "-"]
    assert err.getvalue().splitlines() == [f"{DLQ}: {inventory.of_length(DLQ, 2).alert}"]
    assert "HSI rejects every new failure" in err.getvalue()


def test_show_one_line_per_entry_with_problems_and_no_escape_sequences(redis_client: redis.Redis) -> None:
    hostile = {**json.loads(failure(3)), "error": "\x1b[2J wiped"}
    redis_client.rpush(DLQ, failure(1), MALFORMED, NOT_UTF8, json.dumps(hostile), b'{"error": "x"}')
    lines = run("show", DLQ).splitlines()
    assert lines[0] == f"{DLQ}: 5 entries; 5 shown, oldest first."
    first = lines[1].split()
    assert first[:3] == ["0", dlq.fingerprint(failure(1)), str(len(failure(1)))]
    assert "json" in lines[1] and "camera=cam1 error=Detector unavailable: ConnectError" in lines[1]
    assert lines[2].endswith("unreadable: not JSON (text)")
    assert "binary" in lines[3] and "not UTF-8" in lines[3]
    assert "\x1b" not in lines[4] and lines[4].endswith("camera=cam0 error=?[2J wiped")
    assert "unreadable: missing original_job, attempt_count" in lines[5] and len(lines[5]) < 160


def test_show_pages_and_newest_first(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(30)])
    lines = run("show", DLQ, "--offset", "5", "--limit", "3", "--newest").splitlines()
    assert lines[0] == f"{DLQ}: 30 entries; 3 shown, newest first."
    assert [int(line.split()[0]) for line in lines[1:]] == [24, 23, 22]
    with pytest.raises(CommandError, match="--limit between 1 and 100"):
        run("show", DLQ, "--limit", "500")


def test_retry_ids_moves_exactly_those_as_system(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(4)])
    entries = dlq.page(redis_client, DLQ).entries
    out = run("retry", DLQ, "--ids", entries[1].ref, entries[2].id)
    assert out.strip() == f"Retried 2 of {DLQ} to {TARGET}."
    assert jobs_in(redis_client, TARGET) == [1, 2] and failed_in(redis_client) == [0, 3]
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.key, audit.count, audit.username, audit.user) == (
        "dlq.retry",
        DLQ,
        2,
        "system",
        None,
    )


def test_retry_all_with_filter_loops_until_done(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(1500)], MALFORMED)
    out = run("retry", DLQ, "--all", "--q", "Invalid image", "--since", "2026-02-11T22:10")
    expected = [n for n in range(1500) if n % 2 == 0 and n % 60 >= 10]
    unmatched = 1501 - len(expected)  # the malformed entry matches no error text either
    assert out.strip() == (
        f"Retried {len(expected)} of {DLQ} to {TARGET}; "
        f"{unmatched:,} did not match the filter (left in place)."
    )
    assert jobs_in(redis_client, TARGET) == expected
    assert redis_client.llen(DLQ) == 1501 - len(expected)


def test_retry_all_stops_when_the_target_is_full(redis_client: redis.Redis, settings: Any) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 10}
    redis_client.rpush(DLQ, *[failure(n) for n in range(25)], MALFORMED)
    out = run("retry", DLQ, "--all")
    assert out.startswith(f"Retried 10 of {DLQ} to {TARGET}; stopped: {TARGET} is full (QUEUE_MAX_SIZE 10)")
    # The malformed entry lies beyond the stop, still ahead: it is neither skipped nor passed over.
    assert "skipped" not in out and "16 not examined yet" in out
    assert redis_client.llen(TARGET) == 10 and redis_client.llen(DLQ) == 16


def test_a_filtered_retry_that_fills_its_target_puts_the_dlq_back_in_order(
    redis_client: redis.Redis, settings: Any
) -> None:
    """A command cannot be continued, so one that stops early ends its run: the even n it examined
    and left go back ahead of those it did not examine."""
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 10}
    redis_client.rpush(DLQ, *[failure(n) for n in range(600)])
    out = run("retry", DLQ, "--all", "--q", "detector unavailable")
    assert out.strip() == (
        f"Retried 10 of {DLQ} to {TARGET}; stopped: {TARGET} is full (QUEUE_MAX_SIZE 10); "
        "11 did not match the filter (left in place); ended early: the 579 not examined went back "
        "behind the others, so the DLQ is in its old order."
    )
    assert jobs_in(redis_client, TARGET) == list(range(1, 21, 2))
    assert failed_in(redis_client) == [*range(0, 21, 2), *range(21, 600)]
    ended = AuditEntry.objects.filter(action="dlq.retry_all", detail__ended=True)
    assert sum(entry.detail["put_back"] for entry in ended) == 579


def test_delete_all_archives_each_entry(redis_client: redis.Redis) -> None:
    raws = [failure(n) for n in range(5)] + [NOT_UTF8, HOSTILE]
    redis_client.rpush(DLQ, *raws)
    out = run("delete", DLQ, "--all", "--camera", "cam1")
    deletion = ArchivedItem.objects.first().deletion  # type: ignore[union-attr]
    assert out.splitlines() == [
        f"Deleted 2 (archived) of {DLQ}; 5 did not match the filter (left in place).",
        f"Undo: manage.py dlq restore {DLQ} --deletion {deletion}",
    ]
    assert sorted(bytes(raw) for raw in ArchivedItem.objects.values_list("raw", flat=True)) == sorted(
        [failure(1), failure(4)]
    )
    assert set(ArchivedItem.objects.values_list("state", "deleted_by")) == {("archived", "system")}
    second = run("delete", DLQ, "--all").splitlines()
    assert second[0] == f"Deleted 5 (archived) of {DLQ}." and deletion not in second[1]
    assert redis_client.llen(DLQ) == 0 and ArchivedItem.objects.count() == 7
    assert [a.action for a in AuditEntry.objects.order_by("pk")] == ["dlq.delete_all", "dlq.delete_all"]
    # The first delete's undo line, run as printed: exactly its two entries come back, in order.
    undo = ("restore", DLQ, "--deletion", deletion)
    assert run(*undo).strip() == f"Restored 2 archived entries of {DLQ} to {DLQ}."
    assert redis_client.lrange(DLQ, 0, -1) == [failure(1), failure(4)]
    assert ArchivedItem.objects.filter(state="archived").count() == 5
    assert run(*undo).strip() == f"Restored 0 archived entries of {DLQ} to {DLQ}.", "an undo runs once"
    with pytest.raises(CommandError, match="is not a delete's id"):
        run("restore", DLQ, "--deletion", "../etc")
    # The rest of the archive, only the entries of camera cam0, as jobs to the source queue.
    said = run("restore", DLQ, "--camera", "cam0", "--to-source").strip()
    left = "3 left archived (not matching the filter)"
    assert said == f"Restored 2 archived entries of {DLQ} to {TARGET}; {left}."
    assert sorted(jobs_in(redis_client, TARGET)) == [0, 3]


def test_export_ndjson_round_trips_raw_bytes(redis_client: redis.Redis, tmp_path: Path) -> None:
    raws = [failure(n) for n in range(2300)] + [MALFORMED, HOSTILE, NOT_UTF8, b"", b'{"x": NaN}']
    redis_client.rpush(DLQ, *raws)
    output = tmp_path / "dlq.ndjson"
    err = StringIO()
    call_command("dlq", "export", DLQ, "--output", str(output), stdout=StringIO(), stderr=err)
    assert err.getvalue().strip() == f"Exported {len(raws)} entries of {DLQ} to {output}."
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [base64.b64decode(r["raw_b64"]) for r in records] == raws
    assert [r["id"] for r in records] == [dlq.fingerprint(raw) for raw in raws]
    assert [r["index"] for r in records] == list(range(len(raws)))
    assert records[0]["payload"]["original_job"]["n"] == 0 and records[-1]["payload"] == {"x": "NaN"}
    assert records[-4]["error"].startswith("not JSON") and records[-4]["payload"] is None
    assert redis_client.llen(DLQ) == len(raws), "export never changes the DLQ"


def test_export_to_stdout(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, failure(1), NOT_UTF8)
    lines = run("export", DLQ).splitlines()
    assert [base64.b64decode(json.loads(line)["raw_b64"]) for line in lines] == [failure(1), NOT_UTF8]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "job:abc"), "is not a queue or dead-letter queue"),
        (("show", "detections:stream"), "show and export handle lists only"),
        (("export", "detections:stream"), "show and export handle lists only"),
        (("retry", "detections:stream:dlq", "--ids", "1-0", "--camera", "cam1"), "only apply with --all"),
        (("retry", TARGET, "--all"), "not a dead-letter queue"),
        (("delete", DLQ, "--all", "--since", "last week"), "'since' must be a date and time"),
        (("retry", DLQ, "--ids", "abc", "--camera", "cam1"), "only apply with --all"),
    ],
)
def test_refusals_are_command_errors(redis_client: redis.Redis, args: tuple[str, ...], message: str) -> None:
    redis_client.rpush(DLQ, failure(1))
    with pytest.raises(CommandError, match=re.escape(message)):
        run(*args)
    assert redis_client.llen(DLQ) == 1 and not AuditEntry.objects.exists()


def test_ids_and_all_are_exclusive(redis_client: redis.Redis) -> None:
    with pytest.raises(CommandError, match="not allowed with argument"):
        run("retry", DLQ, "--all", "--ids", "abc")
    with pytest.raises(CommandError, match="one of the arguments --ids --all is required"):
        run("delete", DLQ)


def test_redis_down_is_explained(point_at: Any) -> None:
    point_at(url="redis://127.0.0.1:1")
    with pytest.raises(CommandError, match=re.escape("Connection refused by 127.0.0.1:1")):
        run("list")
