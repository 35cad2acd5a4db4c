"""Search a test run's logs for the secrets the tests use, naming the file and the secret's label.

The values themselves are never printed: a report that quoted them would leak them a second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

MIN_LENGTH = 8  # shorter values match by chance ("", "pw", ...): they are no secret worth the name


@dataclass(frozen=True)
class Finding:
    path: Path
    label: str

    def __str__(self) -> str:
        return f"{self.path}: contains {self.label}"


def forms(value: str) -> set[bytes]:
    """The byte strings a logged value may take: as is, and URL-encoded (inside a Redis URL)."""
    return {value.encode(), quote(value, safe="").encode()}


def scan(files: Iterable[Path], secrets: Mapping[str, str]) -> list[Finding]:
    """Every (file, label) where a secret's value occurs; missing files and short values are skipped."""
    needles = {label: forms(value) for label, value in secrets.items() if len(value) >= MIN_LENGTH}
    findings: list[Finding] = []
    for path in dict.fromkeys(files):
        try:
            content = path.read_bytes()
        except OSError:
            continue
        findings.extend(
            Finding(path, label)
            for label, variants in needles.items()
            if any(variant in content for variant in variants)
        )
    return findings


def report(findings: list[Finding]) -> str:
    lines = "\n".join(f"  {finding}" for finding in findings)
    return f"Secrets were written to the logs of this test run (values not shown):\n{lines}"
