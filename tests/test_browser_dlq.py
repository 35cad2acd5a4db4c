"""The DLQ pages in a real Chromium against daphne: filter, select, retry, confirm; bulk.js; screenshots."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from playwright.sync_api import Browser, Locator, Page, Route, ViewportSize, expect

from queues import archive, dlq, keys
from queues.codec import decode, encode_payload
from tests.live_server import LiveConsole
from tests.test_browser import ARTIFACTS, base_url, browser, login, new_page  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

DLQ = "dlq:detection_queue"
DLQ_PATH = "/queues/dlq:detection_queue/"
BULK_DLQ = "dlq:browser_bulk_queue"
SELECT_DLQ, SELECT_SOURCE = "dlq:browser_select_queue", "browser_select_queue"
SELECT_PATH = f"/queues/{SELECT_DLQ}/"
STREAM_DLQ, STREAM_SOURCE = "browser_select:stream:dlq", "browser_select:stream"
STREAM_PATH = f"/queues/{STREAM_DLQ}/"
DASH = "\u2013"
# Every securitypolicyviolation event becomes a console message that with_csp collects.
REPORT_VIOLATIONS = (
    "document.addEventListener('securitypolicyviolation', (e) => console.error("
    "`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));"
)
JSON = "application/json"
UNDO = "Undo: restore them"
# The live console runs bulk actions in 0.05 s steps (tests/live_server.py): this many entries take
# several steps on any machine (a step handles at least one batch of 250), so bulk.js drives them.
BULK = 10_000
DESKTOP = ViewportSize(width=1400, height=900)
PHONE = ViewportSize(width=390, height=844)


@pytest.fixture
def demo_world(live_console: LiveConsole) -> LiveConsole:
    """A fresh demo world: each test starts from the same DLQs whatever earlier tests changed."""
    live_console.manage("load_demo_world", "--force")
    return live_console


@pytest.fixture
def live_redis(live_console: LiveConsole) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(live_console.env["REDIS_URL"])
    yield client
    client.close()


def summary(verb: str, done: int, key: str) -> str:
    """The service's sentence for a finished action: what the page must say."""
    target = keys.source_queue(key) if verb == "Retried" else None
    return dlq.Outcome(key, target, done=done).summary(verb)


def with_csp(page: Page) -> list[str]:
    """Collect CSP violations and script errors under the console's own CSP header (console/middleware.py)."""
    problems: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def hold_back_steps(page: Page, steps: str) -> None:
    """Hold each bulk step posted to ``steps`` (a URL glob) back a little, so that Stop is pressed
    while the run is under way; ``page.unroute(steps)`` lets them through again."""

    def slowly(route: Route) -> None:
        page.wait_for_timeout(150)
        route.continue_()

    page.route(steps, slowly)


def finished(page: Page) -> Locator:
    """A bulk action's last word: bulk.js's status on the progress page, or the message of a run
    that finished in its first step (how many steps a run of a few thousand entries takes depends
    on the machine)."""
    return page.locator("[data-testid=bulk-status], .messagelist li").first


def json_steps(page: Page) -> list[str]:
    """The URLs of the steps bulk.js posts from now on (it asks for JSON; a form's own POST does not)."""
    steps: list[str] = []
    page.on("request", lambda r: steps.append(r.url) if r.headers.get("accept") == JSON else None)
    return steps


def queue_length(page: Page, key: str) -> int:
    return int(page.locator(f'tr[data-key="{key}"] [data-testid=length]').inner_text().replace(",", ""))


def test_operator_filters_selects_retries_and_sees_the_counts(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    demo_world: LiveConsole,
) -> None:
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/")
        login(page, base_url, "operator")
        page.wait_for_url(f"{base_url}/queues/")
        dlq_before, queue_before = queue_length(page, DLQ), queue_length(page, "detection_queue")

        page.get_by_role("link", name=DLQ, exact=True).click()
        page.get_by_label("Camera").fill("porch")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("[data-testid=scan-note]")).to_contain_text("match")
        rows = page.locator("[data-testid=entries] tbody tr")
        assert rows.count() >= 2
        for text in rows.all_inner_texts():
            assert "porch" in text
        chosen = [rows.nth(i).get_attribute("data-ref") or "" for i in (0, 1)]
        for ref in chosen:
            page.locator(f'input[name=ref][value="{ref}"]').check()

        page.get_by_role("button", name="Retry selected").click()
        expect(page.locator("[data-testid=confirm-what]")).to_have_text(
            "Retry 2 selected entries of dlq:detection_queue to detection_queue."
        )
        page.get_by_role("button", name="Yes, retry 2 entries").click()
        expect(page.locator(".messagelist .success")).to_have_text(summary("Retried", 2, DLQ))
        assert "camera=porch" in page.url
        for ref in chosen:
            fingerprint = ref.partition(":")[2]
            expect(page.locator(f'tr[data-ref$=":{fingerprint}"]')).to_have_count(0)

        page.get_by_role("navigation", name="Console").get_by_role("link", name="Queues").click()
        assert queue_length(page, DLQ) == dlq_before - 2
        assert queue_length(page, "detection_queue") == queue_before + 2
        assert not problems, problems


def test_viewer_sees_no_action_buttons(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    demo_world: LiveConsole,
) -> None:
    with new_page(browser, viewport=DESKTOP) as page:
        page.goto(f"{base_url}{DLQ_PATH}")
        login(page, base_url, "viewer")
        page.wait_for_url(f"{base_url}{DLQ_PATH}")
        expect(page.locator("[data-testid=entries] tbody tr")).to_have_count(50)
        expect(page.locator("input[name=ref]")).to_have_count(0)
        for name in ("Retry selected", "Delete selected", "Retry all…", "Delete all…"):
            expect(page.get_by_role("button", name=name)).to_have_count(0)
            expect(page.get_by_role("link", name=name)).to_have_count(0)
        page.locator("[data-testid=entries] tbody tr a").first.click()
        expect(page.get_by_text("Decoded value")).to_be_visible()
        expect(page.get_by_role("button", name=re.compile("Retry|Delete"))).to_have_count(0)


def test_bulk_delete_runs_chunk_by_chunk_with_bulk_js_under_csp(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """BULK entries take several steps: the progress page, then bulk.js."""
    entry = {"original_job": {"camera_id": "bulk"}, "error": "bulk", "attempt_count": 3}
    live_redis.delete(BULK_DLQ)
    live_redis.rpush(BULK_DLQ, *[encode_payload({**entry, "n": n}) for n in range(BULK)])
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        chunks = json_steps(page)
        page.goto(f"{base_url}/queues/{BULK_DLQ}/matching/delete/")
        login(page, base_url, "operator")
        expect(page.locator("[data-testid=confirm-what]")).to_have_text(
            f"Delete all {BULK:,} entries of {BULK_DLQ}."
        )
        page.get_by_role("button", name=f"Yes, delete {BULK:,} entries").click()
        expect(page.locator("progress[data-bulk-progress]")).to_be_visible()
        expect(page.locator("#content h1")).to_have_text("Delete in progress")
        status = page.locator("[data-testid=bulk-status]")
        expect(status).to_have_text(f"{summary('Deleted', BULK, BULK_DLQ)} {UNDO}", timeout=60_000)
        expect(status).to_have_class(re.compile("queues-status-success"))
        expect(page.locator("#content h1")).to_have_text("Delete finished")
        expect(page.locator("[data-bulk-stage]")).to_have_text("finished")
        expect(page).to_have_title(re.compile("^Delete finished"))
        assert page.eval_on_selector("progress", "bar => [bar.value, bar.max]") == [BULK, BULK]
        expect(page.get_by_role("button", name="Continue")).to_be_hidden()
        undo = status.get_by_role("link", name=UNDO)  # bulk.js adds it: the whole run is one delete
        expect(undo).to_have_attribute("href", re.compile(r"^/archive/\?deletion=[0-9a-f]{32}$"))
        page.get_by_role("link", name=f"Back to {BULK_DLQ}").click()
        expect(page.locator("[data-testid=pager-label]").first).to_have_text("no items here (of 0)")
        assert live_redis.llen(BULK_DLQ) == 0
        assert chunks, "bulk.js posted no JSON chunk: the first chunk did everything"
        assert not problems, problems


def test_operator_stops_a_bulk_delete_then_continues_it(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """Stop ends the run after the step under way: every entry is in the DLQ or the archive, the
    page says how far it got and links to the undo of what is deleted so far; Continue finishes."""
    raws = [
        encode_payload({"original_job": {"camera_id": "stop"}, "error": "x", "n": n}) for n in range(BULK)
    ]
    live_redis.delete(BULK_DLQ)
    live_redis.rpush(BULK_DLQ, *raws)
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{BULK_DLQ}/matching/delete/")
        login(page, base_url, "operator")

        hold_back_steps(page, f"**/queues/{BULK_DLQ}/matching/delete/")
        page.get_by_role("button", name=f"Yes, delete {BULK:,} entries").click()
        stop = page.get_by_role("button", name="Stop")
        stop.click()
        status = page.locator("[data-testid=bulk-status]")
        expect(status).to_contain_text("Stopped. Deleted ", timeout=30_000)
        expect(status).to_contain_text("not examined yet. Continue goes on from here.")
        expect(page.locator("#content h1")).to_have_text("Delete stopped")
        expect(stop).to_be_hidden()
        expect(page.locator("[data-testid=bulk-end]")).to_be_hidden()  # it kept nothing: no order to put back
        left = live_redis.llen(BULK_DLQ)
        assert 0 < left < BULK
        assert live_redis.lrange(BULK_DLQ, 0, -1) == raws[BULK - left :], "the rest is untouched, in order"
        undo = status.get_by_role("link", name=UNDO)
        stopped_href = undo.get_attribute("href")
        page.unroute(f"**/queues/{BULK_DLQ}/matching/delete/")

        page.get_by_role("button", name="Continue").click()
        expect(finished(page)).to_have_text(f"{summary('Deleted', BULK, BULK_DLQ)} {UNDO}", timeout=60_000)
        assert live_redis.llen(BULK_DLQ) == 0
        assert finished(page).get_by_role("link", name=UNDO).get_attribute("href") == stopped_href, (
            "one delete"
        )
        page.goto(f"{base_url}{stopped_href}")
        expect(page.locator("[data-testid=archive-deletion]")).to_contain_text(
            f"One delete action: {BULK:,} entries of {BULK_DLQ} deleted by operator"
        )
        assert not problems, problems


def test_operator_ends_a_stopped_filtered_retry_and_the_dlq_is_back_in_order(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """Stopped halfway, a filtered retry has left the entries it examined at the tail; "End here"
    puts the ones not examined behind them, retries nothing more, and says so."""
    key, source = "dlq:browser_end_queue", "browser_end_queue"
    # Stop is pressed while the second step is under way, and that step still runs: on a fast
    # machine one 50 ms step of a filtered retry examines about 5,000 entries, so the DLQ holds
    # enough that the first two steps cannot finish the run.
    entries = 4 * BULK
    raws = [
        encode_payload({"original_job": {"camera_id": ("porch", "yard")[n % 2], "n": n}, "error": "x"})
        for n in range(entries)
    ]
    live_redis.delete(key, source)
    live_redis.rpush(key, *raws)
    matching = f"**/queues/{key}/matching/retry/"
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{key}/matching/retry/?camera=yard")
        login(page, base_url, "operator")
        hold_back_steps(page, matching)
        page.get_by_role("button", name=re.compile(r"^Yes, retry")).click()
        page.get_by_role("button", name="Stop").click()
        status = page.locator("[data-testid=bulk-status]")
        expect(status).to_contain_text("Stopped. Retried ", timeout=30_000)
        page.unroute(matching)
        end = page.locator("[data-testid=bulk-end]")
        expect(end).to_be_visible()
        retried = live_redis.llen(source)
        left = entries - 2 * retried
        assert retried > 0 and left > 0
        expect(end).to_contain_text(f"the {retried:,} entries it examined and left sit at the tail of {key}")
        expect(end).to_contain_text(f"after the {left:,} it has not examined yet")
        assert live_redis.lrange(key, 0, -1) == raws[2 * retried :] + raws[: 2 * retried : 2]

        end.get_by_role("button", name="End here and put the DLQ back in order").click()
        put_back = f"the {left:,} not examined went back behind the others, so the DLQ is in its old order."
        expect(finished(page)).to_contain_text(f"ended early: {put_back}", timeout=60_000)
        expect(finished(page)).to_contain_text(f"Retried {retried:,} of {key} to {source}")
        assert live_redis.llen(source) == retried, "ending retried nothing"
        assert live_redis.lrange(key, 0, -1) == raws[: 2 * retried : 2] + raws[2 * retried :]
        assert not problems, problems


def test_a_refused_step_shows_the_servers_sentence_and_continue_goes_on(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """A step the server refuses (here Redis down, answered as the console answers it) stops the run
    with the refusal's sentence, not its code; once it is fixed, Continue finishes the run."""
    live_redis.delete(BULK_DLQ)
    live_redis.rpush(BULK_DLQ, *[encode_payload({"error": "x", "n": n}) for n in range(BULK)])
    sentence = "Redis at 127.0.0.1:6379 refused the connection: is redis-server running there?"
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{BULK_DLQ}/matching/delete/")
        login(page, base_url, "operator")
        steps = f"**/queues/{BULK_DLQ}/matching/delete/"

        def redis_down(route: Route) -> None:
            if route.request.headers.get("accept") != JSON:
                route.continue_()  # the confirmation's own POST: the first step runs
                return
            body = {"error": "redis_unavailable", "detail": sentence}
            route.fulfill(status=503, content_type=JSON, body=json.dumps(body))

        page.route(steps, redis_down)
        page.get_by_role("button", name=f"Yes, delete {BULK:,} entries").click()
        status = page.locator("[data-testid=bulk-status]")
        expect(status).to_have_text(f"Stopped: {sentence} Press Continue to try the next step again.")
        expect(status).to_have_class(re.compile("queues-status-error"))
        assert 0 < live_redis.llen(BULK_DLQ) < BULK, "the first step ran, the refused one did nothing"
        page.unroute(steps)
        page.get_by_role("button", name="Continue").click()
        expect(finished(page)).to_have_text(f"{summary('Deleted', BULK, BULK_DLQ)} {UNDO}", timeout=60_000)
        assert live_redis.llen(BULK_DLQ) == 0
        assert not problems, problems


def test_operator_restores_a_whole_deletion_from_the_archive(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """Delete-all, then "Restore all" on the archive page (steps driven by bulk.js) puts every entry
    back in its old order."""
    key = "dlq:browser_restore_queue"
    raws = [
        encode_payload({"original_job": {"camera_id": "yard", "n": n}, "error": "x"}) for n in range(8_000)
    ]
    live_redis.delete(key)
    live_redis.rpush(key, *raws)
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{key}/matching/delete/")
        login(page, base_url, "operator")
        page.get_by_role("button", name="Yes, delete 8,000 entries").click()
        status = page.locator("[data-testid=bulk-status]")
        expect(status).to_have_text(f"{summary('Deleted', 8_000, key)} {UNDO}", timeout=60_000)
        assert live_redis.llen(key) == 0
        live_redis.rpush(key, b"arrived meanwhile")

        page.goto(f"{base_url}/archive/")
        page.get_by_label("Key").select_option(key)
        page.get_by_role("button", name="Show").click()
        expect(page.locator("[data-testid=restore-all]")).to_contain_text(
            f"{key}: 8,000 entries still archived."
        )
        page.get_by_role("link", name=f"Restore all to {key}…").click()
        expect(page.locator("[data-testid=confirm-what]")).to_have_text(
            f"Restore all 8,000 archived entries of {key} to {key}."
        )
        expect(page.locator("[data-testid=confirm-room]")).to_have_text(
            f"{key} holds 1 of 10,000 entries: room for 9,999 more."
        )
        chunks = json_steps(page)
        page.get_by_role("button", name="Yes, restore them").click()
        expect(page.locator("#content h1")).to_have_text(re.compile("^Restore"))
        done = page.locator("[data-testid=bulk-status]")
        expect(done).to_have_text(f"Restored 8,000 archived entries of {key} to {key}.", timeout=60_000)
        expect(done).to_have_class(re.compile("success"))
        assert page.eval_on_selector("progress", "bar => [bar.value, bar.max]") == [8_000, 8_000]
        assert chunks, "bulk.js posted no JSON step: the first step restored everything"
        assert live_redis.lrange(key, 0, -1) == [b"arrived meanwhile", *raws], "appended in their old order"
        page.goto(f"{base_url}/archive/?key={key}")
        expect(page.locator("[data-testid=restore-all]")).to_have_count(0)
        assert not problems, problems


def test_operator_undoes_one_delete_from_its_message(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """Two deletes of one DLQ; "Undo" in the second's message (a filtered delete-all) restores
    exactly its entries, in their old order, and leaves the first archived."""
    key = "dlq:browser_undo_queue"
    raws = [
        encode_payload({"original_job": {"camera_id": ("porch", "yard")[n % 2], "n": n}, "error": "x"})
        for n in range(3_000)
    ]
    live_redis.delete(key)
    live_redis.rpush(key, *raws)
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{key}/?size=10")
        login(page, base_url, "operator")
        page.locator("input[name=ref]").first.check()  # n=0: a delete of its own
        page.get_by_role("button", name="Delete selected").first.click()
        page.get_by_role("button", name="Yes, delete 1 entry").click()
        expect(page.locator(".messagelist")).to_contain_text(f"Deleted 1 (archived) of {key}. {UNDO}")

        page.goto(f"{base_url}/queues/{key}/?camera=yard")
        page.get_by_role("link", name=re.compile("^Delete all matching")).click()
        page.get_by_role("button", name="Yes, delete 1,500 entries").click()
        said = f"Deleted 1,500 (archived) of {key}; 1,499 did not match the filter (left in place). {UNDO}"
        expect(finished(page)).to_have_text(said, timeout=60_000)
        assert live_redis.lrange(key, 0, -1) == raws[2::2]

        undo = finished(page).get_by_role("link", name=UNDO)
        undo_url = f"{base_url}{undo.get_attribute('href')}"
        undo.click()
        expect(page.locator("[data-testid=archive-deletion]")).to_contain_text(
            f"One delete action: 1,500 entries of {key} deleted by operator"
        )
        expect(page.locator("[data-testid=pager-label]").first).to_contain_text("of 1,500")
        page.get_by_role("link", name=f"Restore these 1,500 to {key}…").click()
        expect(page.locator("[data-testid=confirm-what]")).to_contain_text("Undo a delete by operator")
        page.get_by_role("button", name="Yes, restore them").click()
        expect(finished(page)).to_have_text(
            f"Restored 1,500 archived entries of {key} to {key}.", timeout=60_000
        )
        assert live_redis.lrange(key, 0, -1) == raws[2::2] + raws[1::2]
        page.goto(undo_url)
        expect(page.locator("[data-testid=archive-deletion]")).to_contain_text("every one restored since")
        page.goto(f"{base_url}/archive/?key={key}&state=archived")
        expect(page.locator("[data-testid=pager-label]").first).to_contain_text("of 1")
        assert not problems, problems


def test_operator_searches_the_archive_and_restores_only_the_matching_jobs(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    key, source = "dlq:browser_archive_queue", "browser_archive_queue"
    raws = [
        encode_payload({"original_job": {"camera_id": ("porch", "yard")[n % 2], "n": n}, "error": "x"})
        for n in range(600)
    ]
    live_redis.delete(key, source)
    live_redis.rpush(key, *raws)
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{key}/matching/delete/")
        login(page, base_url, "operator")
        page.get_by_role("button", name="Yes, delete 600 entries").click()
        expect(finished(page)).to_contain_text(UNDO)
        page.goto(f"{base_url}/archive/?key={key}")
        page.get_by_label("Camera").fill("yard")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("[data-testid=archive-scan]")).to_contain_text(
            "Searched 99 archived entries, newest first: the first 50 matches so far."  # n = 599 … 501
        )
        rows = page.locator("[data-testid=archive-rows] tbody tr")
        expect(rows).to_have_count(50)
        expect(rows.first).to_contain_text("yard")
        page.get_by_role("link", name=f"Restore all matching jobs to {source}…").click()
        expect(page.locator("[data-testid=confirm-what]")).to_have_text(
            f"Restore 300 archived entries of {key} matching camera “yard”: their jobs to {source}."
        )
        page.get_by_role("button", name="Yes, restore them").click()
        expect(finished(page)).to_have_text(
            f"Restored 300 archived entries of {key} to {source}; 300 {archive.NOT_MATCHING}."
        )
        jobs = [decode(raw).value for raw in live_redis.lrange(source, 0, -1)]
        assert [job["n"] for job in jobs] == list(range(1, 600, 2)) and {j["camera_id"] for j in jobs} == {
            "yard"
        }
        assert not problems, problems


# --- A selection across pages (select.js, and the same forms without it) ---------------------------


def fill_select_dlq(client: redis.Redis) -> None:
    """30 retryable entries whose ``original_job.n`` is their starting index; an empty source queue."""
    client.delete(SELECT_DLQ, SELECT_SOURCE)
    client.rpush(
        SELECT_DLQ,
        *[
            encode_payload(
                {
                    "original_job": {"camera_id": "porch", "file_path": f"/export/porch/{n}.jpg", "n": n},
                    "error": "Detection request timed out after 30.0s",
                    "error_type": "TimeoutError",
                    "attempt_count": 3,
                    "first_failed_at": "2026-02-11T22:04:11+00:00",
                    "last_failed_at": f"2026-02-11T22:{n:02d}:14+00:00",
                    "queue_name": SELECT_SOURCE,
                }
            )
            for n in range(30)
        ],
    )


def numbers(client: redis.Redis, key: str) -> list[int]:
    """The ``n`` of each job in a source queue or DLQ, in list order."""
    values = [decode(raw).value for raw in client.lrange(key, 0, -1)]
    return [value["original_job"]["n"] if "original_job" in value else value["n"] for value in values]


def tick(page: Page, ref: str, name: str = "ref") -> None:
    """Tick one row (a list DLQ's ``ref``, a stream DLQ's ``id``) and wait for select.js to save it."""
    with page.expect_response(
        lambda r: r.url.endswith("/selection/") and r.request.method == "POST"
    ) as saved:
        page.locator(f'input[name={name}][value="{ref}"]').check()
    assert saved.value.ok


def open_selectable(page: Page, base: str, path: str) -> Locator:
    """Sign in as an Operator on a DLQ page of 10; its selection banner, hidden while nothing is ticked.

    With JavaScript the "Update selection" button is hidden too: ticking a box saves at once.
    """
    url = f"{base}{path}?size=10"
    page.goto(url)
    login(page, base, "operator")
    page.wait_for_url(url)
    banner = page.locator("[data-testid=selection]")
    expect(banner).to_be_hidden()
    expect(page.get_by_role("button", name="Update selection")).to_be_hidden()
    return banner


def test_operator_selects_on_two_pages_then_retries_exactly_those(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    fill_select_dlq(live_redis)
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        banner = open_selectable(page, base_url, SELECT_PATH)
        rows = page.locator("[data-testid=entries] tbody tr")
        chosen = [rows.nth(i).get_attribute("data-ref") or "" for i in (1, 4)]
        for ref in chosen:
            tick(page, ref)
        expect(banner).to_contain_text("2 selected across pages")

        page.locator("a[rel=next]").first.click()
        expect(page.locator("[data-testid=pager-label]").first).to_have_text(f"items 11{DASH}20 of 30")
        expect(banner).to_contain_text("2 selected across pages")
        expect(page.locator("input[name=ref]:checked")).to_have_count(0)
        tick(page, rows.nth(3).get_attribute("data-ref") or "")
        expect(banner).to_contain_text("3 selected across pages (1 on this page)")
        shoot(page, "selection-across-pages", "desktop")
        page.set_viewport_size(PHONE)
        shoot(page, "selection-across-pages", "phone")
        page.set_viewport_size(DESKTOP)

        page.locator("a[rel=prev]").first.click()
        for ref in chosen:
            expect(page.locator(f'input[name=ref][value="{ref}"]')).to_be_checked()
        page.get_by_role("button", name="Retry selected").click()
        expect(page.locator("[data-testid=confirm-what]")).to_have_text(
            f"Retry 3 selected entries of {SELECT_DLQ} to {SELECT_SOURCE}."
        )
        expect(page.locator("[data-testid=confirm-rows] tbody tr")).to_have_count(3)
        shoot(page, "confirm-selection", "desktop")
        assert live_redis.llen(SELECT_DLQ) == 30, "the confirmation page changes nothing"
        page.get_by_role("button", name="Yes, retry 3 entries").click()
        expect(page.locator(".messagelist .success")).to_have_text(summary("Retried", 3, SELECT_DLQ))
        expect(banner).to_be_hidden()
        assert numbers(live_redis, SELECT_SOURCE) == [1, 4, 13]
        assert numbers(live_redis, SELECT_DLQ) == [n for n in range(30) if n not in (1, 4, 13)]
        assert not problems, problems


def test_selection_across_pages_without_javascript(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    fill_select_dlq(live_redis)
    with new_page(browser, viewport=DESKTOP, java_script_enabled=False) as page:
        page.goto(f"{base_url}{SELECT_PATH}?size=10")
        login(page, base_url, "operator")
        boxes = page.locator("input[name=ref]")
        boxes.nth(0).check()
        boxes.nth(2).check()
        page.get_by_role("button", name="Update selection").click()
        expect(page.locator("[data-testid=selection]")).to_contain_text("2 selected across pages")
        expect(page.locator("input[name=ref]:checked")).to_have_count(2)
        ARTIFACTS.mkdir(exist_ok=True)  # shoot() measures with script, which is off here
        page.screenshot(path=str(ARTIFACTS / "queues-selection-no-js-desktop.png"), full_page=True)
        page.locator("a[rel=next]").first.click()
        boxes.nth(0).check()
        page.get_by_role("button", name="Delete selected").click()
        expect(page.locator("[data-testid=confirm-what]")).to_have_text(
            f"Delete 3 selected entries of {SELECT_DLQ}."
        )
        page.get_by_role("button", name="Yes, delete 3 entries").click()
        expect(page.locator(".messagelist")).to_contain_text(summary("Deleted", 3, SELECT_DLQ))
        assert numbers(live_redis, SELECT_DLQ) == [n for n in range(30) if n not in (0, 2, 10)]


def test_operator_selects_stream_entries_on_two_pages_then_retries_them(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """A stream DLQ keeps its ticks across pages too (by entry id), and retries exactly those."""
    live_redis.delete(STREAM_DLQ, STREAM_SOURCE)
    fields: dict[Any, Any] = {"camera_id": "porch", "dlq_reason": "max_delivery_exceeded"}
    added: list[Any] = [live_redis.xadd(STREAM_DLQ, {**fields, "n": n}) for n in range(15)]
    ids = [entry_id.decode() for entry_id in added]
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        banner = open_selectable(page, base_url, STREAM_PATH)
        tick(page, ids[2], "id")
        expect(banner).to_contain_text("1 selected across pages (1 on this page)")

        page.get_by_role("link", name="Next 10").click()
        expect(page.locator(f'input[name=id][value="{ids[12]}"]')).to_be_visible()
        expect(banner).to_contain_text("1 selected across pages (0 on this page)")
        tick(page, ids[12], "id")
        expect(banner).to_contain_text("2 selected across pages (1 on this page)")
        shoot(page, "stream-selection-across-pages", "desktop")
        page.set_viewport_size(PHONE)
        shoot(page, "stream-selection-across-pages", "phone")
        page.set_viewport_size(DESKTOP)

        page.get_by_role("button", name="Retry selected").click()
        expect(page.locator("[data-testid=confirm-what]")).to_have_text(
            f"Retry 2 selected entries of {STREAM_DLQ} to {STREAM_SOURCE}."
        )
        expect(page.locator("[data-testid=confirm-rows] tbody tr")).to_have_count(2)
        assert live_redis.xlen(STREAM_DLQ) == 15, "the confirmation page changes nothing"
        page.get_by_role("button", name="Yes, retry 2 entries").click()
        expect(page.locator(".messagelist .success")).to_have_text(summary("Retried", 2, STREAM_DLQ))
        expect(banner).to_be_hidden()
        moved: Any = live_redis.xrange(STREAM_SOURCE)
        assert [int(entry[b"n"]) for _, entry in moved] == [2, 12]
        left: Any = live_redis.xrange(STREAM_DLQ)
        assert [i.decode() for i, _ in left] == [i for n, i in enumerate(ids) if n not in (2, 12)]
        assert not problems, problems


TRIM_STREAM, TRIM_DLQ, TRIM_GROUP = "browser_trim:stream", "browser_trim:stream:dlq", "trim-workers"


def test_operator_retries_into_a_stream_at_maxlen_then_sees_it_losing_entries(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """HSI's stream sits at MAXLEN once full; its DLQ can still be retried while the group keeps up.
    When the workers then stop and HSI keeps adding, the queue list says entries are being lost."""
    maxlen = 10_000  # the live console's QUEUE_MAX_SIZE
    live_redis.delete(TRIM_STREAM, TRIM_DLQ)
    live_redis.xgroup_create(TRIM_STREAM, TRIM_GROUP, id="$", mkstream=True)

    def produce(count: int) -> None:
        pipe = live_redis.pipeline(transaction=False)
        for n in range(count):
            pipe.xadd(TRIM_STREAM, {"camera_id": "porch", "n": n}, maxlen=maxlen, approximate=False)
        pipe.execute()

    produce(maxlen + 100)
    while True:
        reply: Any = live_redis.xreadgroup(TRIM_GROUP, "w", {TRIM_STREAM: ">"}, count=5000)
        if not reply:
            break
        live_redis.xack(TRIM_STREAM, TRIM_GROUP, *[entry_id for entry_id, _ in reply[0][1]])
    failed: dict[Any, Any] = {
        "camera_id": "porch",
        "dlq_reason": "max_delivery_exceeded",
        "delivery_count": "3",
    }
    for n in range(30):
        live_redis.xadd(TRIM_DLQ, {**failed, "n": n})
    try:
        with new_page(browser, viewport=DESKTOP) as page:
            problems = with_csp(page)
            login(page, base_url, "operator")
            page.goto(f"{base_url}/queues/")
            row = page.locator(f'tr[data-key="{TRIM_STREAM}"]')
            expect(row.locator(".queues-fill")).to_have_attribute("data-level", "ok")
            expect(row.locator(".queues-fill")).to_contain_text("10,000 of MAXLEN 10,000")

            page.goto(f"{base_url}/queues/{TRIM_DLQ}/")
            page.get_by_role("link", name="Retry all…").click()
            expect(page.locator("[data-testid=confirm-room]")).to_have_text(
                f"{TRIM_STREAM} can take 10,000 more entries before HSI's XADD MAXLEN 10,000 would trim one "
                "its consumer groups have not processed."
            )
            page.get_by_role("button", name="Yes, retry all 30 entries").click()
            expect(page.locator(".messagelist .success")).to_have_text(summary("Retried", 30, TRIM_DLQ))
            assert (live_redis.xlen(TRIM_DLQ), live_redis.xlen(TRIM_STREAM)) == (0, maxlen + 30)

            produce(maxlen)  # the workers stopped; HSI's XADD MAXLEN goes on
            page.goto(f"{base_url}/queues/")
            expect(row).to_have_class("queues-full")
            expect(row.locator("[data-testid=trimmed-unread]")).to_have_text("30 trimmed unread")
            alert = page.locator(f'.messagelist li[data-key="{TRIM_STREAM}"]')
            expect(alert).to_contain_text(
                f"Losing entries of group {TRIM_GROUP}: HSI's XADD MAXLEN trimmed 30 entries it had not read."
            )
            shoot(page, "stream-losing-entries", "desktop")
            assert not problems, problems
    finally:
        live_redis.delete(TRIM_STREAM, TRIM_DLQ)


# --- Screenshots of every page, desktop and phone --------------------------------------------------


def shoot(page: Page, name: str, width: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"queues-{name}-{width}.png"), full_page=True)
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width + 1, f"{name} is {scroll_width}px wide in a {inner_width}px viewport"


def visit_every_page(page: Page, base_url: str, width: str) -> None:  # noqa: F811 - not the fixture
    page.goto(f"{base_url}/queues/")
    shoot(page, "list", width)
    page.goto(f"{base_url}{DLQ_PATH}?size=25&camera=porch")
    shoot(page, "dlq-filtered", width)
    page.goto(f"{base_url}{DLQ_PATH}?size=25")
    shoot(page, "dlq", width)
    page.locator("[data-testid=entries] tbody tr").nth(1).locator("a").click()
    page.locator("details").last.evaluate("details => details.open = true")
    shoot(page, "entry", width)
    page.goto(f"{base_url}{DLQ_PATH}?size=10")
    page.locator("input[name=ref]").nth(0).check()
    page.locator("input[name=ref]").nth(2).check()
    page.get_by_role("button", name="Delete selected").click()
    shoot(page, "confirm-selected", width)
    page.get_by_role("button", name=re.compile("Yes, delete")).click()
    shoot(page, "after-delete", width)
    page.goto(f"{base_url}{DLQ_PATH}matching/retry/?q=timed+out")
    shoot(page, "confirm-all", width)
    for name, path in (
        ("queue", "/queues/detection_queue/"),
        ("overflow", "/queues/dlq:overflow:analysis_queue/"),
        ("stream", "/queues/detections:stream/"),
        ("vanished", f"{DLQ_PATH}entry/3/00000000000000000000/"),
        ("bad-filter", f"{DLQ_PATH}?since=yesterday"),
        ("archive", "/archive/"),
    ):
        page.goto(f"{base_url}{path}")
        shoot(page, name, width)
    page.locator("[data-testid=archive-rows] tbody tr a").first.click()
    shoot(page, "archive-item", width)


FILTER_STREAM, FILTER_DLQ = "browser_filter:stream", "browser_filter:stream:dlq"


def test_operator_filters_a_stream_dlq_by_camera_and_retries_only_those(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """Reason and camera narrow a stream DLQ; "Retry all matching" moves those and leaves the rest."""
    live_redis.delete(FILTER_STREAM, FILTER_DLQ)
    cameras = ("porch", "driveway", "garage")
    pipe = live_redis.pipeline(transaction=False)
    for n in range(300):
        reason = "poison_message" if n % 10 == 0 else "max_delivery_exceeded"
        failed = {"camera_id": cameras[n % 3], "n": str(n), "dlq_reason": reason, "delivery_count": "4"}
        pipe.xadd(FILTER_DLQ, failed)  # type: ignore[arg-type]
    pipe.execute()
    expected = [n for n in range(300) if n % 3 == 0 and n % 10 == 0]  # porch and poison: 10 entries
    try:
        with new_page(browser, viewport=DESKTOP) as page:
            problems = with_csp(page)
            login(page, base_url, "operator")
            page.goto(f"{base_url}/queues/{FILTER_DLQ}/")
            page.get_by_label("Reason").fill("poison")
            page.get_by_label("Camera").fill("porch")
            page.get_by_role("button", name="Show").click()
            expect(page.locator("[data-testid=scan-note]")).to_have_text("Searched 300 of 300: 10 match.")
            rows = page.locator("[data-testid=stream-entries] tbody tr")
            expect(rows).to_have_count(10)
            for text in rows.all_inner_texts():
                assert "porch" in text and "poison_message" in text

            page.get_by_role("link", name="Retry all matching…").click()
            expect(page.locator("[data-testid=confirm-what]")).to_have_text(
                f"Retry all 10 entries of {FILTER_DLQ} matching reason “poison”, camera “porch” "
                f"to {FILTER_STREAM}."
            )
            page.get_by_role("button", name="Yes, retry 10 entries").click()
            expect(page.locator(".messagelist .success")).to_have_text(
                f"Retried 10 of {FILTER_DLQ} to {FILTER_STREAM}; "
                "290 did not match the filter (left in place)."
            )
            expect(page.locator("[data-testid=scan-note]")).to_have_text("Searched 290 of 290: 0 match.")
            rows_moved: Any = live_redis.xrange(FILTER_STREAM)
            assert [int(fields[b"n"]) for _, fields in rows_moved] == expected
            left: Any = live_redis.xrange(FILTER_DLQ)
            assert [int(fields[b"n"]) for _, fields in left] == [n for n in range(300) if n not in expected]
            assert not problems, problems
    finally:
        live_redis.delete(FILTER_STREAM, FILTER_DLQ)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_screenshots_of_every_page(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    demo_world: LiveConsole,
    width: str,
) -> None:
    with new_page(browser, viewport=DESKTOP if width == "desktop" else PHONE) as page:
        page.goto(f"{base_url}/login/")
        login(page, base_url, "operator")
        visit_every_page(page, base_url, width)


def test_progress_page_without_javascript(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """With scripts off the progress page offers Continue until BULK entries are deleted."""
    live_redis.delete(BULK_DLQ)
    live_redis.rpush(BULK_DLQ, *[encode_payload({"error": "x", "n": n}) for n in range(BULK)])
    with new_page(browser, viewport=DESKTOP, java_script_enabled=False) as page:
        page.goto(f"{base_url}/queues/{BULK_DLQ}/matching/delete/")
        login(page, base_url, "operator")
        page.get_by_role("button", name=f"Yes, delete {BULK:,} entries").click()
        expect(page.get_by_role("button", name="Continue")).to_be_visible()
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()  # bulk.js's: useless without it
        ARTIFACTS.mkdir(exist_ok=True)  # shoot() measures with script, which is off here
        page.screenshot(path=str(ARTIFACTS / "queues-progress-desktop.png"), full_page=True)
        for _ in range(BULK // dlq.BATCH_SIZE):  # a step deletes at least one batch, however slow
            button = page.get_by_role("button", name="Continue")
            if not button.count():
                break
            with page.expect_navigation(timeout=30_000):
                button.click()
        expect(page.locator(".messagelist")).to_contain_text(summary("Deleted", BULK, BULK_DLQ))


def test_operator_finds_why_a_dlq_grows_and_retries_that_failure(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """The on-call story: the DLQ page → "Why did they fail?" → the most common error → the item
    browser filtered to it → "Retry all matching" moves exactly those entries."""
    key, source = "dlq:browser_why_queue", "browser_why_queue"
    # the fourth error starts like the others: "exactly those" must not mean "those containing it"
    errors = ["Detector unavailable: ConnectError"] * 3 + ["Detector unavailable: ConnectError (pool)"]
    raws = [
        encode_payload(
            {
                "original_job": {"camera_id": f"cam{n % 2}", "n": n},
                "error": f"{errors[n % 4]}\nTraceback (most recent call last): …",
                "error_type": "DetectorUnavailableError" if n % 4 < 3 else "ValueError",
            }
        )
        for n in range(400)
    ]
    live_redis.delete(key, source)
    live_redis.rpush(key, *raws)
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{key}/")
        login(page, base_url, "operator")
        page.get_by_test_id("breakdown-link").click()
        expect(page.get_by_test_id("breakdown-scope")).to_contain_text(f"All 400 entries of {key}")
        errors_table = page.get_by_test_id("facet-error")
        expect(errors_table.locator("tbody tr").first).to_contain_text(
            "Detector unavailable: ConnectError 300 75%"
        )
        errors_table.get_by_role("link", name="Detector unavailable: ConnectError", exact=True).click()

        expect(page.locator("[data-testid=scan-note]")).to_contain_text("50 match; showing the first 50")
        expect(page.get_by_test_id("exact-error")).to_have_value("Detector unavailable: ConnectError")
        assert "order=newest" in page.url
        for text in page.locator("[data-testid=entries] tbody tr").all_inner_texts():
            assert "Detector unavailable: ConnectError" in text
        page.get_by_role("link", name="Retry all matching…").click()
        expect(page.locator("[data-testid=confirm-what]")).to_contain_text("Retry all 300 entries of")
        page.get_by_role("button", name="Yes, retry 300 entries").click()
        expect(finished(page)).to_contain_text(
            f"Retried 300 of {key} to {source}; 100 did not match the filter (left in place).", timeout=60_000
        )
        assert [decode(raw).value["n"] for raw in live_redis.lrange(source, 0, -1)] == [
            n for n in range(400) if n % 4 < 3
        ]
        assert live_redis.lrange(key, 0, -1) == raws[3::4]
        assert not problems, problems


def test_operator_drills_down_from_one_camera_to_its_error_and_retries_only_those(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """A camera filter → "Why did they fail?" breaks down that camera only → its top error → the
    item browser filtered to both → "Retry all matching" moves exactly those."""
    key, source = "dlq:browser_drill_queue", "browser_drill_queue"

    def error(n: int) -> str:  # three in five entries: the detector
        return (
            "Invalid image: truncated JPEG" if n % 2 and n % 5 != 1 else "Detector unavailable: ConnectError"
        )

    raws = [
        encode_payload({"original_job": {"camera_id": f"cam{n % 3}", "n": n}, "error": error(n)})
        for n in range(300)
    ]
    live_redis.delete(key, source)
    live_redis.rpush(key, *raws)
    wanted = [n for n in range(300) if n % 3 == 1 and error(n) == error(0)]
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{key}/?camera=cam1")
        login(page, base_url, "operator")
        page.get_by_test_id("breakdown-link").click()
        expect(page.get_by_test_id("breakdown-scope")).to_contain_text(
            f"Of all 300 entries of {key}, 100 match camera “cam1”"
        )
        errors_table = page.get_by_test_id("facet-error")
        expect(errors_table.locator("tbody tr").first).to_contain_text(f"{error(0)} {len(wanted)}")
        errors_table.get_by_role("link", name=error(0)).click()
        expect(page.get_by_test_id("exact-error")).to_have_value(error(0))
        expect(page.locator("input[name=camera]")).to_have_value("cam1")
        page.get_by_role("link", name="Retry all matching…").click()
        page.get_by_role("button", name=f"Yes, retry {len(wanted)} entries").click()
        expect(finished(page)).to_contain_text(f"Retried {len(wanted)} of {key} to {source}", timeout=60_000)
        assert [decode(raw).value["n"] for raw in live_redis.lrange(source, 0, -1)] == wanted
        assert live_redis.llen(key) == 300 - len(wanted)

        # Back on the DLQ's own page (HSI has added 10 failures since), its headline counts them.
        live_redis.rpush(
            key, *[encode_payload({"original_job": {"n": n}, "error": error(0)}) for n in range(10)]
        )
        left = Counter([error(n) for n in range(300) if n not in wanted] + [error(0)] * 10)
        (top, count), total = left.most_common(1)[0], left.total()
        assert (total, count) == (250, 130)
        page.goto(f"{base_url}/queues/{key}/")
        expect(page.get_by_test_id("headline")).to_have_text(
            f"Of all 250 entries, 52% (130) failed with “{top}”, the most common of 2 different errors."
        )
        page.get_by_test_id("headline-top").click()
        expect(page.get_by_test_id("exact-error")).to_have_value(top)
        expect(page.locator("[data-testid=entries] tbody tr")).to_have_count(50)
        assert not problems, problems


def test_retry_all_waits_for_room_as_hsi_empties_a_full_queue(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_console: LiveConsole,
    live_redis: redis.Redis,
) -> None:
    """A retry of 300 entries into a queue with room for 100: with "wait for room" ticked the page
    goes on by itself while HSI's workers (a thread here) take entries; the queue never holds more
    than QUEUE_MAX_SIZE, and every job arrives exactly once."""
    key, source, limit = "dlq:browser_wait_queue", "browser_wait_queue", 10_000
    live_redis.delete(key, source)
    live_redis.rpush(source, *[b"filler"] * (limit - 100))
    live_redis.rpush(
        key,
        *[encode_payload({"original_job": {"camera_id": "yard", "n": n}, "error": "x"}) for n in range(300)],
    )
    taken: list[bytes] = []
    longest = [0]
    draining = threading.Event()
    worker_client = redis.Redis.from_url(live_console.env["REDIS_URL"])  # its own connection

    def hsi_worker() -> None:
        while not draining.wait(0.5):
            longest[0] = max(longest[0], worker_client.llen(source))
            popped: Any = worker_client.lpop(source, 50)
            taken.extend(popped or [])

    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{key}/matching/retry/")
        login(page, base_url, "operator")
        expect(page.get_by_test_id("confirm-room")).to_contain_text(
            "room for 100 more, so it stops after 100"
        )
        page.get_by_test_id("wait-for-room").locator("input").check()
        page.get_by_role("button", name="Yes, retry up to 100 of 300 entries").click()
        expect(page.locator("[data-bulk-wait]")).to_be_checked()
        expect(page.get_by_test_id("bulk-status")).to_contain_text("Waiting for room.")
        worker = threading.Thread(target=hsi_worker, daemon=True)
        worker.start()
        try:
            expect(page.get_by_test_id("bulk-status")).to_have_text(
                f"Retried 300 of {key} to {source}.", timeout=60_000
            )
        finally:
            draining.set()
            worker.join(5)
            worker_client.close()
        assert not problems, problems
    arrived = [
        decode(raw).value["n"] for raw in [*taken, *live_redis.lrange(source, 0, -1)] if raw != b"filler"
    ]
    assert arrived == list(range(300)), "every job once, in order"
    assert live_redis.llen(key) == 0 and longest[0] <= limit


def test_a_run_that_fills_its_target_pauses_and_continue_can_wait_for_room(
    browser: Browser,  # noqa: F811 - fixture
    base_url: str,  # noqa: F811 - fixture
    live_redis: redis.Redis,
) -> None:
    """Unticking "wait for room" while a run waits makes it pause at the next full step (Continue
    shown); ticking it again and pressing Continue waits again, and it finishes once there is room."""
    key, source, limit = "dlq:browser_pause_queue", "browser_pause_queue", 10_000
    live_redis.delete(key, source)
    live_redis.rpush(source, *[b"filler"] * (limit - 600))
    jobs = [
        encode_payload({"original_job": {"camera_id": "yard", "n": n}, "error": "x"}) for n in range(1_000)
    ]
    live_redis.rpush(key, *jobs)
    with new_page(browser, viewport=DESKTOP) as page:
        problems = with_csp(page)
        page.goto(f"{base_url}/queues/{key}/matching/retry/")
        login(page, base_url, "operator")
        page.get_by_test_id("wait-for-room").locator("input").check()
        page.get_by_role("button", name="Yes, retry up to 600 of 1,000 entries").click()
        page.locator("[data-bulk-wait]").uncheck()
        status = page.get_by_test_id("bulk-status")
        expect(status).to_contain_text(f"Paused. Retried 600 of {key} to {source}; stopped: {source} is full")
        expect(page.locator("[data-bulk-continue]")).to_be_visible()
        assert live_redis.llen(source) == limit and live_redis.llen(key) == 400

        page.locator("[data-bulk-wait]").check()
        page.locator("[data-bulk-continue]").click()
        expect(status).to_contain_text("Waiting for room.")
        live_redis.ltrim(source, limit, -1)  # HSI's workers took every filler and the 600 retried
        expect(status).to_have_text(f"Retried 1,000 of {key} to {source}.", timeout=60_000)
        assert [decode(raw).value["n"] for raw in live_redis.lrange(source, 0, -1)] == list(range(600, 1_000))
        assert live_redis.llen(key) == 0
        assert not problems, problems
