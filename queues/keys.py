"""Every HSI key name and pattern, in both layouts, as data.

The operator guide documents ``hsi:queue:*`` / ``hsi:queue:dlq:*``; the backend really writes
``detection_queue``, ``dlq:detection_queue``, ``dlq:overflow:*`` and ``*:stream``. Families are
checked in order, so the more specific ones come first. ``HSI_CONSOLE["KEY_FAMILIES"]`` may
replace the list. Nothing else in the console formats an HSI key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import translate
from functools import cache

from queues.conf import conf

QUEUE_NAMES = ("detection_queue", "analysis_queue")
STREAM_NAMES = ("detections:stream", "analysis:stream")
DOCUMENTED_PREFIX = "hsi:queue:"
SECURITY_EVENTS = "security_events"
SYSTEM_STATUS = "system_status"
PERFORMANCE_UPDATE = "performance_update"
CONSOLE_PREFIX = "console:"


@dataclass(frozen=True)
class KeyFamily:
    name: str
    label: str
    patterns: tuple[str, ...]
    kind: str = "string"


DEFAULT_FAMILIES: tuple[KeyFamily, ...] = (
    KeyFamily("console", "Console's own keys", (f"{CONSOLE_PREFIX}*",), "mixed"),
    KeyFamily("overflow_dlq", "Overflow DLQs", ("dlq:overflow:*",), "list"),
    KeyFamily("dlq", "Dead-letter queues", ("dlq:*", "hsi:queue:dlq:*"), "list"),
    KeyFamily("queues", "Work queues", (*QUEUE_NAMES, f"{DOCUMENTED_PREFIX}*"), "list"),
    KeyFamily("stream_dlq", "Stream DLQs", ("*:stream:dlq",), "stream"),
    KeyFamily("streams", "Streams", ("*:stream",), "stream"),
    KeyFamily("job_index", "Job indexes", ("job:status:list", "jobs:*"), "zset"),
    KeyFamily("jobs", "Jobs", ("job:*",), "string"),
    KeyFamily("orchestrator", "Orchestrator state", ("orchestrator:*",), "string"),
    KeyFamily("batch", "Open batches", ("batch:*",), "mixed"),
    KeyFamily("batch_event", "Batch idempotency", ("batch_event:*",), "string"),
    KeyFamily("dedupe", "Dedupe", ("dedupe:*",), "string"),
    KeyFamily("cache", "Cache", ("hsi:cache:*", "cache:*", "*:hits"), "string"),
    KeyFamily("embeddings", "Entity embeddings", ("entity_embeddings:*",), "string"),
    KeyFamily("telemetry", "Telemetry", ("telemetry:*", "model_zoo:*"), "list"),
    KeyFamily("rate_limit", "Rate-limit windows", ("rate_limit:*", "ratelimit:*"), "zset"),
    KeyFamily("idempotency", "Idempotency keys", ("idempotency:*",), "string"),
    KeyFamily("hll", "HyperLogLog counters", ("hll:*",), "string"),
    KeyFamily("camera", "Camera state", ("camera:*",), "string"),
    KeyFamily("cost", "Cost tracking", ("hsi:cost_tracking:*",), "hash"),
)
OTHER = KeyFamily("other", "Other keys", ("*",), "mixed")
# Families above are in matching order (specific first); pages list them in this order.
DISPLAY_ORDER = (
    "queues",
    "dlq",
    "overflow_dlq",
    "streams",
    "stream_dlq",
    "jobs",
    "job_index",
    "orchestrator",
    "batch",
    "batch_event",
    "dedupe",
    "cache",
    "embeddings",
    "telemetry",
    "rate_limit",
    "idempotency",
    "hll",
    "camera",
    "cost",
    "console",
    "other",
)


def display_rank(name: str) -> int:
    return DISPLAY_ORDER.index(name) if name in DISPLAY_ORDER else len(DISPLAY_ORDER) - 1


@cache
def _families(configured: tuple[tuple[str, str, tuple[str, ...], str], ...] | None) -> tuple[KeyFamily, ...]:
    if configured is None:
        return DEFAULT_FAMILIES
    return tuple(KeyFamily(*entry) for entry in configured)


def families() -> tuple[KeyFamily, ...]:
    configured = conf("KEY_FAMILIES")
    if configured is None:
        return DEFAULT_FAMILIES
    return _families(
        tuple((f["name"], f["label"], tuple(f["patterns"]), f.get("kind", "mixed")) for f in configured)
    )


@cache
def _matcher(ordered: tuple[KeyFamily, ...]) -> re.Pattern[str]:
    """One regex for all families; alternation order keeps "first family wins"."""
    return re.compile(
        "|".join(
            f"(?P<f{index}>{'|'.join(translate(p) for p in family.patterns)})"
            for index, family in enumerate(ordered)
        ),
        re.DOTALL,
    )


def classify(key: str) -> KeyFamily:
    """The first family whose pattern matches ``key``, else ``OTHER``."""
    ordered = families()
    match = _matcher(ordered).match(key)
    return ordered[int(match.lastgroup[1:])] if match and match.lastgroup else OTHER


# --- Key builders (one line each; the only place keys are formatted) ---


def queue_key(name: str, *, documented: bool = False) -> str:
    return f"{DOCUMENTED_PREFIX}{name}" if documented else name


def dlq_key(queue: str, *, documented: bool = False) -> str:
    return f"{DOCUMENTED_PREFIX}dlq:{queue}" if documented else f"dlq:{queue}"


def overflow_dlq_key(queue: str) -> str:
    return f"dlq:overflow:{queue}"


def stream_dlq_key(stream: str) -> str:
    return f"{stream}:dlq"


def source_queue(dlq: str) -> str | None:
    """The queue a DLQ's entries came from (``dlq:X`` → ``X``, ``S:dlq`` → ``S``...)."""
    for prefix, target_prefix in (
        ("dlq:overflow:", ""),
        (f"{DOCUMENTED_PREFIX}dlq:", DOCUMENTED_PREFIX),
        ("dlq:", ""),
    ):
        if dlq.startswith(prefix):
            return target_prefix + dlq.removeprefix(prefix)
    return dlq.removesuffix(":dlq") if dlq.endswith(":stream:dlq") else None


def job_key(job_id: str) -> str:
    return f"job:{job_id}"


def job_status_key(job_id: str) -> str:
    return f"job:{job_id}:status"


JOB_STATUS_LIST = "job:status:list"
JOBS_ACTIVE = "jobs:active"
JOBS_COMPLETED = "jobs:completed"


def job_control_channel(job_id: str) -> str:
    return f"job:{job_id}:control"


def orchestrator_state_key(service: str) -> str:
    return f"orchestrator:service:{service}:state"


def batch_current_key(camera_id: str) -> str:
    return f"batch:{camera_id}:current"


def batch_field_key(batch_id: str, field: str) -> str:
    return f"batch:{batch_id}:{field}"


def batch_event_key(batch_id: str) -> str:
    return f"batch_event:{batch_id}"


def dedupe_key(sha256: str) -> str:
    return f"dedupe:{sha256}"


def embeddings_key(day: str) -> str:
    return f"entity_embeddings:{day}"


def telemetry_key(stage: str) -> str:
    return f"telemetry:latency:{stage}"


def rate_limit_key(tier: str, client_ip: str) -> str:
    return f"rate_limit:{tier}:{client_ip}"


def idempotency_key(key: str) -> str:
    return f"idempotency:{key}"


def hll_key(metric: str, window: str) -> str:
    return f"hll:{metric}:{window}"


def cache_key(name: str, *, prefixed: bool = True) -> str:
    return f"hsi:cache:{name}" if prefixed else f"cache:{name}"


def console_key(name: str) -> str:
    return f"{CONSOLE_PREFIX}{name}"


STREAM_GROUPS = {"detections:stream": "detection-workers", "analysis:stream": "analysis-workers"}


def cache_fresh_until_key(full_key: str) -> str:
    return f"{full_key}:fresh_until"


def cache_refreshing_key(full_key: str) -> str:
    return f"{full_key}:refreshing"


# --- Scan patterns of the Keys section (queues/keyspace/) ---

BATCH_CURRENT_PATTERN = batch_current_key("*")
DEDUPE_PATTERN = dedupe_key("*")
CACHE_PREFIXES = (cache_key(""), cache_key("", prefixed=False))
EMBEDDINGS_PATTERN = embeddings_key("*")
RATE_LIMIT_PREFIX = "rate_limit:"
IDEMPOTENCY_PATTERNS = (idempotency_key("*"), batch_event_key("*"))
TELEMETRY_LATENCY_PATTERN = telemetry_key("*")
HLL_PATTERN = "hll:*"


def wildcard_part(key: str, pattern: str) -> str:
    """What the one ``*`` of ``pattern`` stands for in ``key`` (``""`` when it does not match)."""
    head, _, tail = pattern.partition("*")
    if len(key) < len(head) + len(tail) or not (key.startswith(head) and key.endswith(tail)):
        return ""
    return key[len(head) : len(key) - len(tail)]
