"""Every page type in a real headless Chromium under the console's own Content-Security-Policy.

No route injects a policy: the header comes from daphne (console/middleware.py). Each page must load
with no ``securitypolicyviolation`` and no script error, its scripts must actually run (the admin's
widgets appear, the live page's socket connects), and the header must be the one the server sends.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from playwright.sync_api import Browser, Page, Response, expect

from queues import dlq
from tests.live_server import LiveConsole
from tests.pages import KEY_PAGES
from tests.test_browser import base_url, browser, login, new_page  # noqa: F401 - fixtures
from tests.test_browser_dlq import DESKTOP, DLQ, demo_world, live_redis, with_csp  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

PAGES = (
    "/",
    "/connection/",
    "/overview/",
    "/queues/",
    "/queues/detection_queue/",
    f"/queues/{DLQ}/",
    f"/queues/{DLQ}/breakdown/",
    "/archive/",
    "/jobs/",
    "/jobs/archive/",
    *KEY_PAGES,
    "/orchestrator/",
    "/auth/user/",
    "/auth/user/add/",
    "/auth/group/",
    "/console/auditentry/",
    "/password_change/",
)


def visit(page: Page, url: str, status: int = 200) -> str:
    """Go to ``url`` (which must answer ``status``); returns the CSP header sent with the document."""
    response = page.goto(url)
    assert response is not None, url
    assert response.status == status, (url, response.status)
    page.wait_for_load_state("load")
    return response.headers.get("content-security-policy", "")


def assert_console_policy(policy: str, base: str) -> None:
    assert "script-src 'self';" in policy and "style-src 'self';" in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert policy.endswith(f"connect-src 'self' ws://{base.split('://', 1)[1]}"), policy


def test_every_page_type_works_under_the_servers_csp(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    demo_world: LiveConsole,  # noqa: F811 - fixture
    live_redis: redis.Redis,  # noqa: F811 - fixture
) -> None:
    entry = dlq.page(live_redis, DLQ, 0, 1).entries[0]
    item = f"/queues/{DLQ}/entry/{entry.index}/{entry.id}/"
    first: Any = live_redis.xrange("detections:stream:dlq", count=1)
    stream_item = f"/queues/detections:stream:dlq/stream-entry/{first[0][0].decode()}/"
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        # Every script, style sheet and icon a page asks for exists (pages themselves are checked below).
        missing: list[str] = []

        def note_missing(response: Response) -> None:
            if response.status >= 400 and response.request.resource_type != "document":
                missing.append(response.url)

        page.on("response", note_missing)
        assert_console_policy(visit(page, f"{base_url}/login/"), base_url)
        login(page, base_url, "admin")
        for path in (*PAGES, item, item + "edit/", stream_item):
            assert_console_policy(visit(page, base_url + path), base_url)
            assert not problems, (path, problems)
            assert not missing, (path, missing)
        assert_console_policy(visit(page, f"{base_url}/no/such/page/", 404), base_url)

        # The admin's own scripts run: the user form's two-box group picker (SelectFilter2.js) ...
        visit(page, f"{base_url}/auth/user/add/")
        page.fill("#id_username", "csp-check")
        visit(page, f"{base_url}/auth/user/")
        page.get_by_role("link", name="admin", exact=True).click()
        expect(page.locator("#id_groups_filter")).to_be_visible()  # built by SelectFilter2.js
        # ... the changelist's select-all checkbox (actions.js) and the audit list's filters.
        visit(page, f"{base_url}/auth/user/")
        page.locator("#action-toggle").check()
        expect(page.locator(".action-counter")).to_contain_text("selected")
        visit(page, f"{base_url}/console/auditentry/")
        filters = page.locator("#changelist-filter a")
        if filters.count() > 1:
            filters.nth(1).click()
            page.wait_for_load_state("load")
        expect(page.locator("#changelist")).to_be_visible()
        assert not problems, problems


def test_live_page_socket_connects_under_the_servers_csp(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
) -> None:
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        login(page, base_url, "admin")
        assert_console_policy(visit(page, f"{base_url}/live/"), base_url)
        expect(page.locator("[data-testid=live-status]")).to_have_attribute("data-state", "live")
        assert not problems, problems


def test_a_violation_would_be_caught(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
) -> None:
    """The collector is live: an inline script on a console page is blocked and reported."""
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        visit(page, f"{base_url}/login/")
        page.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
            " document.body.append(s); }"
        )
        page.wait_for_timeout(200)
        assert page.evaluate("() => window.ran") is None
        assert any("script-src" in problem for problem in problems), problems
