"""The console shell: roles on every URL, dashboard facts, degraded banner, no secrets rendered."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from console.roles import ROLES
from tests.conftest import PASSWORD, logged_in

pytestmark = pytest.mark.django_db

CONSOLE_URLS = ["/", "/connection/", "/console/auditentry/", "/auth/user/", "/auth/group/"]
ADMIN_ONLY_URLS = ["/auth/user/", "/auth/group/"]


def test_roles_exist_with_their_permissions() -> None:
    for name, expected in ROLES.items():
        group = Group.objects.get(name=name)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert granted == set(expected), name
    assert "console.retry_items" not in ROLES["Viewer"]
    assert "auth.change_user" in ROLES["Admin"] and "auth.change_user" not in ROLES["Operator"]


def granted(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


# serialized_rollback: the flush after the test must not run post_migrate (the next serialized
# test reloads the database as it was, ids included, which rows post_migrate recreates would block).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_flushed_database_gets_its_roles_back_and_a_changed_role_is_kept() -> None:
    call_command("flush", interactive=False, verbosity=0)
    assert {name: granted(name) for name in ROLES} == {name: set(perms) for name, perms in ROLES.items()}

    Group.objects.get(name="Operator").permissions.remove(Permission.objects.get(codename="delete_items"))
    Group.objects.get(name="Viewer").delete()
    call_command("migrate", verbosity=0)  # nothing to migrate; post_migrate runs all the same
    assert granted("Viewer") == set(ROLES["Viewer"])
    assert granted("Operator") == set(ROLES["Operator"]) - {"console.delete_items"}


@pytest.mark.parametrize("url", CONSOLE_URLS)
def test_anonymous_is_sent_to_login(client: Client, url: str, redis_client) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", CONSOLE_URLS)
def test_roleless_staff_sees_only_login(roleless: User, url: str, redis_client) -> None:
    response = logged_in(roleless).get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_non_staff_with_role_is_refused(redis_client) -> None:
    user = User.objects.create_user("nina", password="x" * 12, is_staff=False)
    user.groups.add(Group.objects.get(name="Viewer"))
    assert logged_in(user).get("/").status_code == 302


@pytest.mark.parametrize("url", CONSOLE_URLS)
def test_viewer_sees_console_pages_but_not_user_admin(viewer: User, url: str, redis_client) -> None:
    expected = 403 if url in ADMIN_ONLY_URLS or url == "/console/auditentry/" else 200
    assert logged_in(viewer).get(url).status_code == expected


@pytest.mark.parametrize("url", CONSOLE_URLS)
def test_admin_role_sees_everything(admin_user: User, url: str, redis_client) -> None:
    assert logged_in(admin_user).get(url).status_code == 200


def test_login_page_is_at_login(client: Client) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"HSI Console" in response.content


def test_dashboard_shows_server_facts_and_families(viewer_client: Client, redis_client) -> None:
    redis_client.rpush("detection_queue", b'{"camera_id":"porch"}')
    redis_client.rpush("dlq:detection_queue", b"x", b"y")
    redis_client.rpush("hsi:queue:dlq:analysis_queue", b"z")
    redis_client.set("orchestrator:service:redis:state", b"{}")
    redis_client.set("job:abc", b"{}")
    redis_client.set("job:abc:status", b"{}")
    response = viewer_client.get("/")
    assert response.status_code == 200
    census = {f.name: f.count for f in response.context["overview"].census.families}
    assert (
        census["queues"] == 1 and census["dlq"] == 2 and census["orchestrator"] == 1 and census["jobs"] == 2
    )
    html = response.content.decode()
    assert redis_client.info("server")["redis_version"] in html
    assert 'data-family="dlq"' in html and "dlq:detection_queue" in html
    assert "Full SCAN of 6 keys" in html


def test_dashboard_leads_with_queues_hsi_stops_writing(viewer_client: Client, redis_client, settings) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "QUEUE_MAX_SIZE": 4, "OVERVIEW_CACHE_SECONDS": 0}
    redis_client.rpush("hsi:queue:dlq:analysis_queue", *[b"{}"] * 4)  # found by the census' SCAN
    redis_client.rpush("detection_queue", *[b"{}"] * 3)  # 75%: not flagged yet
    redis_client.rpush("dlq:overflow:detection_queue", *[b"{}"] * 9)  # no limit
    html = viewer_client.get("/").content.decode()
    flagged = re.findall(r'<li class="(\w+)" data-key="([^"]+)"><a href="([^"]+)">', html)
    assert flagged == [("error", "hsi:queue:dlq:analysis_queue", "/queues/hsi:queue:dlq:analysis_queue/")]
    assert "Full (4 of 4): HSI rejects every new failure" in html
    why = re.findall(r'<a href="([^"]+)" data-testid="alert-why">Why did they fail\?</a>', html)
    assert why == ["/queues/hsi:queue:dlq:analysis_queue/breakdown/"], "a full DLQ's alert asks why"
    redis_client.rpush("detection_queue", b"{}")
    alerts = viewer_client.get("/").context["overview"].queue_alerts
    assert [(a["key"], a["level"]) for a in alerts] == [
        ("detection_queue", "full"),
        ("hsi:queue:dlq:analysis_queue", "full"),
    ], "in the queue list's order"
    assert "dlq:overflow:detection_queue" in alerts[0]["alert"], "where HSI's producers evict to"
    assert viewer_client.get("/").content.decode().count('data-testid="alert-why"') == 1, "not a work queue's"
    redis_client.delete("hsi:queue:dlq:analysis_queue", "detection_queue")
    assert 'data-testid="queue-alerts"' not in viewer_client.get("/").content.decode()


def test_dashboard_scan_is_bounded_and_a_large_keyspace_is_counted_over_several_loads(
    viewer_client: Client, redis_client, settings
) -> None:
    redis_client.mset({f"dedupe:{i:04d}": b"1" for i in range(3000)})
    redis_client.rpush("dlq:detection_queue", b"{}")
    settings.HSI_CONSOLE = {
        **settings.HSI_CONSOLE,
        "SCAN_LIMIT": 500,
        "SCAN_COUNT": 100,
        "OVERVIEW_CACHE_SECONDS": 0,
    }
    census = viewer_client.get("/").context["overview"].census
    assert not census.complete and census.steps == 1
    assert 500 <= census.examined < 3000
    partial = re.search(r'data-testid="census-summary">([^<]+)<', viewer_client.get("/").content.decode())
    assert partial and re.match(r"Counting: [\d,]+ of 3,00[12] keys examined over 2 loads so far", partial[1])
    assert partial[1].endswith("counts are partial")
    loads = 2
    while not census.complete:  # each load goes on where the last stopped
        census = viewer_client.get("/").context["overview"].census
        loads += 1
        assert loads < 20
    counts = {f.name: f.count for f in census.families}
    assert counts["dedupe"] == 3000 and counts["dlq"] == 1, "every key counted once"
    assert census.steps == loads and census.examined >= 3001
    page = viewer_client.get("/")
    shown = page.context["overview"].census
    assert shown.finished_at == census.finished_at and 0 < shown.counting <= 1000, "the next count goes on"
    summary = re.search(r'data-testid="census-summary">([^<]+)<', page.content.decode())
    assert summary and summary[1].startswith(
        f"Counted all {census.examined:,} keys over {census.steps} loads"
    )
    assert "the next count has examined" in summary[1]
    keys_page = viewer_client.get("/keys/").content.decode()
    assert f"Counted all {census.examined:,} keys" in keys_page


def test_degraded_banner_instead_of_stack_trace_then_recovery(
    viewer: User, start_server, point_at, redis_client, settings
) -> None:
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "OVERVIEW_CACHE_SECONDS": 0}
    server = start_server()
    point_at(server)
    client = logged_in(viewer)
    assert client.get("/").status_code == 200
    server.kill()
    response = client.get("/")
    assert response.status_code == 503
    html = response.content.decode()
    assert 'data-testid="redis-banner"' in html and "Connection refused" in html
    assert "Traceback" not in html
    server.start()
    assert client.get("/").status_code == 200


def test_connection_page_masks_password(viewer: User, start_server, point_at, redis_client) -> None:
    server = start_server(password=PASSWORD)
    point_at(url=f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")
    response = logged_in(viewer).get("/connection/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Successfully connected to Redis with authentication" in html
    assert f"redis://:***@127.0.0.1:{server.port}/0" in html
    assert PASSWORD not in html


def test_api_overview_with_token(viewer: User, redis_client) -> None:
    redis_client.rpush("dlq:overflow:analysis_queue", b"{}")
    token = Token.objects.create(user=viewer)
    response = Client().get("/api/redis/overview", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    families = {f["name"]: f["count"] for f in response.json()["census"]["families"]}
    assert families["overflow_dlq"] == 1
    assert response.json()["server"]["version"] == redis_client.info("server")["redis_version"]


def test_api_refuses_roleless_token_and_anonymous(roleless: User, redis_client) -> None:
    token = Token.objects.create(user=roleless)
    assert Client().get("/api/redis/overview", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 403
    assert Client().get("/api/redis/overview").status_code in (401, 403)


def test_api_redis_down_is_503_sentence(viewer: User, start_server, point_at, redis_client) -> None:
    server = start_server()
    point_at(server)
    server.kill()
    response = logged_in(viewer).get("/api/redis/overview")
    assert response.status_code == 503
    assert "Connection refused" in response.json()["detail"]


def test_forbidden_and_missing_pages_explain_themselves(viewer_client: Client, redis_client) -> None:
    forbidden = viewer_client.get("/auth/user/")
    assert forbidden.status_code == 403
    assert (
        b"You are not allowed to do this" in forbidden.content
        and b"Back to the dashboard" in forbidden.content
    )
    missing = viewer_client.get("/no/such/page/")
    assert missing.status_code == 404
    assert b"There is nothing at this address" in missing.content
