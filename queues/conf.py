"""Console settings with defaults, read lazily so ``override_settings`` just works."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    "QUEUE_MAX_SIZE": 10000,
    "SCAN_LIMIT": 20000,
    "SCAN_COUNT": 1000,
    "OVERVIEW_CACHE_SECONDS": 10,
    "KEY_FAMILIES": None,  # None = queues.keys.DEFAULT_FAMILIES
    "DISPLAY_LIMIT": 4096,
    "SELECTION_LIMIT": 1000,  # entries one DLQ selection across pages may hold
    "BULK_CHUNK_SECONDS": 3.0,  # one request of a bulk retry/delete runs this long, then reports progress
    "CONSUMER_IDLE_SECONDS": 60,  # a group whose consumers are all idle longer is flagged
    "KEYS_PAGE_ROWS": 500,  # keys one Keys page lists (its SCAN stops once it has found these)
    "CACHE_INVALIDATE_LIMIT": 1000,  # cache keys one prefix invalidation may UNLINK per request
    "EMBEDDINGS_MAX_BYTES": 32 * 1024 * 1024,  # larger entity_embeddings values are not read
    "MEMORY_SAMPLE": 1000,  # keys the overview's MEMORY USAGE sample takes from a SCAN
    "SLOWLOG_ENTRIES": 20,
    "LARGEST_KEYS": 10,
    "JOB_STALE_SECONDS": 600,  # a pending/running job with no news for longer is flagged stale
    "JOB_CACHE_SECONDS": 30,  # how long the jobs list reuses one summary of both keyspaces
    "JOB_INDEX_LIMIT": 10000,  # JobStatusService index entries the jobs list reads (HSI trims at 10000)
}


@cache
def get_config() -> dict[str, Any]:
    return {**DEFAULTS, **getattr(settings, "HSI_CONSOLE", {})}


def conf(name: str) -> Any:
    return get_config()[name]


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "HSI_CONSOLE":
        get_config.cache_clear()
