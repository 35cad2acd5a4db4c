"""Deleting stale job keys archived first, restoring them, and the DLQ archive leaving them alone."""

from __future__ import annotations

import re

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.models import ArchivedItem, AuditEntry
from queues import actions, archive, jobs, jobs_archive
from queues.scripts import fence, new_token
from tests.conftest import logged_in
from tests.job_fixtures import put_status, put_tracker, stored

ORPHAN = "0a0b0c0d-1111-4a8e-9a6e-0c1f7d0b9e21"


@pytest.fixture
def operator_client(operator: User) -> Client:
    return logged_in(operator)


def form_of(html: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    assert "nonce" in fields
    return fields


def test_delete_a_finished_key_without_ttl_then_restore_it(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    put_tracker(redis_client, ORPHAN, "completed", progress=100)  # no TTL: stale
    before = redis_client.get(f"job:{ORPHAN}")
    detail = operator_client.get(f"/jobs/{ORPHAN}/").content.decode()
    assert 'data-testid="delete-link"' in detail
    confirm = operator_client.get(f"/jobs/{ORPHAN}/delete/?source=tracker")
    assert confirm.status_code == 200 and b"archived first" in confirm.content
    response = operator_client.post(f"/jobs/{ORPHAN}/delete/", form_of(confirm.content.decode()))
    assert response.status_code == 302 and response["Location"] == "/jobs/archive/"
    assert redis_client.exists(f"job:{ORPHAN}") == 0
    row = ArchivedItem.objects.get(key=f"job:{ORPHAN}")
    assert row.state == "archived" and row.kind == ArchivedItem.Kind.JOB and bytes(row.raw) == before
    assert row.get_kind_display() == "job key (exact value)"  # a real choice, not a bare code
    assert AuditEntry.objects.get(action="job_delete").detail["archive_id"] == row.pk
    page = operator_client.get("/jobs/archive/").content.decode()
    assert f"job:{ORPHAN}" in page and f"/jobs/archive/{row.pk}/restore/" in page
    assert '<td data-testid="kind">job key (exact value)</td>' in page
    restore_form = operator_client.get(f"/jobs/archive/{row.pk}/restore/")
    assert restore_form.status_code == 200
    done = operator_client.post(f"/jobs/archive/{row.pk}/restore/", form_of(restore_form.content.decode()))
    assert done.status_code == 302
    assert redis_client.get(f"job:{ORPHAN}") == before and redis_client.ttl(f"job:{ORPHAN}") == -1
    row.refresh_from_db()
    assert row.state == "restored" and row.restored_by == "otto"
    assert AuditEntry.objects.filter(action="job_restore", count=1).exists()


def test_restore_never_overwrites_a_key_hsi_wrote_since(redis_client: redis.Redis, operator: User) -> None:
    put_tracker(
        redis_client,
        ORPHAN,
        "running",
        created_at="2020-01-01T00:00:00+00:00",
        started_at="2020-01-01T00:00:01",
    )
    job = jobs.pick(redis_client, ORPHAN)
    row, _ = jobs_archive.delete_stale(redis_client, job, username="otto")
    put_tracker(redis_client, ORPHAN, "running", progress=90)  # the worker was alive after all
    assert jobs_archive.restore(redis_client, row.pk, username="otto") is False
    assert stored(redis_client, f"job:{ORPHAN}")["progress"] == 90
    row.refresh_from_db()
    assert row.state == "archived"  # still restorable later


def test_expired_index_entries_are_removed_and_restored(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    put_status(redis_client, ORPHAN, "completed")
    redis_client.delete(f"job:{ORPHAN}:status")
    scores = {index: redis_client.zscore(index, ORPHAN) for index in ("job:status:list", "jobs:completed")}
    confirm = operator_client.get(f"/jobs/{ORPHAN}/delete/?source=status")
    assert confirm.status_code == 200 and b"expired job" in confirm.content
    assert (
        operator_client.post(f"/jobs/{ORPHAN}/delete/", form_of(confirm.content.decode())).status_code == 302
    )
    assert redis_client.zscore("job:status:list", ORPHAN) is None
    assert redis_client.zscore("jobs:completed", ORPHAN) is None
    row = ArchivedItem.objects.get(kind="jobindex")
    assert '<td data-testid="kind">index entries of an expired job</td>' in (
        operator_client.get("/jobs/archive/").content.decode()
    )
    assert jobs_archive.restore(redis_client, row.pk, username="otto") is True
    assert {index: redis_client.zscore(index, ORPHAN) for index in scores} == scores


def test_only_stale_and_unchanged_keys_are_deleted(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    put_tracker(redis_client, ORPHAN, "completed", ttl=3600)  # not stale
    assert operator_client.get(f"/jobs/{ORPHAN}/delete/").status_code == 409
    assert operator_client.post(f"/jobs/{ORPHAN}/delete/", {"source": "tracker"}).status_code == 409
    put_tracker(redis_client, ORPHAN, "completed")  # stale now
    confirm = operator_client.get(f"/jobs/{ORPHAN}/delete/")
    put_tracker(redis_client, ORPHAN, "completed", message="changed")  # changed after the page was drawn
    refused = operator_client.post(f"/jobs/{ORPHAN}/delete/", form_of(confirm.content.decode()))
    assert refused.status_code == 409 and b"changed since the page was drawn" in refused.content
    assert redis_client.exists(f"job:{ORPHAN}") == 1
    assert not ArchivedItem.objects.exists()


def test_a_crashed_delete_is_settled_by_reconcile(redis_client: redis.Redis, db: None) -> None:
    """A pending row whose Lua call never ran is dropped (the key is still there): nothing is lost."""
    put_tracker(redis_client, ORPHAN, "completed")
    token = new_token()
    ArchivedItem.objects.create(
        key=f"job:{ORPHAN}", kind="job", raw=b"x", fingerprint="f", size=1, deleted_by="otto", operation=token
    )
    assert archive.reconcile(redis_client) == 1
    assert not ArchivedItem.objects.exists() and redis_client.exists(f"job:{ORPHAN}") == 1
    assert fence(redis_client, token) is None  # fenced: a late call can no longer delete


def test_the_dlq_archive_never_pushes_a_job_key(redis_client: redis.Redis, operator: User) -> None:
    put_tracker(redis_client, ORPHAN, "completed")
    row, _ = jobs_archive.delete_stale(redis_client, jobs.pick(redis_client, ORPHAN), username="otto")
    result = actions.restore(redis_client, [row.pk], to_source=False, request=None)
    assert result == {"restored": 0, "not_restored": 1}
    assert redis_client.exists(f"job:{ORPHAN}") == 0
    row.refresh_from_db()
    assert row.state == "archived"


def test_the_dlq_archive_pages_do_not_list_job_keys(
    redis_client: redis.Redis, operator_client: Client
) -> None:
    put_tracker(redis_client, ORPHAN, "completed")
    row, _ = jobs_archive.delete_stale(redis_client, jobs.pick(redis_client, ORPHAN), username="otto")
    assert f"job:{ORPHAN}" in operator_client.get("/jobs/archive/").content.decode()
    assert f"job:{ORPHAN}" not in operator_client.get(reverse("admin:archive")).content.decode()
    assert operator_client.get(reverse("admin:archive_item", args=[row.pk])).status_code == 404


def test_roles(redis_client: redis.Redis, viewer_client: Client, operator: User) -> None:
    put_tracker(redis_client, ORPHAN, "completed")
    assert b"delete-link" not in viewer_client.get(f"/jobs/{ORPHAN}/").content
    assert viewer_client.get(f"/jobs/{ORPHAN}/delete/").status_code == 403
    assert viewer_client.post(f"/jobs/{ORPHAN}/delete/", {"source": "tracker"}).status_code == 403
    row, _ = jobs_archive.delete_stale(redis_client, jobs.pick(redis_client, ORPHAN), username="otto")
    assert viewer_client.get("/jobs/archive/").status_code == 200
    assert viewer_client.post(f"/jobs/archive/{row.pk}/restore/", {}).status_code == 403
    assert redis_client.exists(f"job:{ORPHAN}") == 0
