"""The session-wide secrets check of tests/plugin.py: it finds planted secrets and names no value."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from tests import plugin
from tests.secrets_scan import Finding, report, scan


def test_scan_finds_a_planted_secret_as_is_and_url_encoded(tmp_path: Path) -> None:
    value = "pl4nted/" + secrets.token_hex(8) + "@x"
    clean, plain, in_url = tmp_path / "clean.log", tmp_path / "plain.log", tmp_path / "url.log"
    clean.write_text("GET /queues/ 200\nnothing to see\n")
    plain.write_bytes(b"\x00binary\xff then " + value.encode() + b" in a line\n")
    in_url.write_text(f"connecting to redis://:{quote(value, safe='')}@127.0.0.1:6390/0\n")

    findings = scan([clean, plain, in_url, tmp_path / "missing.log"], {"planted password": value})

    assert findings == [Finding(plain, "planted password"), Finding(in_url, "planted password")]
    text = report(findings)
    assert "plain.log: contains planted password" in text and value not in text
    assert quote(value, safe="") not in text


def test_scan_ignores_short_values_and_clean_files(tmp_path: Path) -> None:
    log = tmp_path / "daphne.log"
    log.write_text("pw ok\n")
    assert scan([log], {"short": "pw", "empty": "", "absent": "a-long-absent-secret"}) == []


def test_the_session_log_records_every_log_record_and_its_files_are_scanned(tmp_path: Path) -> None:
    marker = "session-log-marker-" + secrets.token_hex(6)
    logging.getLogger("tests.secrets").warning("marker %s", marker)
    plugin.STATE["log_handler"].flush()
    session_log = plugin.STATE["folder"] / "session.log"
    assert marker in session_log.read_text()

    assert session_log in plugin.session_logs()
    assert scan([session_log], {"the marker": marker}) == [Finding(session_log, "the marker")]
    labels = set(plugin.known_secrets())
    assert {
        "DJANGO_SECRET_KEY of the live console",
        "HSI_API_KEY (tests/test_orchestrator.py API_KEY)",
    } <= labels


def test_created_api_tokens_become_secrets(viewer: User) -> None:
    token = Token.objects.create(user=viewer)
    assert plugin.known_secrets()[f"API token of user {token.user_id}"] == token.key


LEAKY_TEST = """
import logging
import os

from tests import plugin


def test_logs_a_secret():
    plugin.SECRETS["the planted secret"] = os.environ["PLANTED_SECRET"]
    logging.getLogger("tests.leaky").warning("leaking %s", os.environ["PLANTED_SECRET"])
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_secret_logged_in_any_worker_fails_the_whole_run(tmp_path: Path, workers: str) -> None:
    """`make test` runs the suite under pytest-xdist: a worker's findings reach the controller,
    which names them (not their values) and fails, as a run without workers does."""
    value = "planted-" + secrets.token_hex(12)
    leaky = tmp_path / "test_leaky.py"
    leaky.write_text(LEAKY_TEST)
    root = Path(__file__).resolve().parent.parent
    config = ["-c", str(root / "pyproject.toml"), "-p", "no:cacheprovider"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *config, "-n", workers, "-q", str(leaky)],
        cwd=root,
        env=os.environ | {"PLANTED_SECRET": value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert "1 passed" in output, output
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "Secrets were written to the logs of this test run" in output
    assert "session.log: contains the planted secret" in output
    assert value not in output
