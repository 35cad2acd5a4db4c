"""Small display filters for the console's pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds: int | float | None) -> str:
    """``93784`` → ``1d 2h 3m``."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p) or f"{secs}s"


@register.filter
def percent(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.0%}"
