"""The console as a least-privilege Redis ACL user (console/redis_acl.py, docs/redis-acl.md).

Each test starts a private redis-server whose ``default`` user has an admin password used only for
seeding and for reading ``ACL LOG``; the console talks to it as the user ``manage.py redis_acl``
describes, with the user in REDIS_URL and the password (special characters included) apart. The
main flows must leave ``ACL LOG`` empty: any NOPERM there is a bug in the code or in the rules.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from redis.backoff import NoBackoff
from redis.retry import Retry

from console import redis_acl
from console.models import ArchivedItem
from console.redis import RedisConfig, close_clients, explain, get_redis
from tests.conftest import logged_in
from tests.redis_server import REDIS_SERVER, RedisServer
from tests.relay_helpers import RelayProcess, publish_seq, relay_env, stream_seqs, wait_until
from tests.test_live_socket import (
    communicator,
    connect,
    frames_until,
    is_caught_up,
    send_event,
    session_cookie,
)

ADMIN_PASSWORD = "admin-" + secrets.token_hex(8)
CONSOLE_PASSWORD = "p@ss:w/rd?#%" + secrets.token_hex(6)  # sent apart from the URL, never escaped
USERNAME = "hsi@console.1"  # URL-escaped in REDIS_URL: every client must unquote it
PATTERN = "events:shard:*"  # HSI_EVENT_PATTERNS: the generated user may PSUBSCRIBE to it


@dataclass
class AclRedis:
    """A private server, its admin connection, and the console's config as the ACL user."""

    server: RedisServer
    admin: redis.Redis
    config: RedisConfig

    def acl_log(self) -> list[dict[str, Any]]:
        return list(self.admin.acl_log())

    def denials(self) -> list[str]:
        return [f"{e['reason']}:{e['object']} ({e['client-info'].get('cmd')})" for e in self.acl_log()]


def create_user(admin: redis.Redis, *, read_only: bool) -> None:
    """Apply the generated rules, for the server's version, with the admin connection."""
    version = redis_acl.parse_version(str(admin.info("server")["redis_version"]))
    grants = redis_acl.console_rules(read_only=read_only, version=version)
    admin.execute_command(*redis_acl.setuser_args(USERNAME, grants, CONSOLE_PASSWORD))


def point_console(settings: Any, config: RedisConfig) -> None:
    """Every Redis user of the console (client, cache, Channels layer) as ``config``."""
    settings.HSI_REDIS = config
    settings.CONSOLE_REDIS = config
    settings.CACHES = {
        alias: config.cache_settings(key_prefix=entry["KEY_PREFIX"], ignore_exceptions=False)
        for alias, entry in settings.CACHES.items()
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [config.channel_layer_host()], "prefix": "console:layer:"},
        }
    }


def acl_redis(start_server: Callable[..., RedisServer], settings: Any, *, read_only: bool) -> AclRedis:
    server = start_server(password=ADMIN_PASSWORD)
    admin = server.client()
    settings.HSI_REDIS = RedisConfig(url=server.url, password=ADMIN_PASSWORD)
    call_command("load_demo_world", "--force", stdout=io.StringIO())
    close_clients()
    settings.HSI_CONSOLE = {**settings.HSI_CONSOLE, "EVENT_PATTERNS": [PATTERN]}
    create_user(admin, read_only=read_only)
    admin.acl_log_reset()
    url = f"redis://{quote(USERNAME, safe='')}@127.0.0.1:{server.port}/0"
    config = RedisConfig(url=url, password=CONSOLE_PASSWORD, socket_timeout=5, socket_connect_timeout=3)
    point_console(settings, config)
    return AclRedis(server, admin, config)


@pytest.fixture
def full_user(start_server: Callable[..., RedisServer], settings: Any, db: None) -> Iterator[AclRedis]:
    world = acl_redis(start_server, settings, read_only=False)
    yield world
    close_clients()


@pytest.fixture
def read_only_user(start_server: Callable[..., RedisServer], settings: Any, db: None) -> Iterator[AclRedis]:
    world = acl_redis(start_server, settings, read_only=True)
    yield world
    close_clients()


def ok(client: Client, path: str) -> str:
    response = client.get(path)
    body = response.content.decode()
    assert response.status_code == 200, f"GET {path}: {response.status_code} {body[:400]}"
    assert "NOPERM" not in body, path
    return body


def api(client: Client, path: str, body: dict[str, Any] | None = None) -> Any:
    response = (
        client.post(path, json.dumps(body), content_type="application/json")
        if body is not None
        else client.get(path)
    )
    assert response.status_code == 200, f"{path}: {response.status_code} {response.content[:400]!r}"
    return response.json()


def items(client: Client, key: str) -> list[dict[str, Any]]:
    return list(api(client, f"/api/queues/{quote(key, safe='')}/items/?limit=5")["items"])


def browse_everything(client: Client, world: AclRedis) -> None:
    """Every page a Viewer opens, as the ACL user."""
    for path in (
        "/",
        "/overview/",
        "/queues/",
        "/jobs/",
        "/orchestrator/",
        "/live/",
        "/archive/",
        "/jobs/archive/",
    ):
        ok(client, path)
    for path in (
        "batches",
        "dedupe",
        "cache",
        "embeddings",
        "rate-limits",
        "idempotency",
        "telemetry",
        "hll",
    ):
        ok(client, f"/keys/{path}/")
    ok(client, "/keys/")
    connection = ok(client, "/connection/")
    assert quote(USERNAME, safe="") in connection and CONSOLE_PASSWORD not in connection
    for path in ("/api/overview/", "/api/redis/overview", "/api/queues/", "/api/orchestrator/", "/api/jobs/"):
        api(client, path)
    for key in ("dlq:detection_queue", "detections:stream:dlq", "detection_queue"):
        ok(client, f"/queues/{quote(key, safe='')}/")
    entry = items(client, "dlq:detection_queue")[0]
    ok(client, f"/queues/dlq%3Adetection_queue/entry/{entry['index']}/{entry['id']}/")
    stream_entry = items(client, "detections:stream:dlq")[0]
    ok(client, f"/queues/detections%3Astream%3Adlq/stream-entry/{stream_entry['id']}/")
    ok(client, "/queues/detections%3Astream%3Adlq/?camera=porch&q=delivery&order=newest")
    job = api(client, "/api/jobs/")["jobs"][0]
    ok(client, f"/jobs/{quote(job['id'], safe='')}/")
    api(client, f"/api/jobs/{quote(job['id'], safe='')}/")
    day = next(k.decode().split(":", 1)[1] for k in world.admin.scan_iter("entity_embeddings:*"))
    ok(client, f"/keys/embeddings/{day}/")
    health = Client().get("/api/system/health/ready")
    assert health.status_code == 200, health.content
    assert health.json()["dependencies"]["redis"]["connected"] is True


def first_key(admin: redis.Redis, pattern: str, kind: str) -> str:
    found: bytes = next(k for k in admin.scan_iter(pattern, count=1000) if admin.type(k) == kind.encode())
    return found.decode()


def jobs_with(client: Client, status: str) -> list[dict[str, Any]]:
    return [j for j in api(client, f"/api/jobs/?status={status}&limit=100")["jobs"] if not j.get("problem")]


def ref_of(entry: dict[str, Any]) -> str:
    return f"{entry['index']}:{entry['id']}" if "index" in entry else str(entry["id"])


def dlq_flows(client: Client) -> None:
    """Retry one, delete one, restore from the archive, retry all: a list DLQ and a stream DLQ."""
    for key in ("dlq:detection_queue", "detections:stream:dlq"):
        path = quote(key, safe="")
        retried = api(client, f"/api/dlq/{path}/retry/", {"ids": [ref_of(items(client, key)[0])]})
        assert retried["retried"] == 1, retried
        middle = items(client, key)[2]  # not at either end: the tombstone path of move.lua
        deleted = api(client, f"/api/dlq/{path}/delete/", {"ids": [ref_of(middle)]})
        assert deleted["deleted"] == 1, deleted
    archived = api(client, "/api/archive/")["items"]
    assert {row["key"] for row in archived} == {"dlq:detection_queue", "detections:stream:dlq"}
    for row in archived:  # the list entry back to its DLQ, the stream entry to its source stream
        body = {"ids": [row["id"]], "to_source": row["key"].endswith(":stream:dlq")}
        restored = api(client, "/api/archive/restore/", body)
        assert restored["restored"] == 1, restored
    everything = api(client, "/api/dlq/dlq%3Aanalysis_queue/retry/", {"all": True})
    assert everything["retried"] >= 1, everything
    for verb, done in (("retry", "retried"), ("delete", "deleted")):  # filtered: rotate.lua
        body = {"all": True, "filter": {"q": "e"}}
        matching = api(client, f"/api/dlq/dlq%3Adetection_queue/{verb}/", body)
        assert matching[done] + matching["position"] >= 1, matching
    stream = api(
        client, "/api/dlq/detections%3Astream%3Adlq/retry/", {"all": True, "filter": {"q": "delivery"}}
    )
    assert stream["retried"] >= 1 and stream["remaining"] == 0, stream


def job_flows(client: Client) -> None:
    """Abort a running job, cancel a pending one in each keyspace (JobTracker and JobStatusService)."""
    running = jobs_with(client, "running")[0]
    abort = api(client, f"/api/jobs/{quote(running['id'], safe='')}/abort/", {"source": running["source"]})
    assert abort["receivers"] == 0, abort
    waiting = {job["source"]: job for job in jobs_with(client, "pending") + jobs_with(client, "queued")}
    assert len(waiting) == 2, waiting.keys()
    for job in waiting.values():
        path = f"/api/jobs/{quote(job['id'], safe='')}/cancel/"
        cancelled = api(client, path, {"source": job["source"], "expected_status": job["status"]})
        assert cancelled["job"]["status"] in ("cancelled", "failed"), cancelled


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


def job_archive_flows(client: Client) -> None:
    """Delete a stale job key (archived first), then restore it: job_delete.lua and job_restore.lua."""
    stale = next(j for j in api(client, "/api/jobs/?stale=true&limit=100")["jobs"] if j.get("exists", True))
    path = f"/jobs/{quote(stale['id'], safe='')}/delete/"
    response = client.post(path, hidden_fields(ok(client, f"{path}?source={stale['source']}")))
    assert response.status_code == 302, response.content[:400]
    row = ArchivedItem.objects.get(kind="job", state="archived")
    restore = f"/jobs/archive/{row.pk}/restore/"
    response = client.post(restore, hidden_fields(ok(client, restore)))
    assert response.status_code == 302, response.content[:400]
    row.refresh_from_db()
    assert row.state == "restored"


def keyspace_flows(client: Client, admin: redis.Redis) -> None:
    dedupe = first_key(admin, "dedupe:*", "string")
    response = client.post("/keys/dedupe/clear/", {"sha256": dedupe.split(":", 1)[1], "nonce": "acl-d"})
    assert response.status_code == 302, response.content[:400]
    assert not admin.exists(dedupe)
    cached = first_key(admin, "hsi:cache:*", "string")
    response = client.post("/keys/cache/invalidate/", {"key": cached, "nonce": "acl-c"})
    assert response.status_code == 302, response.content[:400]
    assert not admin.exists(cached)
    window = first_key(admin, "rate_limit:*", "zset")
    response = client.post("/keys/rate-limits/reset/", {"key": window, "nonce": "acl-r"})
    assert response.status_code == 302, response.content[:400]
    assert not admin.exists(window)


def cache_and_layer() -> None:
    cache.set("acl-probe", {"ok": 1}, 30)
    assert cache.get("acl-probe") == {"ok": 1}

    async def round_trip() -> dict[str, Any]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add("acl", channel)
        await layer.group_send("acl", {"type": "probe", "n": 1})
        message = await asyncio.wait_for(layer.receive(channel), 10)
        await layer.group_discard("acl", channel)
        await layer.flush()
        return dict(message)

    assert asyncio.run(round_trip()) == {"type": "probe", "n": 1}


def relay_forwards(world: AclRedis, folder: Path) -> None:
    """``manage.py relay_events`` as the ACL user: one published event lands in console:events."""
    env = relay_env(world.config.url, REDIS_PASSWORD=CONSOLE_PASSWORD, HSI_EVENT_PATTERNS=PATTERN)
    relay = RelayProcess("relay-acl", env, folder / "relay.log").start()
    try:
        relay.wait_leading(world.admin)
        publish_seq(world.admin, 4242)
        publish_seq(world.admin, 4243, channel="events:shard:7")
        wait_until(lambda: {4242, 4243} <= set(stream_seqs(world.admin)), 15, "both events in console:events")
    finally:
        assert relay.stop() == 0, relay.output()
    assert CONSOLE_PASSWORD not in relay.output()


def test_main_flows_as_the_acl_user_leave_acl_log_empty(
    full_user: AclRedis, admin_user: User, tmp_path: Path
) -> None:
    client = logged_in(admin_user)
    browse_everything(client, full_user)
    dlq_flows(client)
    job_flows(client)
    job_archive_flows(client)
    keyspace_flows(client, full_user.admin)
    cache_and_layer()
    call_command("check_redis", stdout=io.StringIO())
    relay_forwards(full_user, tmp_path)
    assert full_user.denials() == []
    # The rules are tight: the user cannot do what no flow needs.
    console = redis.Redis.from_url(full_user.config.url, password=CONSOLE_PASSWORD)
    for command in (("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "maxmemory"), ("SET", "other:key", "1")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            console.execute_command(*command)
    console.close()


def hsi_snapshot(admin: redis.Redis) -> dict[bytes, bytes | None]:
    """Every HSI key's serialized value (the console's own ``console:*`` keys left out)."""
    return {key: admin.dump(key) for key in admin.scan_iter(count=1000) if not key.startswith(b"console:")}


def refused(response: Any) -> str:
    """A mutation the read-only user cannot make: a 503 with the NOPERM sentence, never a 500."""
    body: str = response.content.decode()
    assert response.status_code == 503, f"{response.status_code}: {body[:400]}"
    assert "Redis refused the command" in body and "NOPERM" in body and "read-only" in body, body[:400]
    assert CONSOLE_PASSWORD not in body
    return body


def test_read_only_user_browses_everything_and_refuses_every_action(
    read_only_user: AclRedis, viewer: User, operator: User, tmp_path: Path
) -> None:
    browse_everything(logged_in(viewer), read_only_user)
    cache_and_layer()
    relay_forwards(read_only_user, tmp_path)  # the relay writes only console:* keys
    assert read_only_user.denials() == []

    before = hsi_snapshot(read_only_user.admin)
    client = logged_in(operator)
    entry = items(client, "dlq:detection_queue")[0]
    stream_entry = items(client, "detections:stream:dlq")[0]
    running = jobs_with(client, "running")[0]
    pending = jobs_with(client, "pending")[0]
    dedupe = first_key(read_only_user.admin, "dedupe:*", "string")
    raw = read_only_user.admin.lindex("dlq:detection_queue", 0) or b""
    archived = ArchivedItem.objects.create(  # as deleted earlier by a full user
        key="dlq:detection_queue",
        raw=raw,
        fingerprint="f" * 20,
        size=len(raw),
        deleted_by="ada",
        state="archived",
    )
    job_row = ArchivedItem.objects.create(  # a stale job key deleted earlier by a full user
        key="job:ro-restore",
        kind="job",
        raw=b'{"status": "completed"}',
        fingerprint="j" * 20,
        size=23,
        deleted_by="ada",
        state="archived",
    )
    stale = next(j for j in api(client, "/api/jobs/?stale=true&limit=100")["jobs"] if j.get("exists", True))
    delete_job = f"/jobs/{quote(stale['id'], safe='')}/delete/"
    delete_form = hidden_fields(ok(client, f"{delete_job}?source={stale['source']}"))
    restore_job = f"/jobs/archive/{job_row.pk}/restore/"
    attempts = [
        client.post(delete_job, delete_form),
        client.post(restore_job, hidden_fields(ok(client, restore_job))),
        client.post(
            "/keys/cache/invalidate/",
            {"key": first_key(read_only_user.admin, "hsi:cache:*", "string"), "nonce": "ro-c"},
        ),
        client.post(
            "/keys/rate-limits/reset/",
            {"key": first_key(read_only_user.admin, "rate_limit:*", "zset"), "nonce": "ro-r"},
        ),
        client.post("/api/dlq/dlq%3Adetection_queue/retry/", {"ids": [ref_of(entry)]}, "application/json"),
        client.post("/api/dlq/dlq%3Adetection_queue/delete/", {"ids": [ref_of(entry)]}, "application/json"),
        client.post("/api/dlq/dlq%3Aanalysis_queue/retry/", {"all": True}, "application/json"),
        client.post(
            "/api/dlq/detections%3Astream%3Adlq/retry/", {"ids": [stream_entry["id"]]}, "application/json"
        ),
        client.post(f"/api/jobs/{running['id']}/abort/", {"source": running["source"]}, "application/json"),
        client.post(f"/api/jobs/{pending['id']}/cancel/", {"source": pending["source"]}, "application/json"),
        client.post("/keys/dedupe/clear/", {"sha256": dedupe.split(":", 1)[1], "nonce": "ro-d"}),
        client.post("/api/archive/restore/", {"ids": [archived.pk]}, "application/json"),
    ]
    for response in attempts:
        refused(response)
    assert hsi_snapshot(read_only_user.admin) == before
    assert read_only_user.denials(), "the refusals should be in ACL LOG"
    # A refused delete leaves no archived row; a refused restore leaves the row archived.
    rows = ArchivedItem.objects.values_list("pk", "state")
    assert sorted(rows) == sorted([(archived.pk, "archived"), (job_row.pk, "archived")])


def test_explain_turns_noperm_into_a_sentence() -> None:
    config = RedisConfig(url="redis://hsi_console@redis:6379/0", password="hunter2")
    sentence = explain(
        redis.exceptions.NoPermissionError("this user has no permissions to run the 'lpush' command"), config
    )
    assert sentence.startswith("Redis refused the command: the console's Redis user has no permission")
    assert "'lpush'" in sentence and "read-only" in sentence and "hunter2" not in sentence
    wrong = explain(redis.AuthenticationError("WRONGPASS invalid username-password pair"), config)
    assert "'hsi_console'" in wrong and "does not match that ACL user's password" in wrong
    inside = redis.ResponseError("The user executing the script can't run this command or subcommand")
    assert explain(inside, config).startswith("Redis refused the command: the console's Redis user has no")


def test_username_in_the_url_with_a_separate_password_reaches_every_client() -> None:
    config = RedisConfig(url="redis://hsi%40console@[::1]:6380/2", password="p@ss:w/rd")
    assert config.masked_url == "redis://hsi%40console@[::1]:6380/2"
    inline = RedisConfig(url="redis://hsi%40console:p%40ss@[::1]:6380/2")
    assert inline.masked_url == "redis://hsi%40console:***@[::1]:6380/2"
    assert config.pool_kwargs()["password"] == "p@ss:w/rd"
    assert (
        config.cache_settings(key_prefix="x", ignore_exceptions=True)["OPTIONS"]["CONNECTION_POOL_KWARGS"][
            "password"
        ]
        == "p@ss:w/rd"
    )
    host = config.channel_layer_host()
    assert host["address"] == config.url and host["password"] == "p@ss:w/rd"
    pool = redis.ConnectionPool.from_url(config.effective_url, **config.pool_kwargs())
    assert pool.connection_kwargs["username"] == "hsi@console"
    assert pool.connection_kwargs["password"] == "p@ss:w/rd"


def generate(*args: str) -> str:
    out = io.StringIO()
    call_command("redis_acl", *args, stdout=out)
    return out.getvalue().strip()


def test_redis_acl_prints_the_configured_user_without_the_password(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.HSI_CONSOLE = {
        **settings.HSI_CONSOLE,
        "EVENT_CHANNELS": ["alerts"],
        "EVENT_PATTERNS": ["cams:*"],
    }
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "x", "CONFIG": {"prefix": "hsi-layer:"}}}
    line = generate()
    words = line.split()
    assert words[:6] == ["ACL", "SETUSER", "hsi_console", "reset", "on", ">PASSWORD"]
    assert {"&alerts", "&cams:*", "&hsi-layer:*", "&job:*:control", "%RW~dlq:*", "~console:*"} <= set(words)
    assert "&security_events" not in words
    assert not {
        "+keys",
        "+flushall",
        "+flushdb",
        "+config",
        "+debug",
        "+shutdown",
        "+monitor",
        "+@all",
    } & set(words)
    assert not any(w.startswith(("+client|kill", "+config|")) for w in words)

    read_only = generate("--read-only", "--aclfile", "--username", "viewer_ro").split()
    assert read_only[:3] == ["user", "viewer_ro", "on"] and "reset" not in read_only
    assert "~console:*" in read_only and "%R~*" in read_only
    assert not [
        w for w in read_only if w.startswith("%RW~") or w in ("&job:*:control", "+ltrim", "+zrem", "+xdel")
    ]

    monkeypatch.setenv("ACL_TEST_PASSWORD", "s3cret pass")
    with pytest.raises(CommandError, match="white space"):
        generate("--password-env", "ACL_TEST_PASSWORD")
    monkeypatch.setenv("ACL_TEST_PASSWORD", "s3cret-pass")
    hashed = generate("--password-env", "ACL_TEST_PASSWORD")
    assert "s3cret-pass" not in hashed
    assert "#" + hashlib.sha256(b"s3cret-pass").hexdigest() in hashed.split()
    assert "client|setinfo" in hashed and "client|setinfo" not in generate("--redis-version", "7.0.15")
    with pytest.raises(CommandError, match="not a usable ACL user name"):
        generate("--username", "bad name")
    with pytest.raises(CommandError, match="--redis-version takes"):
        generate("--redis-version", "seven")
    with pytest.raises(CommandError, match="MISSING_VAR is empty or not set"):
        generate("--password-env", "MISSING_VAR")
    assert "+lpos" in generate("--explain").split()


def test_an_aclfile_with_default_off_serves_the_console(
    start_server: Callable[..., RedisServer], tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipe of docs/redis-acl.md: ``user default off``, an admin, and the generated line."""
    monkeypatch.setenv("HSI_ACL_PASSWORD", CONSOLE_PASSWORD.replace("%", "x"))
    version = ".".join(map(str, redis_acl.parse_version(_server_version())))
    users = tmp_path / "users.acl"
    users.write_text(
        "user default off\n"
        f"user admin on >{ADMIN_PASSWORD} ~* &* +@all\n"
        + generate("--aclfile", "--password-env", "HSI_ACL_PASSWORD", "--redis-version", version)
        + "\n"
    )
    server = start_server(extra=("--aclfile", str(users)))
    config = RedisConfig(
        url=f"redis://hsi_console@127.0.0.1:{server.port}/0", password=os.environ["HSI_ACL_PASSWORD"]
    )
    settings.HSI_REDIS = config
    out = io.StringIO()
    call_command("check_redis", stdout=out)
    assert "Successfully connected to Redis with authentication" in out.getvalue()
    assert "hsi_console@127.0.0.1" in out.getvalue() and "HSI_ACL_PASSWORD" not in out.getvalue()
    admin = server.client(username="admin", password=ADMIN_PASSWORD)
    assert admin.acl_log() == []
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=server.port, retry=Retry(NoBackoff(), 0)).ping()  # the default user is off
    settings.HSI_REDIS = RedisConfig(url=config.url, password="not-it")
    with pytest.raises(CommandError, match="Redis rejected the user 'hsi_console' \\(WRONGPASS\\)"):
        call_command("check_redis")
    assert {(e["reason"], e["username"]) for e in admin.acl_log()} == {("auth", "hsi_console")}


def _server_version() -> str:
    out = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True, check=True).stdout
    return out.split("v=", 1)[1].split()[0]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_live_socket_as_the_acl_user(
    start_server: Callable[..., RedisServer], settings: Any, viewer: User
) -> None:
    """The live page's socket: session check, catch-up from console:events, then live delivery."""
    world = acl_redis(start_server, settings, read_only=True)
    _, cookie = session_cookie(viewer)

    async def scenario() -> tuple[str, dict[str, Any]]:
        socket = communicator(cookie)
        await connect(socket)
        await frames_until(socket, is_caught_up)
        entry_id = await send_event(get_redis(), 1)
        frame = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return entry_id, frame

    try:
        entry_id, frame = asyncio.run(scenario())
    finally:
        close_clients()
    assert frame["id"] == entry_id
    assert world.denials() == []
