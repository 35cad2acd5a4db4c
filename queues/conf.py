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
    "CONSUMER_IDLE_SECONDS": 60,  # a group whose consumers are all idle longer is flagged
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
