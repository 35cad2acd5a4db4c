"""The console in a real headless Chromium, against daphne with DEBUG off (static files via WhiteNoise)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.live_server import PASSWORD, ROOT, LiveConsole

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAMILIES = (
    "queues",
    "dlq",
    "overflow_dlq",
    "streams",
    "jobs",
    "orchestrator",
    "batch",
    "dedupe",
    "embeddings",
    "rate_limit",
)
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per module; a missing /usr/bin/chromium fails (CI installs it)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    playwright: Playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def base_url(live_console: LiveConsole) -> str:
    return live_console.url


@contextmanager
def new_page(browser: Browser, **options: object) -> Iterator[Page]:
    """A page in its own fresh browser context (no cookies), closed afterwards."""
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    except BaseException:
        keep_evidence(page)
        raise
    finally:
        context.close()


def keep_evidence(page: Page) -> None:
    """What the browser showed when a test failed: its address and text in the test's output (CI
    prints it), a screenshot and the HTML in test-artifacts/. A timeout waiting for a button says
    only that the button is missing; the page says what is there instead."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "browser").split(" ")[0]
    name = re.sub(r"[^\w.-]+", "_", test)[-120:]
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, timeout=5_000)
        (ARTIFACTS / f"{name}.html").write_text(page.content())
        text = page.inner_text("body", timeout=5_000)
    except PlaywrightError as exc:  # the page itself may be what broke
        print(f"The failed test's page could not be kept: {exc}")
        return
    print(f"The failed test's page was {page.url}; screenshot and HTML in {ARTIFACTS}/{name}.*")
    print(text[:3_000])


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context per test: no cookies, desktop viewport, light scheme."""
    with new_page(browser, viewport={"width": 1440, "height": 900}, color_scheme="light") as page:
        yield page


def login(page: Page, base_url: str, username: str) -> None:
    """Log in through the admin's login form and wait to leave ``/login/``."""
    if "/login/" not in page.url:
        page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()


def css(page: Page, selector: str, prop: str) -> str:
    value: str = page.eval_on_selector(selector, "(el, prop) => getComputedStyle(el)[prop]", prop)
    return value


def rgb(colour: str) -> tuple[float, float, float, float]:
    """``rgb(r, g, b)`` / ``rgba(r, g, b, a)`` as computed by Chromium."""
    match = re.fullmatch(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)", colour.strip())
    assert match, f"unexpected colour {colour!r}"
    r, g, b, a = match.groups()
    return float(r), float(g), float(b), float(a if a is not None else 1)


def luminance(colour: str) -> float:
    """Relative luminance (WCAG), 0 black .. 1 white."""

    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b, _ = rgb(colour)
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def expect_login_page(page: Page, base_url: str, next_path: str) -> None:
    page.wait_for_url(f"{base_url}/login/?next={next_path}")
    expect(page.locator("#login-form")).to_be_visible()


def test_anonymous_goes_to_styled_login_then_viewer_sees_dashboard(
    page: Page, base_url: str, live_console: LiveConsole
) -> None:
    live_console.reload_world()  # every family present, whenever this test runs
    page.goto(f"{base_url}/connection/")
    expect_login_page(page, base_url, "/connection/")
    page.goto(f"{base_url}/")
    expect_login_page(page, base_url, "/")
    r, g, b, alpha = rgb(css(page, "#header", "backgroundColor"))
    assert alpha > 0 and (r, g, b) != (255, 255, 255), (
        "admin CSS not applied: is WhiteNoise serving /static/?"
    )

    login(page, base_url, "viewer")
    page.wait_for_url(f"{base_url}/")
    expect(page.locator("[data-testid=redis-version]")).to_have_text(re.compile(r"\d+\.\d+"))
    assert css(page, "#content-main", "display") == "grid", "console.css not applied"
    for family in FAMILIES:
        count = page.locator(f"[data-family={family}] td.console-num").inner_text()
        assert int(count) > 0, f"family {family} has count {count!r}"
    expect(page.locator("[data-testid=redis-banner]")).to_have_count(0)


def test_staff_without_role_is_not_authorized(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/")
    login(page, base_url, "nobody")
    expect_login_page(page, base_url, "/")
    expect(page.locator(".errornote")).to_contain_text("not authorized to access this page")
    page.goto(f"{base_url}/")
    expect_login_page(page, base_url, "/")
    expect(page.locator("[data-testid=key-families]")).to_have_count(0)


def test_admin_manages_users_viewer_cannot(page: Page, base_url: str, browser: Browser) -> None:
    login(page, base_url, "admin")
    page.wait_for_url(f"{base_url}/")
    administration = page.locator("section[aria-labelledby=administration]")
    expect(administration.get_by_role("link", name="Users", exact=True)).to_be_visible()
    expect(administration.get_by_role("link", name="Groups", exact=True)).to_be_visible()
    administration.get_by_role("link", name="Users", exact=True).click()
    page.wait_for_url(f"{base_url}/auth/user/")
    expect(page.locator("#result_list")).to_contain_text("viewer")

    with new_page(browser) as viewer_page:
        login(viewer_page, base_url, "viewer")
        viewer_page.wait_for_url(f"{base_url}/")
        expect(viewer_page.locator("[data-testid=key-families]")).to_be_visible()
        expect(viewer_page.locator("section[aria-labelledby=administration]")).to_have_count(0)
        expect(viewer_page.get_by_role("link", name="Users", exact=True)).to_have_count(0)
        response = viewer_page.goto(f"{base_url}/auth/user/")
        assert response is not None and response.status == 403
        expect(viewer_page.locator("h1")).to_contain_text("You are not allowed to do this")
        expect(viewer_page.get_by_role("link", name="Back to the dashboard")).to_be_visible()


def test_connection_page_shows_success_and_no_password(
    page: Page, base_url: str, live_console: LiveConsole
) -> None:
    login(page, base_url, "viewer")
    page.goto(f"{base_url}/connection/")
    expect(page.locator("[data-testid=connection-status]")).to_contain_text("Successfully connected to Redis")
    section = page.locator("section[aria-labelledby=hsi-redis]")
    url = section.locator("tr", has_text="URL").locator("code").inner_text()
    port = urlsplit(live_console.env["REDIS_URL"]).port
    assert url.startswith("redis://") and f":{port}" in url, url
    assert "@" not in url and PASSWORD not in url, url


def test_dark_mode_is_kept(browser: Browser, base_url: str) -> None:
    with new_page(browser, color_scheme="dark") as page:
        login(page, base_url, "viewer")
        page.wait_for_url(f"{base_url}/")
        background = css(page, "body", "backgroundColor")
        assert luminance(background) < 0.1, f"body background {background} is not dark"


def test_phone_viewport_has_no_horizontal_scroll(browser: Browser, base_url: str) -> None:
    with new_page(browser, viewport={"width": 390, "height": 844}) as page:
        login(page, base_url, "viewer")
        page.wait_for_url(f"{base_url}/")
        expect(page.locator("[data-testid=key-families]")).to_be_visible()
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll_width <= inner_width + 1, f"page is {scroll_width}px wide in a {inner_width}px viewport"


def test_dashboard_screenshot(page: Page, base_url: str) -> None:
    login(page, base_url, "viewer")
    page.wait_for_url(f"{base_url}/")
    expect(page.locator("[data-testid=key-families]")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
