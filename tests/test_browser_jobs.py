"""The jobs pages in headless Chromium under ``script-src 'self'``: a job's progress changes in Redis,
the real relay samples it, and the row (and the job's own page) update without a reload."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from playwright.sync_api import Browser, expect

from queues import keys
from tests.live_server import LiveConsole
from tests.test_browser import base_url, browser, login, new_page  # noqa: F401 - fixtures
from tests.test_browser_dlq import with_csp
from tests.test_browser_live import Relay, hsi, relay  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def put_job(client: redis.Redis, job_id: str, progress: int, message: str, status: str = "running") -> None:
    value = {
        "job_id": job_id,
        "job_type": "export",
        "status": status,
        "progress": progress,
        "message": message,
        "created_at": "2099-01-01T00:00:00+00:00",  # newest first: the row is on the first page
    }
    client.set(keys.job_status_key(job_id), json.dumps(value))
    if status == "running":
        client.zadd(keys.JOBS_ACTIVE, {job_id: 4_070_908_800})
    client.zadd(keys.JOB_STATUS_LIST, {job_id: 4_070_908_800})


def test_a_running_jobs_row_follows_its_progress(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,  # noqa: F811 - fixture
    hsi: redis.Redis,  # noqa: F811 - fixture
    live_console: LiveConsole,
) -> None:
    job_id = f"live-{uuid.uuid4().hex[:8]}"
    put_job(hsi, job_id, 10, "Exported 100/1000 events")
    live_console.forget_cached()  # the jobs list's summary, should an earlier test have loaded it
    with new_page(browser) as page:
        problems = with_csp(page)
        # Navigate as people do (login redirect, links): Chromium's local-network checks refuse a
        # WebSocket to 127.0.0.1 from a page that page.goto opened over an already loaded one
        # (seen with Debian's chromium), so each page under test is the first of its browser page.
        page.goto(f"{base_url}/jobs/")
        login(page, base_url, "viewer")
        page.wait_for_url(f"{base_url}/jobs/")
        row = page.locator(f'tr[data-job="{job_id}"]')
        expect(row).to_have_count(1)
        expect(row.locator("[data-live=progress]")).to_contain_text("10%")
        expect(page.locator("[data-testid=jobs-page]")).to_have_attribute("data-live", "open", timeout=15_000)
        page.wait_for_timeout(1000)  # the relay's first sample of this job has gone out
        put_job(hsi, job_id, 65, "Exported 650/1000 events")
        expect(row.locator("[data-live=progress]")).to_contain_text("65%", timeout=15_000)
        expect(row.locator("[data-live=progress] progress")).to_have_attribute("value", "65")
        expect(row.locator("[data-live=message]")).to_have_text("Exported 650/1000 events")

        assert problems == []

    with new_page(browser) as page:  # a fresh page, for the reason above
        problems = with_csp(page)
        page.goto(f"{base_url}/jobs/{job_id}/?source=status")
        login(page, base_url, "viewer")
        page.wait_for_url(f"{base_url}/jobs/{job_id}/?source=status")
        job = page.locator(f'[data-testid=job][data-job="{job_id}"]')
        expect(job.locator("[data-live=progress]")).to_contain_text("65%")
        expect(page.locator("[data-testid=jobs-page]")).to_have_attribute("data-live", "open", timeout=15_000)
        page.wait_for_timeout(500)
        hsi.zrem(keys.JOBS_ACTIVE, job_id)
        put_job(hsi, job_id, 100, "Done", status="completed")
        expect(job.locator("[data-live=status]")).to_have_text("completed", timeout=15_000)
        expect(job.locator("[data-live=status]")).to_have_class("jobs-status jobs-completed")
        expect(job.locator("[data-live=message]")).to_have_text("Done")
        assert problems == []
