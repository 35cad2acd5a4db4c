"""The console as it runs in production: daphne, DEBUG off, WhiteNoise static files, real Redis."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from tests.live_server import LiveConsole


def fetch(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback test server
            return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8", "replace")


def test_startup_logs_the_connection(live_console: LiveConsole) -> None:
    assert "Successfully connected to Redis (redis_version " in live_console.output()


def test_login_page_is_styled_from_hashed_static_files(live_console: LiveConsole) -> None:
    status, _, html = fetch(f"{live_console.url}/login/")
    assert status == 200
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', html)
    assert any(re.search(r"admin/css/base\.[0-9a-f]{12}\.css$", href) for href in stylesheets), stylesheets
    assert any("console/css/console." in href for href in stylesheets), stylesheets
    for href in stylesheets:
        css_status, headers, body = fetch(live_console.url + href)
        assert css_status == 200 and headers["Content-Type"].startswith("text/css") and body
        assert "max-age=315360000" in headers.get("Cache-Control", "")


def test_ready_through_daphne(live_console: LiveConsole) -> None:
    status, headers, body = fetch(f"{live_console.url}/api/system/health/ready")
    assert status == 200, body
    assert '"status": "ready"' in body and headers["Content-Type"] == "application/json"


def test_unknown_url_sends_anonymous_users_to_login(live_console: LiveConsole) -> None:
    with urllib.request.urlopen(f"{live_console.url}/no/such/page/", timeout=5) as response:  # noqa: S310
        assert response.url.endswith("/login/?next=/no/such/page/")
        body = response.read().decode()
    assert "Traceback" not in body and "URLconf" not in body
