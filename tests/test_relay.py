"""The live-events relay against real redis-servers, as real ``manage.py relay_events`` processes.

PUBLISH → stream entry + group message on the real channels-redis layer; malformed messages are
counted and skipped; a SIGKILLed and restarted Redis is resubscribed; of two relays exactly one
forwards, and when it dies (or is paused) the other takes over without duplicating or dropping.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import cache

from console.redis import RedisConfig, new_async_redis
from queues.overview import CENSUS_RUN, CensusRun
from realtime import relay as relay_module
from realtime import stream
from realtime.events import (
    DEPTHS_GROUP,
    DEPTHS_KEY,
    EVENTS_GROUP,
    HISTORY_KEY,
    LEADER_KEY,
    STATUS_KEY,
    Event,
    Malformed,
    normalise,
    parse_id,
)
from realtime.status import relay_status
from tests.redis_server import RedisServer
from tests.relay_helpers import (
    GroupListener,
    RelayProcess,
    publish_seq,
    relay_env,
    stream_events,
    stream_seqs,
    subscribers,
    wait_until,
)

LOCK_SECONDS = 2.0  # relay_env's HSI_RELAY_LOCK_SECONDS


@pytest.fixture
def start_relay(tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    started: list[RelayProcess] = []

    def start(name: str, server: RedisServer, **env: str) -> RelayProcess:
        relay = RelayProcess(name, relay_env(server.url, **env), tmp_path / f"{name}.log").start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.kill()


@pytest.fixture
def layer_on(settings: Any) -> Callable[[RedisServer], None]:
    """Point the console (HSI Redis and the channel layer) of this test process at ``server``."""

    def point(server: RedisServer) -> None:
        config = RedisConfig(url=server.url, socket_timeout=5, socket_connect_timeout=2)
        settings.HSI_REDIS = settings.CONSOLE_REDIS = config
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [config.channel_layer_host()], "prefix": "console:layer:"},
            }
        }

    return point


def envelope(**data: Any) -> str:
    return json.dumps({"type": "event", "data": {"camera_id": "front_door", "risk_level": "high", **data}})


# --- Normalisation (no process needed) ---


def test_normalise_follows_the_protocol() -> None:
    event = normalise("security_events", envelope(id=7).encode(), max_bytes=1000)
    assert (event.channel, event.type) == ("security_events", "event")
    assert json.loads(event.data_json) == {"camera_id": "front_door", "risk_level": "high", "id": 7}
    wrapper = {"_origin_instance": "i-1", "payload": {"type": "system_status", "data": {"health": "healthy"}}}
    status = normalise("system_status", json.dumps(wrapper).encode(), max_bytes=1000)
    assert status.type == "system_status"
    assert json.loads(status.data_json) == wrapper["payload"]
    untyped = normalise(
        "performance_update", b'{"_origin_instance": "i", "payload": {"gpu": 1}}', max_bytes=99
    )
    assert untyped.type == "performance_update"
    shard = normalise(
        "events:shard:3", b'{"camera_id": "porch", "event_type": "motion", "shard": 3}', max_bytes=99
    )
    assert shard.type == "motion" and json.loads(shard.data_json)["shard"] == 3
    bad = [
        (b"not json", "not_json"),
        (b"\xff\xfe{}", "not_json"),
        (b'{"type": "event", "data": NaN}', "not_json"),
        (b"[" * 50_000 + b"]" * 50_000, "not_json"),  # nested past the recursion limit
        (b"[1, 2]", "wrong_shape"),
        (b'{"type": "event"}', "wrong_shape"),
        (b'{"type": 5, "data": {}}', "wrong_shape"),
        (b'{"data": {}}', "wrong_shape"),
        (b"x" * 1_000_001, "too_large"),
    ]
    for raw, reason in bad:
        with pytest.raises(Malformed) as error:
            normalise("security_events", raw, max_bytes=1_000_000)
        assert error.value.reason == reason, raw[:40]


def test_append_is_fenced_by_the_lock_and_counts_every_entry(redis_client: redis.Redis) -> None:
    """The append script writes only for the lock holder, and ids count entries even past trimming."""

    async def scenario() -> list[str | None]:
        aclient = new_async_redis()
        try:
            event = Event("security_events", "event", "{}", "t")
            redis_client.set(LEADER_KEY, "relay-a")
            results = [await stream.append_if_leader(aclient, event, "relay-b")]
            for _ in range(3):
                results.append(await stream.append_if_leader(aclient, event, "relay-a"))
            return results
        finally:
            await aclient.aclose()

    results = asyncio.run(scenario())
    assert results[0] is None  # relay-b does not hold the lock: nothing written
    ids = [parse_id(value) for value in results[1:]]
    assert [i.n for i in ids if i] == [1, 2, 3]
    assert redis_client.xlen("console:events") == 3
    assert int(redis_client.hget(STATUS_KEY, "forwarded") or 0) == 3
    redis_client.xtrim("console:events", maxlen=0)
    unfenced = stream.append(
        redis_client, Event("console_actions", "action", "{}", "t"), source="console", token="a:1"
    )
    again = stream.append(
        redis_client, Event("console_actions", "action", "{}", "t"), source="console", token="a:1"
    )
    assert unfenced == again and parse_id(unfenced).n == 4  # type: ignore[union-attr]
    assert redis_client.xlen("console:events") == 1  # the re-sent call wrote nothing


def test_a_session_that_will_not_end_is_left_behind_within_its_bound(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A task that does not end when cancelled (as a library call stuck at exit would) holds the
    relay's stop for CLOSE_SECONDS at most, and the log says where it waits."""
    monkeypatch.setattr(relay_module, "CLOSE_SECONDS", 0.3)
    config = RedisConfig(url=redis_server.url, socket_timeout=5, socket_connect_timeout=2)
    relay = relay_module.Relay(relay_id="relay-stuck", config=config)

    async def stuck_read(freed: asyncio.Event) -> None:
        while not freed.is_set():
            try:
                await freed.wait()
            except asyncio.CancelledError:
                continue  # swallowed: cancelling it does not end it

    async def scenario() -> float:
        freed = asyncio.Event()
        client = new_async_redis(config)
        pubsub = client.pubsub()
        await pubsub.subscribe("security_events")
        task = asyncio.create_task(stuck_read(freed), name="relay-read")
        await asyncio.sleep(0)
        task.cancel()
        started = time.monotonic()
        await relay._close([task], pubsub, client)
        took = time.monotonic() - started
        assert not task.done()
        freed.set()  # let it end, so that asyncio.run can finish
        await task
        await pubsub.aclose()
        await client.aclose()
        return took

    with caplog.at_level("WARNING", logger="realtime.relay"):
        took = asyncio.run(scenario())
    assert 0.3 <= took < 2
    warning = caplog.records[-1].getMessage()
    assert "Relay relay-stuck: ending its Redis session took over 0.3 s" in warning
    assert re.search(r"relay-read \(in stuck_read test_relay\.py:\d+ → wait locks\.py:\d+\)", warning), (
        warning
    )


# --- One relay process ---


def test_publish_reaches_stream_and_group(
    redis_server: RedisServer, redis_client: redis.Redis, start_relay: Callable[..., RelayProcess]
) -> None:
    redis_client.rpush("detection_queue", b"a", b"b", b"c")
    redis_client.set("dlq:detection_queue", "not a list")  # sampled, and said to be what it is
    relay = start_relay("relay-one", redis_server)
    relay.wait_leading(redis_client)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with GroupListener(EVENTS_GROUP) as events, GroupListener(DEPTHS_GROUP) as depths:
            redis_client.publish("security_events", envelope(id=9121, summary="Person at the door"))
            wrapper = {
                "_origin_instance": "i-9",
                "payload": {"type": "system_status", "data": {"health": "ok"}},
            }
            redis_client.publish("system_status", json.dumps(wrapper))
            first = await events.wait_for(lambda m: m["message"]["channel"] == "security_events")
            second = await events.wait_for(lambda m: m["message"]["channel"] == "system_status")
            sample = await depths.wait_for(lambda m: m["message"]["type"] == "queue_depths")
            return first, second, sample

    first, second, sample = asyncio.run(scenario())
    entries = stream_events(redis_client)
    assert [fields["channel"] for _, fields in entries] == ["security_events", "system_status"]
    assert first["type"] == "live.message"
    message = first["message"]
    assert message["id"] == entries[0][0]
    assert message["type"] == "event"
    assert message["data"] == {
        "camera_id": "front_door",
        "risk_level": "high",
        "id": 9121,
        "summary": "Person at the door",
    }
    assert json.loads(first["text"]) == message  # the pre-encoded browser frame says the same
    assert entries[0][1]["src"] == "relay-one"
    assert second["message"]["id"] == entries[1][0]
    assert second["message"]["data"] == {"type": "system_status", "data": {"health": "ok"}}
    assert second["message"]["type"] == "system_status"
    queues = {q["key"]: q for q in sample["message"]["data"]["queues"]}
    assert queues["detection_queue"]["length"] == 3
    assert queues["detection_queue"]["stored_type"] is None
    assert queues["dlq:detection_queue"]["kind"] == "dlq"
    assert queues["dlq:detection_queue"]["stored_type"] == "string"
    assert json.loads(redis_client.get(DEPTHS_KEY) or b"{}")["type"] == "queue_depths"
    status = relay_status(redis_client)
    assert status.leader == "relay-one" and status.state == "forwarding"
    assert status.forwarded == 2 and status.heartbeat_age_seconds is not None
    assert relay.stop() == 0, relay.output()
    assert redis_client.get(LEADER_KEY) is None  # a clean exit releases the lock
    assert relay_status(redis_client).state == "stopped"
    assert "released the lock" in relay.output()


def test_the_leader_appends_samples_to_the_history(
    redis_server: RedisServer, redis_client: redis.Redis, start_relay: Callable[..., RelayProcess]
) -> None:
    redis_client.rpush("detection_queue", b"a", b"b")
    relay = start_relay("relay-history", redis_server)
    relay.wait_leading(redis_client)
    deadline = time.monotonic() + 10
    while redis_client.xlen(HISTORY_KEY) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = redis_client.xrange(HISTORY_KEY)  # type: ignore[assignment]
    assert len(entries) >= 2  # one sample every HSI_DEPTH_SAMPLE_SECONDS (0.5 s here)
    fields = entries[-1][1]
    depths = json.loads(fields[b"depths"])
    assert depths["detection_queue"] == 2 and depths["dlq:detection_queue"] == 0
    assert int(fields[b"used_memory"]) > 0
    assert b" " not in fields[b"depths"]  # compact JSON
    assert relay.stop() == 0, relay.output()


def test_the_leader_goes_on_with_the_dashboards_key_count(
    redis_server: RedisServer, redis_client: redis.Redis, start_relay: Callable[..., RelayProcess]
) -> None:
    """A keyspace larger than HSI_SCAN_LIMIT is counted over several steps; the relay takes one at
    each rediscovery, so the dashboard's count advances without anyone loading it."""
    redis_client.mset({f"dedupe:{n:05d}": b"1" for n in range(3000)})
    relay = start_relay("relay-census", redis_server, HSI_SCAN_LIMIT="500")
    relay.wait_leading(redis_client)
    deadline = time.monotonic() + 10
    while not isinstance(cache.get(CENSUS_RUN), CensusRun) and time.monotonic() < deadline:
        time.sleep(0.1)
    run = cache.get(CENSUS_RUN)
    assert isinstance(run, CensusRun) and 500 <= run.examined < 3000 and run.steps == 1
    assert sum(count for count, _ in run.tallies.values()) == run.examined, "each key counted once"
    assert relay.stop() == 0, relay.output()


def test_malformed_messages_are_counted_and_skipped(
    redis_server: RedisServer, redis_client: redis.Redis, start_relay: Callable[..., RelayProcess]
) -> None:
    relay = start_relay("relay-m", redis_server)
    relay.wait_leading(redis_client)
    for index in range(25):
        redis_client.publish("security_events", f"not json {index}")
    for raw in ("[1, 2]", '{"type": "event"}', '{"type": "event", "data": [1]}'):
        redis_client.publish("security_events", raw)
    redis_client.publish("security_events", json.dumps({"type": "event", "data": {"blob": "x" * 70_000}}))
    redis_client.publish("system_status", "\x00\x01 <script>alert(1)</script>")
    publish_seq(redis_client, 1)

    wait_until(lambda: stream_seqs(redis_client) == [1], what="the valid message after the bad ones")
    status = wait_until(lambda: (s := relay_status(redis_client)).malformed == 30 and s, what="the counts")
    assert status.malformed_reasons == {"not_json": 26, "wrong_shape": 3, "too_large": 1}
    assert status.forwarded == 1
    assert "system_status: not_json" in status.last_malformed
    assert "<script>" in status.last_malformed and "\x00" not in status.last_malformed
    assert redis_client.xlen("console:events") == 1
    assert relay.alive()
    logged = [line for line in relay.output().splitlines() if "malformed" in line]
    assert len(logged) == 1, logged  # the first in full; the rest only in the minute's summary
    assert "not json 0" in logged[0]


# --- Redis going away ---


def test_relay_resubscribes_after_redis_is_killed_and_restarted(
    start_server: Callable[..., RedisServer],
    start_relay: Callable[..., RelayProcess],
    layer_on: Callable[[RedisServer], None],
) -> None:
    server = start_server()
    client = server.client()
    relay = start_relay("relay-r", server)
    relay.wait_leading(client)
    publish_seq(client, 1)
    wait_until(lambda: stream_seqs(client) == [1], what="the first event")

    server.kill()
    wait_until(lambda: "lost Redis" in relay.output(), what="the relay to notice")
    server.start()  # same port, empty (no persistence): the stream and the lock are gone
    client = server.client()
    relay.wait_leading(client)
    wait_until(lambda: subscribers(client, "security_events") == 1, what="the resubscription")
    layer_on(server)

    async def scenario() -> dict[str, Any]:
        async with GroupListener(EVENTS_GROUP) as listener:
            publish_seq(client, 2)
            return await listener.wait_for(lambda m: m["message"]["data"].get("seq") == 2)

    received = asyncio.run(scenario())
    assert stream_seqs(client) == [2]
    assert received["message"]["id"] == stream_events(client)[0][0]
    log = relay.output()
    port = server.port
    lost = [line for line in log.splitlines() if "lost Redis" in line]
    assert len(lost) == 1
    assert f"127.0.0.1:{port}" in lost[0] and "Reconnecting with backoff" in lost[0]
    assert log.count("connected to Redis") == 2
    assert "cannot reach Redis" not in log  # one line per state change, not per attempt
    assert relay_status(client).last_error  # the outage is on the diagnostics card


def test_a_connection_blip_does_not_wait_out_the_relays_own_lock(
    redis_server: RedisServer, redis_client: redis.Redis, start_relay: Callable[..., RelayProcess]
) -> None:
    """Redis drops the relay's connections but keeps its lock (30 s TTL): the relay reconnects and
    goes on forwarding at once instead of standing by until its own lock expires."""
    relay = start_relay("relay-blip", redis_server, HSI_RELAY_LOCK_SECONDS="30")
    relay.wait_leading(redis_client)
    publish_seq(redis_client, 1)
    wait_until(lambda: stream_seqs(redis_client) == [1], what="the first event")
    redis_client.client_kill_filter(_type="pubsub")
    redis_client.client_kill_filter(_type="normal", skipme=True)
    wait_until(lambda: relay.output().count("connected to Redis") == 2, what="the reconnection")
    wait_until(lambda: subscribers(redis_client, "security_events") == 1, what="the resubscription")
    publish_seq(redis_client, 2)
    wait_until(lambda: stream_seqs(redis_client) == [1, 2], timeout=5, what="forwarding well within the TTL")
    assert "is on standby" not in relay.output()
    assert redis_client.pttl(LEADER_KEY) > 20_000  # still its lock, renewed


# --- Two relays ---


def leader_of(client: redis.Redis) -> str | None:
    value = client.get(LEADER_KEY)
    return value.decode() if isinstance(value, bytes) else value


def assert_each_once_in_order(client: redis.Redis, last: int) -> list[tuple[str, dict[str, str]]]:
    seqs = stream_seqs(client)
    duplicates = [seq for seq, count in Counter(seqs).items() if count > 1]
    assert not duplicates, f"written twice: {duplicates}"
    assert seqs == list(range(1, last + 1)), f"missing: {sorted(set(range(1, last + 1)) - set(seqs))}"
    return stream_events(client)


def publish_range(client: redis.Redis, first: int, last: int, per_second: float = 100) -> None:
    for seq in range(first, last + 1):
        publish_seq(client, seq)
        time.sleep(1 / per_second)


def start_pair(
    start_server: Callable[..., RedisServer], start_relay: Callable[..., RelayProcess]
) -> tuple[redis.Redis, RelayProcess, RelayProcess]:
    server = start_server()
    client = server.client()
    first = start_relay("relay-a", server)
    first.wait_leading(client)
    second = start_relay("relay-b", server)
    wait_until(lambda: subscribers(client, "security_events") == 2, what="both relays subscribed")
    wait_until(lambda: "is on standby: relay-a holds the lock" in second.output(), what="relay-b on standby")
    return client, first, second


def test_two_relays_one_forwards_and_the_other_takes_over(
    start_server: Callable[..., RedisServer], start_relay: Callable[..., RelayProcess]
) -> None:
    client, first, second = start_pair(start_server, start_relay)
    publish_range(client, 1, 40)
    wait_until(lambda: len(stream_seqs(client)) == 40, what="40 events")
    assert {fields["src"] for _, fields in stream_events(client)} == {"relay-a"}

    first.kill()  # SIGKILL: no release, the lock has to expire
    killed_at = time.monotonic()
    publish_range(client, 41, 140, per_second=50)  # 2 s, across the takeover
    wait_until(lambda: leader_of(client) == "relay-b", timeout=10, what="relay-b to take over")
    takeover = time.monotonic() - killed_at
    publish_range(client, 141, 160)
    wait_until(lambda: 160 in stream_seqs(client), what="the last event")

    entries = assert_each_once_in_order(client, 160)
    sources = [fields["src"] for _, fields in entries]
    switch = sources.index("relay-b")
    assert sources == ["relay-a"] * switch + ["relay-b"] * (160 - switch)  # one writer at a time
    assert switch >= 40
    assert takeover < LOCK_SECONDS + 3
    assert "appending" in second.output()  # what it heard while nobody forwarded
    assert relay_status(client).leader == "relay-b"


def test_a_paused_leader_is_fenced_off(
    start_server: Callable[..., RedisServer], start_relay: Callable[..., RelayProcess]
) -> None:
    """SIGSTOP the leader past its lock: the standby takes over, and the old leader, resumed with a
    socket full of messages it still believes it should forward, writes none of them."""
    client, first, second = start_pair(start_server, start_relay)
    publish_range(client, 1, 20)
    wait_until(lambda: len(stream_seqs(client)) == 20, what="20 events")

    first.signal(signal.SIGSTOP)
    publish_range(client, 21, 60, per_second=20)
    wait_until(lambda: leader_of(client) == "relay-b", timeout=10, what="relay-b to take over")
    publish_range(client, 61, 80)
    first.signal(signal.SIGCONT)
    wait_until(
        lambda: re.search(r"relay-a is on standby: relay-b", first.output()), what="relay-a to stand by"
    )
    publish_range(client, 81, 100)
    wait_until(lambda: 100 in stream_seqs(client), what="the last event")

    entries = assert_each_once_in_order(client, 100)
    assert {fields["src"] for _, fields in entries[20:]} == {"relay-b"}
    assert first.alive() and second.alive()
    assert leader_of(client) == "relay-b"


def test_sigusr1_prints_every_threads_stack_and_the_relay_goes_on(
    redis_server: RedisServer, redis_client: redis.Redis, start_relay: Callable[..., RelayProcess]
) -> None:
    """What an operator (and the tests' stop()) does to a relay that will not stop: its stacks."""
    relay = start_relay("relay-stacks", redis_server)
    relay.wait_leading(redis_client)
    assert relay.process is not None
    relay.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "most recent call first" not in relay.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Current thread" in relay.output() and "relay.py" in relay.output(), relay.output()
    assert relay.alive()
    assert relay.stop() == 0, relay.output()
