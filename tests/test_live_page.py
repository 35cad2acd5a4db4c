"""The live events page on the server: who may open it, its data- attributes, the relay card."""

from __future__ import annotations

import re

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client
from redis.typing import EncodableT, FieldT

from realtime.events import LEADER_KEY, STATUS_KEY
from realtime.history import previous_id, replay_from, text
from realtime.views import HISTORY, MAX_ROWS, SOCKET_PATH
from tests.conftest import logged_in
from tests.redis_server import free_port

pytestmark = pytest.mark.django_db

LIVE = "/live/"
STREAM = "console:events"


def attribute(html: str, name: str) -> str:
    match = re.search(rf'\s{name}="([^"]*)"', html)
    assert match, f"{name} missing"
    return match.group(1)


@pytest.mark.parametrize("role", ["viewer", "operator", "admin_user"])
def test_every_role_sees_the_page_and_the_nav_link(
    role: str, request: pytest.FixtureRequest, redis_client: redis.Redis
) -> None:
    response = logged_in(request.getfixturevalue(role)).get(LIVE)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<a href="/live/" aria-current="page">Live</a>' in html
    assert attribute(html, "data-socket-path") == SOCKET_PATH
    assert attribute(html, "data-max-rows") == str(MAX_ROWS)
    assert attribute(html, "data-queue-url") == "/queues/__key__/"
    assert 'role="status" aria-live="polite"' in html


def test_anonymous_goes_to_login(client: Client, redis_client: redis.Redis) -> None:
    response = client.get(LIVE)
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/live/"


def test_roleless_staff_gets_403(roleless: User, redis_client: redis.Redis) -> None:
    response = logged_in(roleless).get(LIVE)
    assert response.status_code == 403
    assert "You are not allowed to do this" in response.content.decode()


def test_console_role_without_live_permission_gets_403(viewer: User, redis_client: redis.Redis) -> None:
    group = viewer.groups.get()
    group.permissions.remove(group.permissions.get(codename="view_live_events"))
    client = logged_in(User.objects.get(pk=viewer.pk))
    assert client.get(LIVE).status_code == 403
    assert 'href="/live/"' not in client.get("/").content.decode()


def test_only_the_audit_readers_get_audit_links(
    viewer: User, operator: User, redis_client: redis.Redis
) -> None:
    assert attribute(logged_in(viewer).get(LIVE).content.decode(), "data-audit-url") == ""
    audit = attribute(logged_in(operator).get(LIVE).content.decode(), "data-audit-url")
    assert audit == "/console/auditentry/__key__/change/"


def test_script_is_an_external_module_and_no_script_is_inline(
    viewer_client: Client, redis_client: redis.Redis
) -> None:
    html = viewer_client.get(LIVE).content.decode()
    assert re.search(r'<script type="module" src="/static/realtime/js/live\.js">', html)
    inline = [tag for tag in re.findall(r"<script\b[^>]*>", html) if "src=" not in tag]
    assert inline == [], "inline scripts break script-src 'self'"
    assert re.search(r"\son\w+=", html) is None, "inline event handlers break the CSP too"


def test_since_is_empty_without_stored_events(viewer_client: Client, redis_client: redis.Redis) -> None:
    assert attribute(viewer_client.get(LIVE).content.decode(), "data-since") == ""


def add(client: redis.Redis, entry_id: str = "*") -> str:
    return text(client.xadd(STREAM, {"type": "event"}, id=entry_id))


def after(client: redis.Redis, since: str | None) -> list[str]:
    """The ids a socket opened with ``?since=`` replays."""
    return [text(entry_id) for entry_id, _ in client.xrange(STREAM, f"({since}", "+") or []]


def test_since_replays_the_newest_events(viewer_client: Client, redis_client: redis.Redis) -> None:
    ids = [add(redis_client) for _ in range(HISTORY + 20)]
    since = attribute(viewer_client.get(LIVE).content.decode(), "data-since")
    assert since == ids[19]
    assert after(redis_client, since) == ids[20:]


def test_since_starts_before_a_short_stream(redis_client: redis.Redis) -> None:
    ids = [add(redis_client, "1700000000000-1"), add(redis_client, "1700000000000-2")]
    since = replay_from(redis_client, HISTORY)
    assert since == "1700000000000-0"
    assert after(redis_client, since) == ids


@pytest.mark.parametrize(
    ("stream_id", "before"),
    [("5-3", "5-2"), ("5-0", "4-18446744073709551615"), ("0-1", "0-0"), ("0-0", "0-0")],
)
def test_previous_id(stream_id: str, before: str) -> None:
    assert previous_id(stream_id) == before


def test_page_survives_redis_down(viewer_client: Client, point_at, redis_client: redis.Redis) -> None:
    point_at(url=f"redis://127.0.0.1:{free_port()}/0")
    response = viewer_client.get(LIVE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="redis-banner"' in html
    assert "Relay status unavailable: Connection refused" in html
    assert attribute(html, "data-since") == ""


def relay_card(html: str) -> str:
    start = html.index('data-testid="relay-card"')
    return html[start : html.index("</section>", start)]


def test_relay_card_shows_the_status_hash_escaped(viewer_client: Client, redis_client: redis.Redis) -> None:
    seconds, _ = redis_client.time()
    redis_client.set(LEADER_KEY, "relay-host-1:4242")
    fields: dict[FieldT, EncodableT] = {
        "heartbeat": seconds - 2,
        "state": "forwarding",
        "forwarded": 12345,
        "malformed": 3,
        "malformed:not_json": 2,
        "malformed:too_large": 1,
        "last_malformed": "<script>alert(1)</script>",
    }
    redis_client.hset(STATUS_KEY, mapping=fields)
    html = viewer_client.get(LIVE).content.decode()
    card = relay_card(html)
    assert '<span class="console-ok">forwarding</span>' in card
    assert "relay-host-1:4242" in card
    assert re.search(r"Heartbeat</dt><dd>[23]\.\d s ago", card)
    assert ">12,345<" in card
    assert "<code>not_json</code>: 2" in card and "<code>too_large</code>: 1" in card
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    assert "<script>alert" not in html
    assert "Last error" not in card


def test_relay_card_says_when_no_relay_runs(viewer_client: Client, redis_client: redis.Redis) -> None:
    card = relay_card(viewer_client.get(LIVE).content.decode())
    assert "not running: no relay is forwarding events" in card
    assert "never" in card
