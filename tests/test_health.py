"""Health endpoints against real private Redis servers: healthy, down, auth and TLS failures, recovery."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

READY = "/api/system/health/ready"


def ready(client: Client) -> tuple[int, dict]:
    response = client.get(READY)
    return response.status_code, response.json()


def assert_unhealthy(client: Client, *phrases: str) -> str:
    status, body = ready(client)
    assert status == 503
    assert body["status"] == "not_ready"
    redis_health = body["dependencies"]["redis"]
    assert redis_health["status"] == "unhealthy"
    assert redis_health["connected"] is False
    for phrase in phrases:
        assert phrase in redis_health["error"], redis_health["error"]
    assert body["dependencies"]["database"]["status"] == "healthy"
    return str(redis_health["error"])


def test_ready_reports_version_and_latency(client: Client, redis_client) -> None:
    status, body = ready(client)
    assert status == 200
    assert body["status"] == "ready"
    redis_health = body["dependencies"]["redis"]
    assert redis_health["connected"] is True
    assert redis_health["redis_version"] == redis_client.info("server")["redis_version"]
    assert redis_health["latency_ms"] >= 0
    assert body["dependencies"]["database"] == {**body["dependencies"]["database"], "status": "healthy"}


def test_live_never_touches_redis(client: Client, point_at) -> None:
    point_at(url="redis://127.0.0.1:1/0")
    response = client.get("/api/system/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_health_is_public_and_not_cached(client: Client, redis_client) -> None:
    response = client.get(READY)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert client.post(READY).status_code == 405


def test_killed_redis_is_explained_then_recovers_without_restart(
    client: Client, start_server, point_at
) -> None:
    server = start_server()
    point_at(server)
    assert ready(client)[0] == 200
    server.kill()
    assert_unhealthy(client, "Connection refused", "is Redis running", "REDIS_URL")
    server.start()
    status, body = ready(client)
    assert status == 200, body


def test_missing_password_says_set_redis_password(client: Client, start_server, point_at) -> None:
    server = start_server(password=PASSWORD)
    point_at(server)
    assert_unhealthy(client, "NOAUTH", "set REDIS_PASSWORD")


def test_wrong_password_says_mismatch_and_never_shows_it(client: Client, start_server, point_at) -> None:
    server = start_server(password=PASSWORD)
    point_at(server, password="not-the-password")
    error = assert_unhealthy(client, "WRONGPASS", "does not match")
    assert "not-the-password" not in error and PASSWORD not in error


def test_right_password_is_healthy_and_password_not_in_body(client: Client, start_server, point_at) -> None:
    server = start_server(password=PASSWORD)
    point_at(server, password=PASSWORD)
    response = client.get(READY)
    assert response.status_code == 200
    assert PASSWORD not in response.content.decode()


def test_tls_with_right_ca_and_client_certificate(client: Client, start_server, point_at, tls_files) -> None:
    server = start_server(tls=tls_files, require_client_cert=True)
    point_at(
        server,
        ssl_ca_certs=str(tls_files.ca),
        ssl_certfile=str(tls_files.client_cert),
        ssl_keyfile=str(tls_files.client_key),
    )
    assert ready(client)[0] == 200


def test_tls_redis_url_with_ssl_enabled_flag(client: Client, start_server, point_at, tls_files) -> None:
    server = start_server(tls=tls_files)
    point_at(
        url=server.url.replace("rediss://", "redis://"), ssl_enabled=True, ssl_ca_certs=str(tls_files.ca)
    )
    assert ready(client)[0] == 200


def test_bad_ca_names_the_ca_setting(client: Client, start_server, point_at, tls_files) -> None:
    server = start_server(tls=tls_files)
    point_at(server, ssl_ca_certs=str(tls_files.other_ca))
    assert_unhealthy(client, "certificate verification failed", "REDIS_SSL_CA_CERTS", str(tls_files.other_ca))


def test_missing_client_certificate_asks_for_mtls(client: Client, start_server, point_at, tls_files) -> None:
    server = start_server(tls=tls_files, require_client_cert=True)
    point_at(server, ssl_ca_certs=str(tls_files.ca))
    assert_unhealthy(client, "client certificate", "REDIS_SSL_CERTFILE", "REDIS_SSL_KEYFILE")


def test_hostname_mismatch_names_the_check(client: Client, start_server, point_at, tls_files) -> None:
    server = start_server(tls=tls_files)
    point_at(url=f"rediss://127.0.0.2:{server.port}/0", ssl_ca_certs=str(tls_files.ca))
    assert_unhealthy(client, "does not match the host", "REDIS_SSL_CHECK_HOSTNAME")
    point_at(
        url=f"rediss://127.0.0.2:{server.port}/0", ssl_ca_certs=str(tls_files.ca), ssl_check_hostname=False
    )
    assert ready(client)[0] == 200


def test_tls_client_against_plain_port(client: Client, start_server, point_at, tls_files) -> None:
    server = start_server()
    point_at(url=server.url.replace("redis://", "rediss://"), ssl_ca_certs=str(tls_files.ca))
    assert_unhealthy(client, "REDIS_SSL_ENABLED=false")


def test_plain_client_against_tls_port(client: Client, start_server, point_at, tls_files) -> None:
    server = start_server(tls=tls_files)
    point_at(url=server.url.replace("rediss://", "redis://"))
    assert_unhealthy(client, "REDIS_SSL_ENABLED=true")


def test_missing_ca_file(client: Client, start_server, point_at, tls_files, tmp_path) -> None:
    server = start_server(tls=tls_files)
    point_at(server, ssl_ca_certs=str(tmp_path / "nope.pem"))
    assert_unhealthy(client, "does not exist")


def test_unknown_host(client: Client, point_at) -> None:
    point_at(url="redis://no-such-host.invalid:6379/0")
    assert_unhealthy(client, "cannot be resolved", "no-such-host.invalid")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never answers: a hung Redis or a black-holed route."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.timeout(20)
def test_hung_redis_times_out_with_a_sentence(client: Client, point_at, silent_server: int) -> None:
    point_at(url=f"redis://127.0.0.1:{silent_server}/0")
    assert_unhealthy(client, "Timed out", "is Redis running")


def test_health_json_has_no_secret_fields(client: Client, start_server, point_at) -> None:
    server = start_server(password=PASSWORD)
    point_at(url=f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")
    response = client.get(READY)
    assert response.status_code == 200
    assert PASSWORD not in json.dumps(response.json())
