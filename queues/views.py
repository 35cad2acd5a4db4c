"""Queue and DLQ pages in the console's admin site (filled in by the queues pages work)."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern


def admin_urls(site: Any) -> list[URLPattern]:
    return []
