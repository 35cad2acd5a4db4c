"""A DLQ selection that spans pages: entry refs kept in the user's session, per DLQ key.

The item browser ticks entries page by page; each page posts its ticks here, the confirmation
page lists the whole selection and the action resolves it by exact bytes near the index hints
(``dlq.resolve``), so entries that moved or vanished are reported, never mistaken for others.

A stream DLQ's entries have stable ids, so its refs are those ids: refs without an index hint
(``dlq.parse_refs`` reads a bare value as the name with hint -1), kept the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis
from django.contrib.sessions.backends.base import SessionBase

from queues import dlq, streams
from queues.conf import conf

SESSION_KEY = "queues.selection"
MAX_KEYS = 10  # DLQs with a selection kept per session; the least recently changed one goes first
REF = re.compile(r"(?:-1|\d{1,15}):[0-9a-f]{20}")
CLUSTER_SPAN = dlq.SEARCH_WINDOW // 4


class BadRef(ValueError):
    """A posted value that is not an entry ref; the message says which."""


@dataclass(frozen=True)
class RefKind:
    """How one kind of DLQ names its entries in forms: the field its checkboxes post, what a
    valid value looks like, and the words that say so when a value is not one."""

    field: str
    valid: Callable[[str], bool]
    what: str


LIST_REFS = RefKind(
    "ref", lambda ref: REF.fullmatch(ref) is not None, "an entry reference (index:fingerprint)"
)
STREAM_REFS = RefKind("id", streams.is_entry_id, "a stream entry id (like 1700000000000-0)")


def parse(values: Iterable[str], kind: RefKind = LIST_REFS) -> list[str]:
    """Refs (``index:fingerprint``, or a stream's entry ids) from a form, de-duplicated, in order;
    anything else is refused."""
    refs = []
    for value in values:
        ref = value.strip()
        if not kind.valid(ref):
            raise BadRef(f"{ref[:40]!r} is not {kind.what}.")
        refs.append(ref)
    return list(dict.fromkeys(refs))


def stream_order(entry_id: str) -> tuple[int, int]:
    """Sorts stream entry ids as Redis orders them (by time, then sequence), not as text."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def limit() -> int:
    return int(conf("SELECTION_LIMIT"))


def full_message(refused: int) -> str:
    noun = "entry was" if refused == 1 else "entries were"
    return (
        f"The selection is full: it holds at most {limit():,} entries, so {refused:,} ticked {noun} "
        "not added. Retry or delete the selection first, or clear it."
    )


class Selection:
    """The ticked entries of one DLQ for the session's user: fingerprint → latest index hint
    (a stream DLQ's: entry id → -1)."""

    def __init__(self, session: SessionBase, user_id: Any, key: str) -> None:
        self.session, self.key = session, key
        stored = session.get(SESSION_KEY)
        if not isinstance(stored, dict) or stored.get("user") != str(user_id) or "dlqs" not in stored:
            stored = {"user": str(user_id), "dlqs": {}}
        self.stored = stored
        picked = stored["dlqs"].get(key)
        self.picked: dict[str, int] = dict(picked) if isinstance(picked, dict) else {}

    def __len__(self) -> int:
        return len(self.picked)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self.picked

    @property
    def refs(self) -> list[str]:
        return [f"{hint}:{fp}" for fp, hint in self.picked.items()]

    @property
    def names(self) -> list[str]:
        """What names each selected entry: a list DLQ's fingerprints, a stream DLQ's entry ids."""
        return list(self.picked)

    @property
    def digest(self) -> str:
        """Names the selection's entries (not their hints): the confirmation page posts it back."""
        text = "\n".join([self.key, *sorted(self.picked)])
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def sync(self, shown: list[str], ticked: list[str]) -> list[str]:
        """Make the entries of one page (``shown``) selected exactly when ``ticked``.

        Entries of other pages stay as they are. Returns the ticked refs that did not fit.
        """
        keep = {fp for _, fp in dlq.parse_refs(ticked)}
        for _, fp in dlq.parse_refs(shown):
            if fp not in keep:
                self.picked.pop(fp, None)
        return self.add(ticked)

    def add(self, refs: list[str]) -> list[str]:
        refused = []
        for ref, (hint, fp) in zip(refs, dlq.parse_refs(refs), strict=True):
            if fp in self.picked or len(self.picked) < limit():
                self.picked[fp] = hint
            else:
                refused.append(ref)
        return refused

    def remove(self, refs: list[str]) -> None:
        for _, fp in dlq.parse_refs(refs):
            self.picked.pop(fp, None)

    def clear(self) -> None:
        self.picked.clear()

    def save(self) -> None:
        dlqs: dict[str, Any] = self.stored["dlqs"]
        dlqs.pop(self.key, None)
        if self.picked:
            dlqs[self.key] = self.picked
            while len(dlqs) > MAX_KEYS:
                dlqs.pop(next(iter(dlqs)))
        self.session[SESSION_KEY] = self.stored


def resolve(client: redis.Redis, key: str, refs: list[str], *, whole: bool = True) -> list[dlq.Entry]:
    """``dlq.resolve`` over refs grouped by nearby hints, in hint order.

    One ``dlq.resolve`` call reads a window per distinct hint until it has found them all; a
    thousand refs spread over pages would mean hundreds of reads. Groups of hints less than
    ``CLUSTER_SPAN`` apart are usually found by their first window.
    """
    parsed = sorted(dlq.parse_refs(refs))
    groups: list[list[tuple[int, str]]] = []
    for hint, fp in parsed:
        if groups and hint - groups[-1][0][0] < CLUSTER_SPAN:
            groups[-1].append((hint, fp))
        else:
            groups.append([(hint, fp)])
    found: dict[str, dlq.Entry] = {}
    for group in groups:
        wanted = [(hint, fp) for hint, fp in group if fp not in found]
        for entry in dlq.resolve(client, key, wanted, whole=whole) if wanted else []:
            found[entry.id] = entry
    return sorted(found.values(), key=lambda entry: entry.index)
