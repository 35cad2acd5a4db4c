"""What the queue pages read from a request: paging, selections, nonces and a bulk action's tally."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict

from queues import dlq

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_SIZE = 50
MAX_OFFSET = 10**15
MAX_SELECTED = 100
# The browser's state that a confirmation page carries back (paging, order and the DLQ filters).
# A DLQ's (and the archive's) filter, as query names: error text or type (contains), error type and
# error (the exact values the breakdown links with), camera, failure time; the text ones with the
# longest value each takes.
FILTER_NAMES = ("q", "type", "error", "camera", "since", "until")
FILTER_CHARS = {"q": 200, "type": 200, "error": dlq.ERROR_CHARS, "camera": 64}
BACK_PARAMS = ("size", "order", "offset", *FILTER_NAMES)


def number(value: Any, default: int) -> int:
    """A non-negative int from a form value, else ``default``."""
    try:
        parsed = int(str(value).strip())
    except ValueError:
        return default
    return parsed if 0 <= parsed <= MAX_OFFSET else default


def offset_of(query: Mapping[str, Any]) -> int:
    """Where a page starts: ``item`` (1-based, the pager's "Go to item" box) or else ``offset``."""
    item = number(query.get("item"), 0)
    return item - 1 if item else number(query.get("offset"), 0)


@dataclass(frozen=True)
class Browse:
    """How the item browser pages a list: page size, order and offset (in that order)."""

    size: int = DEFAULT_SIZE
    newest_first: bool = False
    offset: int = 0

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> Browse:
        size = number(query.get("size"), DEFAULT_SIZE)
        return cls(
            size=size if size in PAGE_SIZES else DEFAULT_SIZE,
            newest_first=query.get("order") == "newest",
            offset=number(query.get("offset"), 0),
        )


def new_nonce() -> str:
    return uuid.uuid4().hex


RUN_ID = re.compile(r"[0-9a-f]{32}")  # new_nonce()'s form


def back_query(data: Mapping[str, Any]) -> str:
    """The browser's own parameters from ``data`` (or from its ``back`` field), nothing else."""
    source = QueryDict(data["back"]) if data.get("back") else data
    kept = QueryDict(mutable=True)
    for name in BACK_PARAMS:
        value = source.get(name)
        if value not in (None, ""):
            kept[name] = str(value)[:200]
    return kept.urlencode()


def selected_refs(data: QueryDict) -> list[str]:
    """The ``ref`` values of checked rows (``index:fingerprint``), de-duplicated, in order."""
    return list(dict.fromkeys(ref.strip()[:80] for ref in data.getlist("ref") if ref.strip()))


MAX_ARCHIVE_ID = 2**63 - 1  # BigAutoField: a larger id is no row, and the database refuses to compare it


def selected_ids(data: QueryDict) -> list[int]:
    ids = (int(v) for v in data.getlist("id") if v.isascii() and v.isdigit())
    return list(dict.fromkeys(i for i in ids if i <= MAX_ARCHIVE_ID))


@dataclass
class Tally:
    """A bulk action's running totals, carried from chunk to chunk by the progress form."""

    done: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    steps: int = 0
    planned: int = 0
    kept: int = 0  # the last chunk's position: entries left in place before where it stopped
    unmatched: int = 0  # entries examined that did not match the filter (left in place)
    put_back: int = 0  # entries not examined, moved behind the others when the run was ended early
    run: str = field(default_factory=new_nonce)  # the action's id: a delete's archive rows carry it

    @classmethod
    def parse(cls, text: str | None) -> Tally:
        try:
            data = json.loads(text or "{}")
            skipped = Counter({str(k): int(v) for k, v in dict(data.get("skipped", {})).items()})
            counts = (int(data["done"]), skipped, int(data["steps"]), int(data["planned"]))
            run = str(data.get("run", ""))
            run = run if RUN_ID.fullmatch(run) else new_nonce()
            kept, unmatched, put_back = (
                max(int(data.get(name, 0)), 0) for name in ("kept", "unmatched", "put_back")
            )
            return cls(*counts, kept=kept, unmatched=unmatched, put_back=put_back, run=run)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return cls()

    def dumps(self) -> str:
        return json.dumps(
            {
                "done": self.done,
                "skipped": dict(self.skipped),
                "steps": self.steps,
                "planned": self.planned,
                "kept": self.kept,
                "unmatched": self.unmatched,
                "put_back": self.put_back,
                "run": self.run,
            }
        )

    def add(self, chunk: dlq.Outcome, position: int) -> Tally:
        """Count one chunk in; the first one fixes how many entries the action covers."""
        planned = self.planned or chunk.done + position + (chunk.remaining or 0)
        counts = (self.done + chunk.done, self.skipped + chunk.skipped, self.steps + 1, planned)
        return Tally(
            *counts,
            kept=position,
            unmatched=self.unmatched + chunk.unmatched,
            put_back=self.put_back + chunk.put_back,
            run=self.run,
        )

    def handled(self, position: int) -> int:
        """Entries dealt with: those acted on (gone from the list) and those kept before ``position``."""
        return self.done + position

    def unexamined(self, position: int) -> int | None:
        """Entries the action covers that no chunk has examined yet (None before the first chunk):
        the run's own count, which entries deleted by someone else cannot make it stop short of."""
        return self.planned - self.handled(position) if self.steps else None

    def outcome(self, last: dlq.Outcome) -> dlq.Outcome:
        """The whole action as one outcome, for its summary sentence."""
        return dlq.Outcome(
            last.key,
            last.target,
            done=self.done,
            full=last.full,
            skipped=Counter(self.skipped),
            remaining=last.remaining,
            unmatched=self.unmatched,
            put_back=self.put_back,
        )
