"""Loaded with ``-p tests.plugin`` before pytest-django sets Django up.

It starts the session's private redis-server and points the environment at it, so settings
never see the machine's own Redis or a developer's ``.env``.

It also proves that no secret reaches a log: every log record of the run goes to a session log
file, and at the end that file, the files in ``LOG_FILES`` and every ``*.log`` under the run's
temporary folders (daphne, relays, redis-servers) are searched for the secrets the tests use
(``SECRETS``, plus every API token created). A hit fails the session, naming file and secret.
Under pytest-xdist each worker scans its own logs and the controller reports what they found.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisServer
from tests.secrets_scan import report, scan

STATE: dict[str, Any] = {}
LOG_FILES: list[Path] = []  # fixtures whose subprocesses log outside the tmp_path folders add theirs
SECRETS: dict[str, str] = {}  # label -> value; tests that invent a secret may add theirs
WORKER_FINDINGS = "hsi_secret_findings"  # what an xdist worker's scan hands its controller


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: list[str]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hsi-console-tests-"))
    server = RedisServer(folder / "main").start()
    STATE.update(folder=folder, server=server)
    SECRETS["DJANGO_SECRET_KEY of the tests"] = "tests-only-secret-key-" + "x" * 40
    os.environ.update(
        {
            "DJANGO_ENV_FILE": "",
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DJANGO_SECRET_KEY": SECRETS["DJANGO_SECRET_KEY of the tests"],
            "DJANGO_DEBUG": "false",
            "DJANGO_HTTPS": "false",  # the test client speaks plain HTTP; HTTPS tests override settings
            "DJANGO_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
            "REDIS_URL": server.url,
            "REDIS_PASSWORD": "",
            "DATABASE_URL": os.environ.get("TEST_DATABASE_URL", ""),
        }
    )
    for name in [n for n in os.environ if n.startswith("REDIS_SSL_") or n == "CONSOLE_REDIS_URL"]:
        del os.environ[name]


def pytest_sessionstart(session: pytest.Session) -> None:
    """After Django's LOGGING replaced the root handlers: record every log record to a file."""
    handler = logging.FileHandler(STATE["folder"] / "session.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    STATE["log_handler"] = handler
    logging.getLogger().addHandler(handler)
    _record_api_tokens()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Put the session log back should a test's logging configuration have dropped it."""
    root, handler = logging.getLogger(), STATE.get("log_handler")
    if handler is not None and handler not in root.handlers:
        root.addHandler(handler)


def _record_api_tokens() -> None:
    """Every API token the tests create becomes a secret to search for."""
    from django.db.models.signals import post_save
    from rest_framework.authtoken.models import Token

    def remember(sender: type[Token], instance: Token, **kwargs: Any) -> None:
        SECRETS[f"API token of user {instance.user_id}"] = instance.key

    post_save.connect(remember, sender=Token, weak=False, dispatch_uid="tests.plugin.tokens")


@pytest.fixture(scope="session", autouse=True)
def _temporary_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Where fixtures' subprocesses write their logs (daphne.log, relay.log, redis.log)."""
    STATE["basetemp"] = tmp_path_factory.getbasetemp()
    yield


def known_secrets() -> dict[str, str]:
    """The secrets of the test modules, read when the run is over (whichever were imported)."""
    from tests import conftest, live_server, test_orchestrator

    found = {
        "Redis password (tests/conftest.py PASSWORD)": conftest.PASSWORD,
        "console login password (tests/live_server.py PASSWORD)": live_server.PASSWORD,
        "HSI_API_KEY (tests/test_orchestrator.py API_KEY)": test_orchestrator.API_KEY,
        "DJANGO_SECRET_KEY of the live console": live_server.console_env(Path("."), "")["DJANGO_SECRET_KEY"],
    }
    return found | SECRETS


def session_logs() -> list[Path]:
    folders = [STATE[name] for name in ("folder", "basetemp") if STATE.get(name)]
    return [*LOG_FILES, *(path for folder in folders for path in sorted(Path(folder).rglob("*.log")))]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any log of it holds a secret (the values are never printed)."""
    handler = STATE.pop("log_handler", None)
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
    findings = scan(session_logs(), known_secrets())
    reports = [report(findings)] if findings else []
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # a pytest-xdist worker: its controller reports and fails the run
        worker_output[WORKER_FINDINGS] = reports
        return
    reports += STATE.pop("worker_reports", [])
    if reports:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            for text in reports:
                reporter.write_line(text, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's controller: keep what a worker's own scan found (each worker has its own
    Redis, console processes, logs and tokens, so only the worker can scan them)."""
    reports = getattr(node, "workeroutput", {}).get(WORKER_FINDINGS, [])
    STATE.setdefault("worker_reports", []).extend(reports)


def pytest_unconfigure(config: pytest.Config) -> None:
    server = STATE.get("server")
    if server:
        server.stop()
    if STATE.get("folder"):
        shutil.rmtree(STATE["folder"], ignore_errors=True)
