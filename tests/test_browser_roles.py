"""Roles in a real headless Chromium against daphne: what a Viewer sees and may do, what a logged-out
user gets from every page, and that a live socket closes when its session logs out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import redis
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from playwright.sync_api import Browser, BrowserContext, Page, WebSocket, expect

from console.admin import console_site
from tests.live_server import LiveConsole
from tests.pages import KEY_PAGES
from tests.test_api_schemathesis import changes, snapshot
from tests.test_browser import TIMEOUT_MS, base_url, browser, login, new_page  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

DLQ = "dlq:detection_queue"
ACTION_WORDS = re.compile(
    r"\b(retry|delete|restore|cancel|abort|clear|reset|restart|start|enable|disable|invalidate|edit)\b", re.I
)
ACTION_HREF = re.compile(
    r"/(selected|selection|matching|stream-all|stream-selected|stream-retry|edit|restore|clear|"
    r"invalidate|reset|cancel|abort)/|/orchestrator/[^/]+/[^/]+/$"
)
# Pages a Viewer can see; the item pages are reached by following the first link of their list.
VIEWER_PAGES = (
    "/",
    "/queues/",
    f"/queues/{DLQ}/",
    f"/queues/{DLQ}/breakdown/",
    "/queues/hsi:queue:dlq:detection_queue/",
    "/queues/detections:stream/",
    "/archive/",
    "/jobs/",
    "/jobs/archive/",
    "/overview/",
    *KEY_PAGES,
    "/orchestrator/",
    "/live/",
    "/connection/",
)
DETAIL_LINKS = {  # list page -> CSS selector of a link to one of its items
    f"/queues/{DLQ}/": "[data-testid=entries] tbody tr a",
    "/jobs/": "th[scope=row] a[href^='/jobs/']",
    "/archive/": "a[href^='/archive/'][href$='/']:not([href='/archive/'])",
    "/keys/embeddings/": "a[href^='/keys/embeddings/'][href$='/']:not([href='/keys/embeddings/'])",
}
OTHER_ITEMS = ("/orchestrator/ai-detector/restart/", "/auth/user/1/change/", "/auth/group/1/change/")
HREFS = "links => links.map(a => a.getAttribute('href'))"
IN_GET_FORM = "el => !!el.form && (el.form.getAttribute('method') || 'get').toLowerCase() === 'get'"
PUBLIC = {"/api/system/health/live", "/api/system/health/ready"}


@pytest.fixture
def live_redis(live_console: LiveConsole) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(live_console.env["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture
def demo_world(live_console: LiveConsole) -> LiveConsole:
    """A fresh demo world, with one deleted (archived) entry so the archive has an item page."""
    live_console.manage("load_demo_world", "--force")
    return live_console


@contextmanager
def signed_in(chromium: Browser, base: str, user: str) -> Iterator[BrowserContext]:
    """A fresh browser context signed in as ``user``, closed afterwards."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{base}/login/")
        login(page, base, user)
        page.close()
        yield context
    finally:
        context.close()


def csrf(context: BrowserContext) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")


def archive_one_entry(chromium: Browser, base: str) -> None:
    """An Operator deletes the DLQ's first entry through the JSON API (it is archived)."""
    with signed_in(chromium, base, "operator") as context:
        page = context.new_page()
        page.goto(f"{base}/queues/{DLQ}/")
        ref = page.locator("input[name=ref]").first.get_attribute("value")
        response = context.request.post(
            f"{base}/api/dlq/{quote(DLQ)}/delete/",
            data={"ids": [ref]},
            headers={"X-CSRFToken": csrf(context), "Referer": f"{base}/"},
        )
        assert response.ok and response.json()["deleted"] == 1, response.text()


def item_pages(page: Page, base: str) -> list[str]:
    """One concrete item page per family, followed from its list page."""
    found = []
    for list_page, selector in DETAIL_LINKS.items():
        page.goto(f"{base}{list_page}")
        href = page.locator(selector).first.get_attribute("href")
        assert href, f"no item link on {list_page}"
        found.append(href)
    return found


def action_controls(page: Page) -> list[str]:
    """Buttons, links and POST forms on the page that would change something (logout aside).

    A POST form without a submit control that posts to no action URL (the DLQ page's table wrapper,
    which a Viewer's page renders without token or buttons) cannot change anything.
    """
    found = [
        f"link {href}" for href in page.eval_on_selector_all("a[href]", HREFS) if ACTION_HREF.search(href)
    ]
    for control in page.locator("button, input[type=submit]").all():
        text = (control.inner_text() or control.get_attribute("value") or "").strip()
        in_get_form = control.evaluate(IN_GET_FORM)
        if ACTION_WORDS.search(text) and control.is_visible() and not in_get_form:
            found.append(f"button {text!r}")
    for form in page.locator("form").all():
        method = (form.get_attribute("method") or "get").lower()
        action = form.get_attribute("action") or page.url
        submits = form.locator("button, input[type=submit]").count()
        if method == "post" and not action.endswith("/logout/") and (submits or ACTION_HREF.search(action)):
            found.append(f"form POST {action}")
    return found


def test_viewer_sees_no_action_buttons_anywhere(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    demo_world: LiveConsole,
) -> None:
    archive_one_entry(browser, base_url)
    with signed_in(browser, base_url, "viewer") as context:
        page = context.new_page()
        pages = [*VIEWER_PAGES, *item_pages(page, base_url)]
        for path in pages:
            response = page.goto(f"{base_url}{path}")
            assert response is not None and response.status == 200, f"{path}: {response and response.status}"
            assert page.url == f"{base_url}{path}", f"{path} went to {page.url}"
            assert not action_controls(page), f"{path} offers a Viewer: {action_controls(page)}"
    with signed_in(browser, base_url, "operator") as operator:
        page = operator.new_page()
        page.goto(f"{base_url}/queues/{DLQ}/")
        assert len(action_controls(page)) >= 4, "the check finds an Operator's buttons"


def test_viewer_direct_posts_to_action_urls_are_refused(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    demo_world: LiveConsole,
    live_redis: redis.Redis,
) -> None:
    archive_one_entry(browser, base_url)
    with signed_in(browser, base_url, "viewer") as context:
        page = context.new_page()
        page.goto(f"{base_url}/queues/{DLQ}/")
        entry = page.locator("[data-testid=entries] tbody tr").first
        ref = entry.get_attribute("data-ref") or ""
        entry_page = entry.locator("a").first.get_attribute("href") or ""
        job_page, archived_page, _ = (urlsplit(href).path for href in item_pages(page, base_url)[1:4])
        archived = archived_page.strip("/").rsplit("/", 1)[-1]
        token = csrf(context)
        posts = {
            f"/queues/{DLQ}/selected/retry/": {"ref": ref},
            f"/queues/{DLQ}/selected/delete/": {"ref": ref},
            f"/queues/{DLQ}/matching/retry/": {"confirmed": "1"},
            f"/queues/{DLQ}/matching/delete/": {"confirmed": "1"},
            f"{entry_page}edit/": {"payload": "{}"},
            "/archive/restore/": {"ids": archived},
            f"{job_page}cancel/": {},
            f"{job_page}abort/": {"reason": "viewer"},
            "/keys/dedupe/clear/": {"confirmed": "1"},
            "/keys/cache/invalidate/": {"confirmed": "1"},
            "/keys/rate-limits/reset/": {"confirmed": "1"},
            "/orchestrator/ai-detector/restart/": {},
        }
        before = snapshot(live_redis)
        refused = {}
        for path, form in posts.items():
            response = context.request.post(
                f"{base_url}{path}",
                form={"csrfmiddlewaretoken": token, **form},
                headers={"Referer": f"{base_url}/"},
                max_redirects=0,
            )
            refused[path] = response.status
        assert refused == dict.fromkeys(posts, 403), refused
        assert not changes(before, snapshot(live_redis)), "a refused POST changed Redis"
        # The CSRF token was valid: the same context's logout POST is accepted.
        assert context.request.post(f"{base_url}/logout/", form={"csrfmiddlewaretoken": token}).ok


def console_pages() -> list[str]:
    """Every GET route of console.urls without parameters (login, logout and the API aside)."""

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[str]:
        for entry in patterns:
            if not isinstance(entry.pattern, RoutePattern) or "<" in str(entry.pattern):
                continue
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            else:
                yield "/" + route

    apps = {f"/{model._meta.app_label}/" for model in console_site._registry}  # the admin's app indexes
    skipped = ("/login/", "/logout/")
    routes = [
        path for path in walk(get_resolver().url_patterns, "") if not path.startswith(("/api/", *skipped))
    ]
    return routes + sorted(apps)


def test_logged_out_user_is_sent_to_login_from_every_page(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    demo_world: LiveConsole,
) -> None:
    archive_one_entry(browser, base_url)
    with signed_in(browser, base_url, "viewer") as viewer:
        items = item_pages(viewer.new_page(), base_url)
    pages = list(dict.fromkeys([*console_pages(), *VIEWER_PAGES, *items, *OTHER_ITEMS]))
    assert {"/", "/queues/", "/jobs/", "/keys/", "/orchestrator/", "/live/", "/auth/", "/auth/user/"} <= set(
        pages
    )
    assert len(pages) > 40

    with new_page(browser) as page:  # signed out
        for path in pages:
            page.goto(f"{base_url}{path}")
            final = urlsplit(page.url)
            assert final.path == "/login/", f"{path} ended on {page.url}"
            assert parse_qs(final.query).get("next") == [path], f"{path} ended on {page.url}"
            expect(page.locator("#login-form")).to_be_visible()
        for path in PUBLIC:
            response = page.goto(f"{base_url}{path}")
            assert response is not None and response.status == 200 and urlsplit(page.url).path == path


def test_live_socket_closes_after_logout_in_another_tab(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_console: LiveConsole,
) -> None:
    with signed_in(browser, base_url, "viewer") as context:
        live = context.new_page()
        sockets: list[WebSocket] = []
        live.on("websocket", lambda socket: sockets.append(socket))
        live.goto(f"{base_url}/live/")
        status = live.locator("[data-testid=live-status]")
        expect(status).to_have_attribute("data-state", "live")
        assert len(sockets) == 1 and not sockets[0].is_closed()

        other = context.new_page()
        other.goto(f"{base_url}/")
        other.locator("#logout-form button, #logout-form input[type=submit]").first.click()
        other.wait_for_load_state()

        recheck = float(live_console.env["HSI_LIVE_RECHECK_SECONDS"])
        expect(status).to_have_attribute("data-state", "offline", timeout=(recheck + 2) * 1000)
        assert sockets[0].is_closed(), "the server did not close the socket"
        expect(status).to_contain_text("signed out")
        live.wait_for_timeout(3_000)
        assert len(sockets) == 1, "a signed-out page must not reconnect"
        expect(status).to_have_attribute("data-state", "offline")
