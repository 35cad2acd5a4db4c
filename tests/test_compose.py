"""Static checks of the deployment files: docker-compose.prod.yml, .env.example, Dockerfile.

Nothing here needs Docker or Django; the files are parsed and inspected.
"""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.prod.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

EXPECTED_ENV_VARS = [
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "REDIS_SSL_ENABLED",
    "REDIS_SSL_CERT_REQS",
    "REDIS_SSL_CA_CERTS",
    "REDIS_SSL_CERTFILE",
    "REDIS_SSL_KEYFILE",
    "REDIS_SSL_CHECK_HOSTNAME",
    "REDIS_SOCKET_TIMEOUT",
    "REDIS_SOCKET_CONNECT_TIMEOUT",
    "REDIS_MAX_CONNECTIONS",
    "CONSOLE_REDIS_URL",
    "QUEUE_MAX_SIZE",
    "HSI_SCAN_LIMIT",
    "LOG_LEVEL",
    "HSI_EVENT_CHANNELS",
    "HSI_EVENT_PATTERNS",
    "HSI_EVENTS_STREAM",
    "HSI_EVENTS_MAXLEN",
    "HSI_DEPTH_SAMPLE_SECONDS",
    "HSI_LIVE_BUFFER",
    "HSI_RELAY_LOCK_SECONDS",
    "HSI_LIVE_RECHECK_SECONDS",
    "HSI_EVENT_MAX_BYTES",
]

SECRET_ENV_VARS = ["DJANGO_SECRET_KEY", "REDIS_PASSWORD"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    return services


def as_text(value: object) -> str:
    """Join a compose command/test (string or list form) into one string."""
    if isinstance(value, list):
        return " ".join(str(part) for part in value)
    return str(value)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """Return a service's `environment` as a dict, accepting list or mapping form."""
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return {str(key): str(value) for key, value in environment.items()}
    pairs = (str(item).partition("=") for item in environment)
    return {key: value for key, _, value in pairs}


def test_redis_image_and_persistence(compose: dict[str, Any]) -> None:
    services = compose["services"]
    redis = services["redis"]
    assert redis["image"] == "redis:7.4-alpine"
    assert redis["restart"] == "unless-stopped"
    assert "redis_data:/data" in redis["volumes"]
    assert "redis_data" in (compose.get("volumes") or {})


def test_redis_port_not_published(services: dict[str, Any]) -> None:
    assert "ports" not in services["redis"]


def test_redis_command_guards_requirepass(services: dict[str, Any]) -> None:
    command = as_text(services["redis"]["command"])
    assert "sh -c" in command
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    guard = command.find('-n "$$REDIS_PASSWORD"')
    assert guard != -1, "requirepass needs a non-empty REDIS_PASSWORD check"
    assert guard < command.find("--requirepass")
    # The unauthenticated branch still starts an AOF-persisted server.
    assert command.count("redis-server --appendonly yes --appendfsync everysec") == 2
    assert env_of(services["redis"])["REDIS_PASSWORD"] == "${REDIS_PASSWORD:-}"


def test_redis_healthcheck_pings_with_password(services: dict[str, Any]) -> None:
    healthcheck = services["redis"]["healthcheck"]
    test = as_text(healthcheck["test"])
    assert "sh -c" in test
    assert "redis-cli" in test
    assert "ping" in test
    assert '-a "$$REDIS_PASSWORD"' in test
    assert "PONG" in test
    for key in ("interval", "timeout", "retries"):
        assert key in healthcheck


def test_console_and_relay_share_image_and_env(services: dict[str, Any]) -> None:
    console, relay = services["console"], services["relay"]
    assert console["build"] == relay["build"]
    assert console["build"] in (".", {"context": "."})
    assert console["env_file"] == relay["env_file"]
    assert console["env_file"] in (".env", [".env"])
    assert console.get("image") == relay.get("image")
    for service in (console, relay):
        assert env_of(service)["REDIS_URL"] == "redis://redis:6379/0"
        assert service["restart"] == "unless-stopped"


def test_console_service(services: dict[str, Any]) -> None:
    console = services["console"]
    command = as_text(console["command"])
    assert "migrate --noinput" in command
    assert "daphne" in command
    assert "console.asgi:application" in command
    assert command.find("migrate") < command.find("daphne")
    assert "8000:8000" in console["ports"]
    assert console["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/api/system/health/ready" in as_text(console["healthcheck"]["test"])


def test_relay_service(services: dict[str, Any]) -> None:
    relay = services["relay"]
    assert "relay_events" in as_text(relay["command"])
    assert "ports" not in relay
    assert relay["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "console" in relay["depends_on"]
    # It runs with the stack, not only under a profile, and gets time to release its lock.
    assert "profiles" not in relay
    assert relay.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert int(str(relay["stop_grace_period"]).rstrip("s")) >= 10


def test_redis_exporter_is_optional(services: dict[str, Any]) -> None:
    exporter = services["redis-exporter"]
    assert exporter["image"] == "oliver006/redis_exporter:v1.55.0"
    assert exporter["profiles"] == ["monitoring"]
    env = env_of(exporter)
    assert env["REDIS_ADDR"] == "redis://redis:6379"
    assert env["REDIS_PASSWORD"] == "${REDIS_PASSWORD:-}"


def test_no_literal_secrets_in_compose(services: dict[str, Any]) -> None:
    checked = 0
    for name, service in services.items():
        env = env_of(service)
        for key in ("REDIS_PASSWORD", "DJANGO_SECRET_KEY"):
            if key in env:
                checked += 1
                assert re.fullmatch(r"\$\{[A-Z_]+(:?-)?\}", env[key]), (
                    f"{name}: {key} must be a ${{...}} reference, not a literal value"
                )
    assert checked >= 2
    assert "requirepass" not in COMPOSE_FILE.read_text(encoding="utf-8").replace(
        '--requirepass "$$REDIS_PASSWORD"', ""
    )


def test_env_example_documents_every_variable() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assignments = {
        line.partition("=")[0]: (index, line.partition("=")[2])
        for index, line in enumerate(lines)
        if re.match(r"[A-Z][A-Z0-9_]*=", line)
    }
    missing = [name for name in EXPECTED_ENV_VARS if name not in assignments]
    assert not missing, f"missing from .env.example: {missing}"
    for name in EXPECTED_ENV_VARS:
        index, _ = assignments[name]
        assert index > 0, f"{name} needs a comment line above it"
        assert lines[index - 1].startswith("#"), f"{name} needs a comment line above it"
    for name in SECRET_ENV_VARS:
        assert assignments[name][1] == "", f"{name} must be an empty placeholder"


def test_dockerfile_runs_daphne_as_non_root() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line.strip() for line in text.splitlines() if line.strip()]
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "Dockerfile must switch to a USER"
    assert users[-1] not in ("root", "0", "0:0")
    cmds = [line for line in instructions if line.startswith("CMD ")]
    assert len(cmds) == 1
    assert "daphne" in cmds[0]
    assert "console.asgi:application" in cmds[0]
    # The build-time secret must not be baked into the image environment.
    env_lines = [line for line in instructions if line.startswith("ENV ")]
    assert not any("DJANGO_SECRET_KEY" in line for line in env_lines)


def one_line(command: str) -> str:
    """A shell command with its line continuations and runs of blanks folded to single spaces."""
    return " ".join(command.replace("\\\n", " ").split())


def test_every_daphne_command_sets_the_websocket_limits_and_trusts_no_proxy_header(
    services: dict[str, Any],
) -> None:
    """The limits tests/test_security_ws.py proves on the test server are the ones production runs."""
    from tests.live_server import DAPHNE_LIMITS

    limits = " ".join(DAPHNE_LIMITS)
    dockerfile_cmd = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD "))
    commands = {
        "docker-compose.prod.yml": one_line(as_text(services["console"]["command"])),
        "Dockerfile": " ".join(re.findall(r'"([^"]+)"', dockerfile_cmd)),
        "scripts/run-console": one_line((ROOT / "scripts/run-console").read_text()),
    }
    for where, command in commands.items():
        assert limits in command, where
        # daphne's --proxy-headers believes X-Forwarded-For from anyone; DJANGO_TRUSTED_PROXIES decides.
        assert "--proxy-headers" not in command, where
