"""HSI's queue payload rules (detection and analysis), for edit-and-retry.

HSI's workers drop payloads that fail these rules with a log line, so an edited job that
breaks them would vanish silently; the console refuses it with the reasons instead.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from datetime import datetime
from typing import Any

CAMERA_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _iso(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def detection_errors(job: dict[str, Any]) -> list[str]:
    errors = []
    if not isinstance(job.get("camera_id"), str) or not CAMERA_ID.match(job["camera_id"]):
        errors.append("camera_id must be 1-64 letters, digits, '_' or '-'.")
    path = job.get("file_path")
    if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/") or "\x00" in path:
        errors.append("file_path must be an absolute path without '..' or NUL.")
    elif len(path) > 4096:
        errors.append("file_path must be at most 4096 characters.")
    if not _iso(job.get("timestamp")):
        errors.append("timestamp must be an ISO-8601 date and time.")
    if job.get("media_type", "image") not in ("image", "video"):
        errors.append("media_type must be 'image' or 'video'.")
    if job.get("file_hash") is not None and not SHA256.match(str(job["file_hash"])):
        errors.append("file_hash must be 64 lowercase hex characters (sha256).")
    if job.get("pipeline_start_time") is not None and not _iso(job["pipeline_start_time"]):
        errors.append("pipeline_start_time must be an ISO-8601 date and time.")
    return errors


def analysis_errors(job: dict[str, Any]) -> list[str]:
    errors = []
    batch_id = job.get("batch_id")
    if not isinstance(batch_id, str) or not 1 <= len(batch_id) <= 128:
        errors.append("batch_id must be a string of 1-128 characters.")
    camera = job.get("camera_id")
    if camera is not None and (not isinstance(camera, str) or not CAMERA_ID.match(camera)):
        errors.append("camera_id must be 1-64 letters, digits, '_' or '-'.")
    ids = job.get("detection_ids")
    if not isinstance(ids, list) or len(ids) > 10000 or not all(_positive_id(i) for i in ids):
        errors.append("detection_ids must be a list of at most 10,000 positive ids.")
    return errors


def _positive_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return isinstance(value, str) and value.isdigit() and int(value) > 0


def job_errors(target: str, job: Any) -> list[str]:
    """Why HSI would reject ``job`` on ``target``; empty when it would accept it."""
    if not isinstance(job, dict):
        return ["The job must be a JSON object."]
    if target.endswith("detection_queue"):
        return detection_errors(job)
    if target.endswith("analysis_queue"):
        return analysis_errors(job)
    return []


def parse_job(text: str) -> tuple[Any, list[str]]:
    try:
        return json.loads(text), []
    except ValueError as exc:
        return None, [f"The job is not valid JSON: {exc}."]
    except RecursionError:
        return None, ["The job is not valid JSON: it is nested too deeply to read."]


def text_digest(text: str) -> str:
    """Names the job text an operator previewed (line endings and outer blank space aside)."""
    normalized = text.replace("\r\n", "\n").strip()
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def diff(old: Any, new: Any) -> list[str]:
    """A unified diff of two jobs, as pretty JSON with sorted keys."""

    def lines(value: Any) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    return list(difflib.unified_diff(lines(old), lines(new), "in the DLQ", "to retry", lineterm=""))


def diff_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Each diff line with its kind (head, add, remove, same), for the preview's colours."""
    marked = []
    for line in lines:
        if line.startswith(("---", "+++", "@@")):
            kind = "head"
        else:
            kind = {"+": "add", "-": "remove"}.get(line[:1], "same")
        marked.append((kind, line))
    return marked
