"""How one stored entry is shown on a page: row summaries, detail facts, raw bytes.

Pure functions of a decoded entry; no requests, no Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from queues import dlq
from queues.codec import utf8_head
from queues.conf import conf

ROW_LIMIT = 120
FACT_LIMIT = 1_000
ROW_DLQ_FIELDS = ("error_type", "error", "reason", "original_queue")
ROW_DLQ_JOB_FIELDS = ("camera_id", "batch_id")
ROW_JOB_FIELDS = ("camera_id", "file_path", "batch_id")
FACT_DLQ_FIELDS = (
    "error_type",
    "error",
    "attempt_count",
    "first_failed_at",
    "last_failed_at",
    "queue_name",
    "http_status",
    "retry_delays",
    "original_queue",
    "reason",
    "overflow_policy",
)
FACT_JOB_FIELDS = ("camera_id", "file_path", "batch_id", "detection_ids", "media_type", "timestamp")
TEXT_BLOCKS = (("stack_trace", "Stack trace", False), ("response_body", "Response body", True))


def clip(value: Any, limit: int, *, one_line: bool = False, size: int | None = None) -> str:
    """Text for a page, cut at ``limit`` characters with the full length said. ``size`` is the whole
    value's size in bytes when ``value`` is only the head a page read of it."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    head = " ".join(text[: limit * 4].split()) if one_line else text
    if size is not None:
        return f"{head[:limit]}… ({size:,} bytes; only the first {dlq.READ_WHOLE:,} were read)"
    whole = len(head) <= limit and (not one_line or len(text) <= limit * 4)
    return head if whole else f"{head[:limit]}… ({len(text):,} characters)"


def field_texts(
    pairs: Iterable[tuple[str, Any]], limit: int, cut: Mapping[str, int], *, one_line: bool = False
) -> list[tuple[str, str]]:
    """A stream entry's fields for a page, each cut at ``limit`` characters; a value the read cut
    (``cut``: its whole size by name) says how much of it was read."""
    return [(name, clip(value, limit, one_line=one_line, size=cut.get(name))) for name, value in pairs]


@dataclass(frozen=True)
class Row:
    entry: dlq.Entry
    summary: list[tuple[str, str]]
    problem: str

    @property
    def encodings(self) -> str:
        return " → ".join(self.entry.decoded.encodings)


def problem_of(entry: dlq.Entry, is_dlq: bool) -> str:
    """A DLQ entry's problem; a queue item only has one when it is not a JSON object."""
    return entry.problem if is_dlq or not isinstance(entry.payload, dict) else ""


def failure_fields(entry: dlq.Entry, names: tuple[str, ...]) -> list[tuple[str, Any]]:
    record = entry.payload if isinstance(entry.payload, dict) else {}
    return [(name, record.get(name)) for name in names]


def job_fields(entry: dlq.Entry, is_dlq: bool, names: tuple[str, ...]) -> list[tuple[str, Any]]:
    job = entry.job if is_dlq else entry.payload
    return [(name, job.get(name)) for name in names] if isinstance(job, dict) else []


def moment(value: Any) -> Any:
    """An ISO or epoch time as ``2026-02-11 22:04:14 UTC``; anything else unchanged."""
    at = dlq.parse_time(value)
    return value if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def row_of(entry: dlq.Entry, is_dlq: bool) -> Row:
    if is_dlq:
        pairs = failure_fields(entry, ROW_DLQ_FIELDS) + job_fields(entry, True, ROW_DLQ_JOB_FIELDS)
        pairs.append(("last_failed_at", moment(entry.field("last_failed_at"))))
    else:
        pairs = job_fields(entry, False, ROW_JOB_FIELDS)
    summary = [
        (name, clip(value, ROW_LIMIT, one_line=True)) for name, value in pairs if value not in (None, "")
    ]
    if not summary and not entry.decoded.is_structured:
        summary = [("value", clip(entry.decoded.display(limit=ROW_LIMIT * 2), ROW_LIMIT, one_line=True))]
    return Row(entry, summary, problem_of(entry, is_dlq))


def entry_context(entry: dlq.Entry, is_dlq: bool) -> dict[str, Any]:
    """Everything the entry and archive detail pages show about one stored value."""
    limit = conf("DISPLAY_LIMIT")
    blocks = [
        (label, clip(entry.field(name), limit), is_open)
        for name, label, is_open in TEXT_BLOCKS
        if is_dlq and entry.field(name) not in (None, "")
    ]
    if is_dlq and entry.field("context") is not None:
        blocks.append(
            ("Context", clip(json.dumps(entry.field("context"), indent=2, default=str), limit), True)
        )
    inner = entry.decoded.inner if entry.decoded.kind == "overflow" else None
    return {
        "entry": entry,
        "row": row_of(entry, is_dlq),
        "facts": shown(failure_fields(entry, FACT_DLQ_FIELDS) if is_dlq else []),
        "job_facts": shown(job_fields(entry, is_dlq, FACT_JOB_FIELDS)),
        "blocks": blocks,
        "display": entry.decoded.display(limit=limit),
        "inner_display": inner.display(limit=limit) if inner else "",
        "raw": raw_view(entry.raw, limit, entry.decoded.size),
    }


TIME_FIELDS = ("first_failed_at", "last_failed_at", "timestamp")


def shown(pairs: list[tuple[str, Any]], cut: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """Facts as text; a time HSI wrote reads as the rows show it, with its stored form after it.
    ``cut``: the whole sizes of values read only in part, by name."""
    sizes = cut or {}
    return [
        (name, clip(stated(value) if name in TIME_FIELDS else value, FACT_LIMIT, size=sizes.get(name)))
        for name, value in pairs
        if value not in (None, "", [])
    ]


def stated(value: Any) -> Any:
    when = moment(value)
    return value if when is value else f"{when} ({value})"


@dataclass(frozen=True)
class RawView:
    mode: str
    text: str
    size: int
    truncated: bool


def raw_view(raw: bytes, limit: int, size: int | None = None) -> RawView:
    """The exact bytes: as text when they are UTF-8, else as hex; cut at ``limit`` characters.
    ``size`` is the value's whole size when ``raw`` is only its head (an entry a page cut)."""
    size = len(raw) if size is None else size
    text = utf8_head(raw) if size > len(raw) else utf8(raw)
    if text is None:
        return RawView("hex", raw[: limit // 3].hex(" "), size, size > limit // 3)
    return RawView("text", text[:limit], size, len(text) > limit or size > len(raw))


def utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
