"""The orchestrator page in headless Chromium under ``script-src 'self'``: a ``service_status``
event published on ``security_events`` reaches the page through the real relay and updates the badge."""

from __future__ import annotations

import json
import time

import pytest
import redis
from playwright.sync_api import Browser, expect

from tests.test_browser import base_url, browser, login, new_page  # noqa: F401 - fixtures
from tests.test_browser_dlq import with_csp
from tests.test_browser_live import Relay, hsi, relay  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def test_service_status_event_updates_the_badge(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,  # noqa: F811 - fixture
    hsi: redis.Redis,  # noqa: F811 - fixture
) -> None:
    with new_page(browser) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/orchestrator/")
        login(page, base_url, "viewer")
        page.wait_for_url(f"{base_url}/orchestrator/")
        row = page.locator('tr[data-service="ai-florence"]')
        expect(row).to_have_count(1)
        data = {"name": "ai-florence", "category": "ai", "status": "unhealthy", "enabled": True}
        message = json.dumps({"type": "service_status", "data": data, "message": "ai-florence unhealthy"})
        deadline = time.monotonic() + 20
        badge = row.locator("[data-testid=status]")
        assert badge.inner_text() != "unhealthy"
        while time.monotonic() < deadline:  # the socket may not be open yet: publish until it shows
            hsi.publish("security_events", message)
            if badge.inner_text() == "unhealthy":
                break
            page.wait_for_timeout(300)
        expect(badge).to_have_text("unhealthy")
        expect(badge).to_have_class("orchestrator-badge orchestrator-unhealthy")
        expect(row.locator("[data-testid=live-note]")).to_contain_text("live: unhealthy")
        assert problems == []
