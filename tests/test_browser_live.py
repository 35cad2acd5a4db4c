"""The live page in a real headless Chromium, against daphne and a real ``relay_events`` process.

PUBLISH on the test Redis → the relay → the stream and the Channels group → the socket → a row.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from playwright.sync_api import Browser, Locator, Page, WebSocketRoute, expect

from queues.codec import encode_payload
from realtime.status import relay_status
from tests.live_server import ROOT, LiveConsole
from tests.redis_server import die_with_parent
from tests.test_browser import ARTIFACTS, base_url, browser, login, new_page  # noqa: F401 - fixtures
from tests.test_browser_dlq import with_csp

pytestmark = pytest.mark.browser

LIVE = "/live/"
STREAM = "console:events"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
SCORES = {"low": 12, "medium": 41, "high": 72, "critical": 93}
RECONNECT_MS = 40_000  # daphne's restart plus one backoff step


@dataclass
class Relay:
    """``manage.py relay_events`` as its own process, stoppable and restartable."""

    console: LiveConsole
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, client: redis.Redis) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "relay_events"],
                cwd=ROOT,
                env=self.console.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        self.wait_forwarding(client)

    def wait_forwarding(self, client: redis.Redis) -> None:
        """Until this process holds the leader lock (it subscribes before it competes for it)."""
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"relay_events exited:\n{self.output()}")
            status = relay_status(client)
            if status.healthy and f":{self.process.pid}:" in (status.leader or ""):
                return
            time.sleep(0.1)
        raise RuntimeError(f"relay_events never led:\n{self.output()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture(scope="module")
def hsi(live_console: LiveConsole) -> Iterator[redis.Redis]:
    """A client on the live console's Redis (where HSI publishes)."""
    client = redis.Redis.from_url(live_console.env["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def relay(
    live_console: LiveConsole, hsi: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Relay]:
    relay = Relay(live_console, tmp_path_factory.mktemp("relay") / "relay.log")
    relay.start(hsi)
    yield relay
    relay.stop()


def publish(
    client: redis.Redis, summary: str, *, camera: str = "porch", risk: str = "high", kind: str = "event"
) -> None:
    """An HSI security event as EventBroadcaster publishes it (contract §13.1)."""
    data = {
        "id": 9121,
        "event_id": 9121,
        "batch_id": "batch-7be03a91",
        "camera_id": camera,
        "risk_score": SCORES[risk],
        "risk_level": risk,
        "summary": summary,
        "started_at": "2026-02-12T07:15:03",
    }
    client.publish("security_events", json.dumps({"type": kind, "data": data}))


def token() -> str:
    return uuid.uuid4().hex[:8]


def open_live(page: Page, base: str, user: str = "viewer") -> None:
    page.goto(f"{base}{LIVE}")
    login(page, base, user)
    page.wait_for_url(f"{base}{LIVE}")
    expect(status(page)).to_have_attribute("data-state", "live")


def status(page: Page) -> Locator:
    return page.locator("[data-testid=live-status]")


def rows(page: Page, text: str = "") -> Locator:
    found = page.locator("[data-testid=live-events] tbody tr")
    return found.filter(has_text=text) if text else found


def test_published_event_appears_and_the_filters_hide_it(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,
    hsi: redis.Redis,
) -> None:
    mark = token()
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        open_live(page, base_url)
        publish(hsi, f"Cat crossing {token()}", camera="porch", risk="low")
        publish(hsi, f"Person with a crowbar {mark}", camera=f"gate_{mark}", risk="critical")
        row = rows(page, mark)
        expect(row).to_be_visible()
        expect(row.locator("td").nth(1)).to_have_text(f"gate_{mark}")
        expect(row.locator("td").nth(2)).to_have_text("event")
        expect(row.locator(".live-risk")).to_have_class("live-risk live-risk-critical")
        expect(row.locator(".live-risk")).to_have_text("critical 93")

        page.get_by_label("Camera").fill("some_other_camera")
        expect(row).to_be_hidden()
        expect(page.locator("[data-live-empty]")).to_have_text("No event matches the filters.")
        assert "camera=some_other_camera" in page.url
        page.get_by_label("Camera").fill(mark)
        expect(row).to_be_visible()
        page.get_by_label("Risk level").select_option("low")
        expect(row).to_be_hidden()
        publish(hsi, f"Second crowbar {mark}", camera=f"gate_{mark}", risk="critical")
        expect(rows(page, f"Second crowbar {mark}")).to_have_count(1)
        expect(rows(page, f"Second crowbar {mark}")).to_be_hidden()
        page.get_by_label("Risk level").select_option("critical")
        expect(rows(page, mark)).to_have_count(2)
        expect(page.locator("[data-live-shown]")).to_have_text(
            "2 shown of " + str(rows(page).count()) + ", newest first"
        )
        page.keyboard.press("Escape")
        expect(page.get_by_label("Camera")).to_have_value("")
        expect(page.get_by_label("Risk level")).to_have_value("")
        # The filters clear at once; the rows are shown again on the next render (waited for).
        expect(rows(page).filter(visible=False)).to_have_count(0)
        assert rows(page).count() == rows(page).filter(visible=True).count()
        assert not problems, problems


def test_pause_keeps_counting_and_resume_shows_the_held_events(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,
    hsi: redis.Redis,
) -> None:
    mark = token()
    with new_page(browser, viewport=DESKTOP) as page:
        open_live(page, base_url)
        counters = page.locator("[data-testid=live-counters]")
        before = int(
            counters.get_by_role("button", name="All").locator("strong").inner_text().replace(",", "")
        )
        page.keyboard.press("p")
        expect(page.get_by_role("button", name="Resume")).to_be_visible()
        for n in range(3):
            publish(hsi, f"Held {n} {mark}", kind="detection.new" if n else "event")
        expect(page.locator("[data-testid=live-held]")).to_have_text("3 new events while paused")
        expect(counters.get_by_role("button", name="All").locator("strong")).to_have_text(str(before + 3))
        expect(rows(page, mark)).to_have_count(0)

        page.keyboard.press("/")
        expect(page.get_by_label("Camera")).to_be_focused()
        page.keyboard.press("p")  # typed into the filter, not a shortcut
        expect(page.get_by_label("Camera")).to_have_value("p")
        page.keyboard.press("Escape")
        expect(page.get_by_label("Camera")).to_have_value("")

        page.get_by_role("button", name="Resume").click()
        expect(rows(page, mark)).to_have_count(3)
        assert [rows(page, mark).nth(i).locator("td").last.inner_text() for i in range(3)] == [
            f"Held {n} {mark}" for n in (2, 1, 0)
        ]
        expect(page.locator("[data-testid=live-held]")).to_be_hidden()


def test_queue_depth_tiles_follow_the_samples_and_warn_at_80_percent(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,
    hsi: redis.Redis,
) -> None:
    """analysis_queue and its DLQ are always sampled (the relay rediscovers other keys only every 30 s).
    A full retry DLQ is flagged too: HSI then rejects new failures."""
    queue, dead = "analysis_queue", "dlq:analysis_queue"
    before = {key: hsi.llen(key) for key in (queue, dead)}

    def restore() -> None:
        for key, length in before.items():
            if length:
                hsi.ltrim(key, 0, length - 1)  # the items pushed below sit after the original ones
            else:
                hsi.delete(key)

    hsi.rpush(queue, *[encode_payload({"n": n}) for n in range(8_500 - before[queue])])
    hsi.rpush(dead, *[encode_payload({"n": n}) for n in range(10_000 - before[dead])])
    try:
        with new_page(browser, viewport=DESKTOP) as page:
            open_live(page, base_url)
            tile = page.locator(f'[data-testid=live-tiles] li[data-key="{queue}"]')
            expect(tile.locator(".live-tile-length")).to_have_text("8,500")
            expect(tile).to_have_class("live-tile live-tile-warn")
            expect(tile.locator(".live-tile-fill")).to_have_text("work list · 85% of 10,000 · filling up")
            expect(tile.locator("a")).to_have_attribute("href", f"/queues/{queue}/")
            full = page.locator(f'[data-testid=live-tiles] li[data-key="{dead}"]')
            expect(full).to_have_class("live-tile live-tile-warn live-tile-full")
            expect(full.locator(".live-tile-fill")).to_have_text("dead-letter list · 100% of 10,000 · full")
            restore()
            expect(tile.locator(".live-tile-length")).to_have_text(f"{before[queue]:,}")
            expect(tile).to_have_class("live-tile")
            expect(full).to_have_class("live-tile")
            expect(
                page.locator('[data-testid=live-tiles] li[data-key="dlq:detection_queue"]')
            ).to_be_visible()
    finally:
        restore()


def test_a_tile_says_when_a_queue_name_holds_another_type(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,
    hsi: redis.Redis,
) -> None:
    """Redis refuses LLEN of a string: the tile says what the key holds instead of showing an empty
    queue, and goes back to a length once the list is back."""
    dead = "dlq:analysis_queue"
    saved = hsi.dump(dead)
    try:
        hsi.delete(dead)
        hsi.set(dead, "written by hand")
        with new_page(browser, viewport=DESKTOP) as page:
            open_live(page, base_url)
            tile = page.locator(f'[data-testid=live-tiles] li[data-key="{dead}"]')
            fill = tile.locator(".live-tile-fill")
            expect(fill).to_have_text("dead-letter list · holds a string, not a list")
            expect(tile.locator(".live-tile-length")).to_have_text("—")
            expect(tile).to_have_class("live-tile live-tile-warn")
            expect(tile.locator("meter")).to_be_hidden()
            hsi.delete(dead)
            hsi.rpush(dead, encode_payload({"n": 1}))
            expect(tile.locator(".live-tile-length")).to_have_text("1")
            expect(tile).to_have_class("live-tile")
            expect(fill).to_have_text("dead-letter list · 0% of 10,000")
    finally:
        hsi.delete(dead)
        if saved:
            hsi.restore(dead, 0, saved)


def test_console_actions_reach_the_page(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,
    hsi: redis.Redis,
    live_console: LiveConsole,
) -> None:
    dlq = f"dlq:live_{token()}"
    hsi.rpush(dlq, encode_payload({"original_job": {"camera_id": "porch"}, "error": "x", "attempt_count": 3}))
    try:
        with new_page(browser, viewport=DESKTOP) as page:
            open_live(page, base_url, "operator")
            live_console.manage("dlq", "delete", dlq, "--all")
            action = page.locator("[data-testid=live-actions] li").filter(has_text=dlq)
            expect(action).to_have_count(1)
            expect(action).to_contain_text("system")
            expect(action.get_by_role("link", name="audit entry")).to_have_attribute(
                "href", re.compile(r"^/console/auditentry/\d+/change/$")
            )
    finally:
        hsi.delete(dlq)


def test_relay_restart_keeps_the_page_live(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,
    hsi: redis.Redis,
) -> None:
    """The page's socket is daphne's: a relay restart does not disconnect it, and what HSI publishes
    once the relay is back arrives, once each. (Pub/sub is at most once: what HSI publishes while no
    relay listens is gone; HSI keeps no copy in Redis, contract §13.1.)"""
    mark = token()
    with new_page(browser, viewport=DESKTOP) as page:
        open_live(page, base_url)
        publish(hsi, f"Before relay restart {mark}")
        expect(rows(page, f"Before relay restart {mark}")).to_have_count(1)
        relay.stop()
        publish(hsi, f"While the relay is down {mark}")
        relay.start(hsi)
        for n in range(3):
            publish(hsi, f"After relay restart {n} {mark}")
        for n in range(3):
            expect(rows(page, f"After relay restart {n} {mark}")).to_have_count(1)
        expect(status(page)).to_have_attribute("data-state", "live")


def test_console_restart_reconnects_and_shows_the_missed_events(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,
    hsi: redis.Redis,
    live_console: LiveConsole,
) -> None:
    """daphne goes away and comes back: the page reconnects with ?since= and shows, once each and in
    order, what the relay stored meanwhile."""
    mark = token()
    with new_page(browser, viewport=DESKTOP) as page:
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        open_live(page, base_url)
        publish(hsi, f"Seen live {mark}")
        expect(rows(page, f"Seen live {mark}")).to_have_count(1)
        live_console.stop()
        try:
            expect(status(page)).to_have_attribute("data-state", "reconnecting")
            expect(status(page)).to_contain_text("Reconnecting in")
            for n in range(3):
                publish(hsi, f"Missed {n} {mark}", risk="medium")
            wait_stored(hsi, f"Missed 2 {mark}")
        finally:
            live_console.start()
        expect(status(page)).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
        expect(status(page)).to_contain_text("caught up on 3 missed events")
        for n in range(3):
            expect(rows(page, f"Missed {n} {mark}")).to_have_count(1)
        expect(rows(page, f"Seen live {mark}")).to_have_count(1)
        texts = rows(page, mark).all_inner_texts()
        assert [next(t for t in texts if f"Missed {n} " in t) for n in (2, 1, 0)] == texts[:3]
        assert "since=" in sockets[-1], sockets


def wait_stored(client: redis.Redis, text: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(
            text.encode() in (fields or {}).get(b"data", b"")
            for _, fields in client.xrevrange(STREAM, count=20) or []
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never reached {STREAM}")


# --- Screenshots --------------------------------------------------------------------------------------

VARIED = (
    ("event", "low", "front_door", "Delivery driver dropped off a package"),
    ("event", "medium", "driveway", "Unfamiliar car idling near the driveway"),
    ("event", "high", "garage_side", "Unknown person lingering at side door"),
    ("event", "critical", "backyard", "Person with a crowbar at the back door"),
)


def publish_varied(client: redis.Redis) -> None:
    for kind, risk, camera, summary in VARIED:
        publish(client, summary, camera=camera, risk=risk, kind=kind)
    extras = (
        (
            "detection.new",
            {"detection_id": 61234, "camera_id": "porch", "label": "person", "confidence": 0.91},
        ),
        (
            "camera_status",
            {
                "camera_id": "driveway",
                "camera_name": "Driveway",
                "status": "offline",
                "previous_status": "online",
            },
        ),
        (
            "alert_created",
            {"id": "a1", "event_id": 9121, "severity": "critical", "dedup_key": "backyard:person"},
        ),
        ("service_status", {"name": "ai-detector", "display_name": "Ai Detector", "status": "unhealthy"}),
        (
            "event",
            {
                "camera_id": "porch",
                "risk_level": "high",
                "summary": "<img src=x onerror=alert(1)> & <b>x</b>",
            },
        ),
    )
    for kind, data in extras:
        client.publish("security_events", json.dumps({"type": kind, "data": data}))
    status = {
        "gpu": {"utilization": 64.5, "temperature": 71, "inference_fps": 11.2},
        "cameras": {"active": 5, "total": 6},
        "queue": {"pending": 42, "processing": 3},
        "health": "degraded",
    }
    wrapper = {"_origin_instance": "browser-test", "payload": {"type": "system_status", "data": status}}
    client.publish("system_status", json.dumps(wrapper))


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"live-{name}.png"), full_page=True)
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width + 1, f"{name} is {scroll_width}px wide in a {inner_width}px viewport"


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_screenshots(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    relay: Relay,
    hsi: redis.Redis,
    width: str,
) -> None:
    with new_page(browser, viewport=DESKTOP if width == "desktop" else PHONE) as page:
        open_live(page, base_url)
        publish_varied(hsi)
        expect(rows(page, "Person with a crowbar at the back door").first).to_be_visible()
        expect(rows(page, "onerror").first.locator("td").last).to_have_text(
            "<img src=x onerror=alert(1)> & <b>x</b>"
        )
        expect(page.locator("[data-testid=live-tiles] li").first).to_be_visible()
        expect(page.locator("[data-live-system=health]")).to_have_text("degraded")
        shoot(page, f"events-{width}")
        page.get_by_label("Risk level").select_option("critical")
        shoot(page, f"filtered-{width}")


# --- The page against a scripted socket (no relay): notices, reconnect, duplicates, refusal, cap -----

FUTURE_MS = 9_999_999_999_999  # above any real stream id, so the page's own ?since= never hides these


def stream_id(n: int) -> str:
    return f"{FUTURE_MS}-{n}"


def frame(type_: str, data: dict[str, Any], *, n: int | None = None, channel: str = "console") -> str:
    message = {"id": stream_id(n) if n is not None else None, "channel": channel, "type": type_, "data": data}
    if n is not None:
        message["time"] = "2026-02-12T07:15:03+00:00"
    return json.dumps(message)


def scripted_event(n: int, summary: str) -> str:
    data = {"camera_id": "porch", "risk_level": "medium", "risk_score": 40, "summary": summary}
    return frame("event", data, n=n, channel="security_events")


@dataclass
class ScriptedSocket:
    """Every connection the page opens, answered by the test instead of daphne."""

    sockets: list[WebSocketRoute] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.route_web_socket(re.compile(r"/ws/events/"), lambda socket: self.sockets.append(socket))

    def wait_for(self, page: Page, count: int) -> WebSocketRoute:
        deadline = time.monotonic() + 15
        while len(self.sockets) < count and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert len(self.sockets) >= count, f"the page opened {len(self.sockets)} sockets, not {count}"
        return self.sockets[count - 1]


def open_scripted(page: Page, base: str) -> ScriptedSocket:
    script = ScriptedSocket()
    script.attach(page)
    page.goto(f"{base}{LIVE}")
    login(page, base, "viewer")
    page.wait_for_url(f"{base}{LIVE}")
    return script


def test_notices_reconnect_with_since_and_no_duplicates(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
) -> None:
    with new_page(browser, viewport=DESKTOP) as page:
        script = open_scripted(page, base_url)
        first = script.wait_for(page, 1)
        first.send(frame("caught_up", {"last_id": None, "replayed": 0}))
        expect(status(page)).to_have_attribute("data-state", "live")
        first.send(scripted_event(1, "scripted one"))
        first.send(frame("lost", {"count": 7, "since": stream_id(0)}))
        first.send(frame("skipped", {"count": 1}))
        expect(rows(page, "scripted one")).to_have_count(1)
        banner = page.locator("[data-testid=live-banner]")
        expect(banner).to_contain_text("7 events lost")
        expect(banner).to_contain_text("1 event skipped")

        first.close(code=1011, reason="server restart")
        expect(status(page)).to_have_attribute("data-state", "reconnecting")
        second = script.wait_for(page, 2)
        assert second.url.endswith(f"?since={stream_id(1)}"), second.url
        second.send(scripted_event(1, "scripted one"))  # already shown: dropped
        second.send(scripted_event(2, "scripted two"))
        second.send(frame("caught_up", {"last_id": stream_id(2), "replayed": 1}))
        expect(status(page)).to_have_text("Live (caught up on 1 missed event)")
        expect(rows(page, "scripted two")).to_have_count(1)
        expect(rows(page, "scripted one")).to_have_count(1)
        page.get_by_role("button", name="Dismiss").click()
        expect(banner).to_be_hidden()


@pytest.mark.parametrize("code", [4008, 1008])  # the console's code under daphne, and RFC 6455's
def test_policy_violation_leaves_the_page_offline(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    code: int,
) -> None:
    with new_page(browser, viewport=DESKTOP) as page:
        script = open_scripted(page, base_url)
        script.wait_for(page, 1).close(code=code, reason="not allowed")
        expect(status(page)).to_have_attribute("data-state", "offline")
        expect(status(page)).to_contain_text("signed out")
        page.wait_for_timeout(2_500)
        assert len(script.sockets) == 1, "a refused socket must not be retried"


def test_rows_are_capped_newest_first(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
) -> None:
    with new_page(browser, viewport=DESKTOP) as page:
        script = open_scripted(page, base_url)
        socket = script.wait_for(page, 1)
        for n in range(1, 521):
            socket.send(scripted_event(n, f"capped {n}"))
        expect(rows(page, "capped 520")).to_have_count(1)
        expect(rows(page)).to_have_count(500)
        assert rows(page).first.get_attribute("data-id") == stream_id(520)
        assert rows(page).last.get_attribute("data-id") == stream_id(21)
        expect(
            page.locator("[data-testid=live-counters]").get_by_role("button", name="event")
        ).to_contain_text("520")


# The parts of tile keys (the text between colons) that the browser broke across lines.
BROKEN_KEY_PARTS = """() => [...document.querySelectorAll(".live-tile-key")].flatMap((key) =>
  [...key.childNodes].filter((node) => node.nodeType === Node.TEXT_NODE && node.textContent.length > 1)
    .filter((node) => { const range = document.createRange(); range.selectNodeContents(node);
                        return range.getClientRects().length > 1; })
    .map((node) => node.textContent))"""


def scripted_world(socket: WebSocketRoute) -> None:
    """One of everything the page draws: events of each risk, depths (one over 80%), an action."""
    socket.send(frame("caught_up", {"last_id": None, "replayed": 0}))
    for n, (kind, risk, camera, summary) in enumerate(VARIED, start=1):
        data = {"camera_id": camera, "risk_level": risk, "risk_score": SCORES[risk], "summary": summary}
        socket.send(frame(kind, data, n=n, channel="security_events"))
    socket.send(
        frame(
            "detection.new",
            {"camera_id": "porch", "label": "person", "confidence": 0.91},
            n=10,
            channel="security_events",
        )
    )
    socket.send(
        frame(
            "camera_status",
            {
                "camera_id": "driveway",
                "camera_name": "Driveway",
                "status": "offline",
                "previous_status": "online",
                "reason": "No uploads for 300 s",
            },
            n=11,
            channel="security_events",
        )
    )
    socket.send(
        frame(
            "alert_created",
            {"severity": "critical", "status": "pending", "dedup_key": "backyard:person", "event_id": 9121},
            n=12,
            channel="security_events",
        )
    )
    socket.send(
        frame(
            "service_status",
            {"name": "ai-detector", "display_name": "Ai Detector", "status": "unhealthy"},
            n=13,
            channel="security_events",
        )
    )
    queues = [
        {
            "key": "detection_queue",
            "kind": "queue",
            "type": "list",
            "length": 8_412,
            "max_size": 10_000,
            "fill_ratio": 0.8412,
            "level": "filling",
        },
        {
            "key": "analysis_queue",
            "kind": "queue",
            "type": "list",
            "length": 7,
            "max_size": 10_000,
            "fill_ratio": 0.0007,
        },
        {
            "key": "hsi:queue:detection_queue",
            "kind": "queue",
            "type": "list",
            "length": 1_250,
            "max_size": 10_000,
            "fill_ratio": 0.125,
        },
        {
            "key": "dlq:detection_queue",
            "kind": "dlq",
            "type": "list",
            "length": 143,
            "max_size": 10_000,
            "fill_ratio": 0.0143,
        },
        {
            "key": "dlq:overflow:analysis_queue",
            "kind": "dlq",
            "type": "list",
            "length": 1_048_576,
            "max_size": None,
            "fill_ratio": None,
            "level": "ok",
        },
        {
            "key": "detections:stream",
            "kind": "queue",
            "type": "stream",
            "length": 10_000,
            "max_size": 10_000,
            "fill_ratio": 1.0,
            "level": "full",
        },
        {
            "key": "detections:stream:dlq",
            "kind": "dlq",
            "type": "stream",
            "length": 8_500,
            "max_size": 10_000,
            "fill_ratio": 0.85,
            "level": "filling",
        },
    ]
    socket.send(frame("queue_depths", {"sampled_at": "2026-02-12T07:15:05+00:00", "queues": queues}))
    action = {
        "user": "alice",
        "action": "retry",
        "key": "dlq:detection_queue",
        "count": 120,
        "summary": "Retried 120 entries of dlq:detection_queue to detection_queue.",
        "audit_id": 17,
    }
    socket.send(frame("action", action, n=14, channel="console_actions"))
    status = {
        "type": "system_status",
        "data": {
            "gpu": {"utilization": 64.5, "temperature": 71, "inference_fps": 11.2},
            "cameras": {"active": 5, "total": 6},
            "queue": {"pending": 42, "processing": 3},
            "health": "degraded",
        },
    }
    socket.send(frame("system_status", status, n=15, channel="system_status"))
    socket.send(frame("lost", {"count": 12, "since": stream_id(0)}))


@pytest.mark.parametrize("width", ["desktop", "phone", "dark"])
def test_scripted_screenshots(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    width: str,
) -> None:
    scheme = "dark" if width == "dark" else "light"
    with new_page(browser, viewport=PHONE if width == "phone" else DESKTOP, color_scheme=scheme) as page:
        script = open_scripted(page, base_url)
        scripted_world(script.wait_for(page, 1))
        expect(page.locator('[data-key="detection_queue"]')).to_have_class("live-tile live-tile-warn")
        overflow = page.locator('[data-key="dlq:overflow:analysis_queue"] .live-tile-fill')
        expect(overflow).to_have_text("dead-letter list · no limit")
        expect(page.locator('[data-key="dlq:overflow:analysis_queue"] .live-tile-length')).to_have_text(
            "1,048,576"
        )
        stream = page.locator('[data-key="detections:stream"]')
        expect(stream).to_have_class("live-tile live-tile-warn live-tile-full")
        expect(stream.locator(".live-tile-fill")).to_have_text(
            "work stream · 10,000 of MAXLEN 10,000 · losing entries"
        )
        expect(page.locator('[data-key="detections:stream:dlq"] .live-tile-fill')).to_have_text(
            "dead-letter stream · 8,500 of MAXLEN 10,000 · filling up"
        )
        expect(page.locator("[data-testid=live-actions] li")).to_contain_text("alice: Retried 120 entries")
        shoot(page, f"scripted-{width}")
        assert page.evaluate(BROKEN_KEY_PARTS) == [], "a tile's key broke inside a word"
