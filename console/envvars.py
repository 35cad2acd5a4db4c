"""Reading the console's environment variables: a wrong value stops the start with a sentence.

A typo must never become a silent default: ``DJANGO_HTTPS=flase`` read as "not true" would turn
HTTPS off, and ``QUEUE_MAX_SIZE=10k`` ended the start with a ``ValueError`` traceback. Every reader
here names the variable, what it must be, and what it is now. ``start_or_explain`` turns such a
refusal into that one sentence on stderr (exit status 2) for ``manage.py`` and daphne.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
N = TypeVar("N", int, float)


def _set(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value is not None and value.strip() else None


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``); unset or empty: ``default``."""
    value = _set(env, name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false; it is {value!r}.")


def _number(
    env: Mapping[str, str], name: str, default: N, parse: Callable[[str], N], what: str, minimum: N
) -> N:
    value = _set(env, name)
    if value is None:
        return default
    try:
        number = parse(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number < minimum:
        raise ImproperlyConfigured(
            f"{name} must be {what} of at least {minimum}; it is {value!r} (unset, it is {default})."
        )
    return number


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    """A whole number of at least ``minimum``; unset or empty: ``default``."""
    return _number(env, name, default, int, "a whole number", minimum)


def env_seconds(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.001) -> float:
    """A number of seconds (``2``, ``0.5``) of at least ``minimum``; unset or empty: ``default``."""
    return _number(env, name, default, float, "a number of seconds", minimum)


def env_log_level(env: Mapping[str, str], name: str = "LOG_LEVEL", default: str = "INFO") -> str:
    value = _set(env, name)
    if value is None:
        return default
    if value.upper() not in LOG_LEVELS:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(LOG_LEVELS)}; it is {value!r}.")
    return value.upper()


@contextmanager
def start_or_explain() -> Iterator[None]:
    """Around loading the settings: a configuration refusal prints its sentence, not a traceback."""
    try:
        yield
    except ImproperlyConfigured as refusal:
        sys.stderr.write(f"HSI Console cannot start: {refusal}\n")
        raise SystemExit(2) from None
