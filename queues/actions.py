"""Console actions on DLQs, shared by pages, the API and commands: each one audited."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.http import HttpRequest

from console import audit
from queues import archive, dlq, keys, selection, streams, validation
from queues.forms import FILTER_CHARS, new_nonce
from queues.presentation import field_texts

SNAPSHOT_ENTRIES = 5
SNAPSHOT_CHARACTERS = 1500  # of each entry (a list's) or value (a stream's) an audit entry keeps
AUDITED_FINGERPRINTS = 1000
NONCE_SECONDS = 3600
RECONCILE_AFTER_SECONDS = 60  # leave calls that may still be running alone (fencing makes it safe anyway)


class BadFilter(ValueError):
    """A filter the user typed that cannot be read; the message says which and how."""


@dataclass(frozen=True)
class Filters(dlq.Criteria):
    """A DLQ filter as the pages, the API and the commands take it (``FILTER_NAMES``)."""

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> Filters:
        def text(name: str) -> str:
            return str(query.get(name, "")).strip()[: FILTER_CHARS[name]]

        return cls(
            text=text("q"),
            camera=text("camera"),
            since=_moment(query.get("since"), "since"),
            until=_moment(query.get("until"), "until"),
            error_type=text("type"),
            error=text("error"),
        )

    @property
    def active(self) -> bool:
        return any(value not in ("", None) for value in asdict(self).values())

    def select(self, entry: dlq.Entry | streams.StreamEntry) -> bool:
        """A list DLQ entry (error text or type, job's camera) or a stream DLQ entry (reason, camera_id)."""
        return entry.matches(self)

    def as_query(self) -> dict[str, str]:
        names = {"text": "q", "error_type": "type"}
        values = asdict(self) | {"since": _show_since(self.since), "until": _show_until(self.until)}
        return {names.get(k, k): str(v) for k, v in values.items() if v not in ("", None)}


ISO_PARTS = re.compile(r"\d{4}-?\d{2}-?\d{2}(?:[T ](\d{2})(:?\d{2})?(:?\d{2})?([.,]\d+)?)?")
INSTANT = timedelta(microseconds=1)


def _moment(value: Any, name: str) -> float | None:
    """``since`` from the instant it names; ``until`` to the end of the day, hour, minute or second
    it names ("until 22:04" takes 22:04:59.7 too: HSI's times have microseconds), or to the very
    instant when it has a fraction of a second."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(
            f"'{name}' must be a date and time like 2026-02-11T22:04, not {text[:40]!r}."
        ) from None
    if name == "until":
        moment += _named_span(text) - INSTANT
    return moment.timestamp()


def _named_span(text: str) -> timedelta:
    """How long the time ``text`` names: a day, an hour, a minute, a second, or an instant."""
    parts = ISO_PARTS.match(text)
    if parts is None:
        return INSTANT
    hour, minute, second, fraction = parts.groups()
    if fraction:
        return INSTANT
    if second:
        return timedelta(seconds=1)
    if minute:
        return timedelta(minutes=1)
    return timedelta(hours=1) if hour else timedelta(days=1)


def _show_since(moment: float | None) -> str | None:
    """A ``since`` as short as it says the same: minutes, seconds, else to the microsecond."""
    if moment is None:
        return None
    start = datetime.fromtimestamp(moment)
    if start.microsecond:
        return start.isoformat()
    return start.isoformat(timespec="seconds" if start.second else "minutes")


def _show_until(moment: float | None) -> str | None:
    """An ``until`` by the minute or second it ends, as typed ("22:04" and "22:04:59" alike)."""
    if moment is None:
        return None
    end = datetime.fromtimestamp(moment)
    if end.microsecond != 999_999:
        return end.isoformat()
    return end.isoformat(timespec="seconds" if end.second != 59 else "minutes")


def first_submission(client: redis.Redis, nonce: str) -> bool:
    """False when this form or request was already submitted (two tabs, a replayed POST)."""
    if not nonce:
        return True
    return bool(client.set(keys.console_key(f"op:{nonce[:64]}"), 1, nx=True, ex=NONCE_SECONDS))


def _record(request: HttpRequest | None, action: str, key: str, outcome: dlq.Outcome, **extra: Any) -> int:
    return _audit(
        request,
        action,
        key,
        outcome.done,
        {
            **outcome.as_dict(),
            "fingerprints": [e.id for e in outcome.moved[:AUDITED_FINGERPRINTS]],
            "snapshot": [
                e.decoded.display(limit=SNAPSHOT_CHARACTERS) for e in outcome.moved[:SNAPSHOT_ENTRIES]
            ],
            **extra,
        },
    )


def _audit(request: HttpRequest | None, action: str, key: str, count: int, detail: dict[str, Any]) -> int:
    entry = audit.record(
        getattr(request, "user", None), action, key=key, count=count, request=request, detail=detail
    )
    return entry.pk


def _selected(client: redis.Redis, key: str, refs: list[str]) -> tuple[list[dlq.Entry], int]:
    """The entries the refs name, as pages read them (a large one cut: actions read it whole just
    before they move it), and how many were not found."""
    entries = selection.resolve(client, key, refs, whole=False)
    return entries, len(refs) - len(entries)


def _username(request: HttpRequest | None) -> str:
    user = getattr(request, "user", None)
    return user.get_username() if user is not None and user.is_authenticated else "system"


Action = Callable[[redis.Redis, str, Sequence[dlq.Entry]], dlq.Outcome]


def _archive_delete(request: HttpRequest | None, deletion: str) -> Action:
    return lambda client, key, entries: archive.archive_and_delete(
        client, key, entries, _username(request), deletion=deletion
    )


def _archive_rotate(request: HttpRequest | None, deletion: str) -> dlq.Act:
    return lambda client, key, window: archive.archive_and_rotate(
        client, key, window, _username(request), deletion=deletion
    )


def _deletion(verb: str, deletion: str) -> dict[str, str]:
    """What a delete's audit entry records of its action id (a retry has none)."""
    return {"deletion": deletion} if verb == "delete" else {}


def _check_verb(verb: str) -> None:
    if verb not in ("retry", "delete"):
        raise ValueError(f"Unknown DLQ action {verb!r}: use 'retry' or 'delete'.")


def act_on_selected(
    client: redis.Redis,
    key: str,
    refs: list[str],
    *,
    verb: str,
    request: HttpRequest | None,
    deletion: str = "",
) -> tuple[dlq.Outcome, int]:
    """Retry or delete the entries a user picked; returns the outcome and the audit id.

    A delete's archive rows carry ``deletion`` (a new id if none is given), recorded in the audit.
    """
    _check_verb(verb)
    deletion = deletion or new_nonce()
    entries, missing = _selected(client, key, refs)
    action = dlq.retry if verb == "retry" else _archive_delete(request, deletion)
    outcome = action(client, key, entries)
    if missing:
        outcome.skipped["not found (already retried or deleted?)"] += missing
    extra = _deletion(verb, deletion)
    return outcome, _record(request, f"dlq.{verb}", key, outcome, selected=len(refs), **extra)


def act_on_matching(
    client: redis.Redis,
    key: str,
    filters: Filters,
    *,
    verb: str,
    request: HttpRequest | None,
    start: int = 0,
    budget_seconds: float = 3.0,
    deletion: str = "",
    unexamined: int | None = None,
    end: bool = False,
) -> tuple[dlq.Outcome, int, int]:
    """Retry or delete everything matching (or all), one time-boxed chunk; continue from ``position``.

    Every chunk of one delete passes the same ``deletion``, so the whole action is undone as one;
    ``unexamined`` is the caller's own count of entries not examined yet (``dlq.sweep``). With
    ``end`` the run ends instead: its chunks act on nothing and put the DLQ back in its old order
    (``dlq.put_back``).
    """
    _check_verb(verb)
    deletion = deletion or new_nonce()
    select = filters.select if filters.active else None
    if end:
        outcome, position = dlq.put_back(
            client, key, budget_seconds=budget_seconds, start=start, unexamined=unexamined
        )
    elif verb == "retry" and select is None:
        outcome, position = dlq.retry_all(
            client, key, budget_seconds=budget_seconds, start=start, unexamined=unexamined
        )
    elif verb == "retry":
        outcome, position = dlq.sweep(
            client,
            key,
            dlq.retry_window,
            dlq.retry_keep(select),
            budget_seconds=budget_seconds,
            start=start,
            unexamined=unexamined,
        )
    else:
        outcome, position = dlq.sweep(
            client,
            key,
            _archive_rotate(request, deletion),
            dlq.delete_keep(select),
            budget_seconds=budget_seconds,
            start=start,
            unexamined=unexamined,
        )
    outcome.target = keys.source_queue(key) if verb == "retry" else None
    extra = _deletion(verb, deletion) | ({"ended": True} if end else {})
    audit_id = _record(
        request, f"dlq.{verb}_all", key, outcome, filters=filters.as_query(), start=start, **extra
    )
    return outcome, position, audit_id


def edit_and_retry(
    client: redis.Redis, key: str, ref: str, text: str, *, request: HttpRequest | None
) -> tuple[dlq.Outcome | None, list[str]]:
    """Validate the edited job against HSI's payload rules; retry it only when it passes."""
    job, errors = validation.parse_job(text)
    target = dlq.target_of(key)
    errors = errors or validation.job_errors(target, job)
    entries, _ = _selected(client, key, [ref])
    entries = dlq.read_whole(client, key, entries)
    if not entries:
        errors.append(f"The entry is no longer in {key} (retried or deleted).")
    if errors:
        return None, errors
    entry = entries[0]
    outcome = dlq.retry_edited(client, key, entry, job)
    _record(request, "dlq.edit_and_retry", key, outcome, diff=validation.diff(entry.job, job))
    return outcome, []


def _record_stream(
    request: HttpRequest | None, action: str, key: str, outcome: streams.StreamOutcome, **extra: Any
) -> int:
    """A stream action's audit entry: the ids acted on and the first few entries' fields."""
    return _audit(
        request,
        action,
        key,
        outcome.done,
        {
            **outcome.as_dict(),
            "entry_ids": [e.id for e in outcome.acted[:AUDITED_FINGERPRINTS]],
            "snapshot": [
                {"id": e.id, "fields": dict(field_texts(e.fields.items(), SNAPSHOT_CHARACTERS, e.cut))}
                for e in (stored.text for stored in outcome.acted[:SNAPSHOT_ENTRIES])
            ],
            **extra,
        },
    )


def retry_stream(
    client: redis.Redis, key: str, ids: list[str], *, request: HttpRequest | None
) -> tuple[streams.StreamOutcome, int]:
    """Retry stream DLQ entries by id back to their stream; audited like list retries."""
    outcome = streams.retry(client, key, ids)
    return outcome, _record_stream(request, "dlq.retry", key, outcome, ids=ids[:AUDITED_FINGERPRINTS])


def _archive_delete_stream(request: HttpRequest | None, deletion: str) -> streams.Action:
    return lambda client, key, entries: archive.archive_and_delete_stream(
        client, key, entries, _username(request), deletion=deletion
    )


def delete_stream(
    client: redis.Redis, key: str, ids: list[str], *, request: HttpRequest | None, deletion: str = ""
) -> tuple[streams.StreamOutcome, int]:
    """Archive, then delete stream DLQ entries by id; ids no longer there count as skipped."""
    deletion = deletion or new_nonce()
    outcome, delete = streams.StreamOutcome(key, None), _archive_delete_stream(request, deletion)
    for found, looked in streams.read_groups(client, key, ids):  # a few megabytes at a time
        streams.merge(outcome, delete(client, key, found))
        if looked > len(found):
            outcome.skipped["not found (already retried or deleted?)"] += looked - len(found)
    ids = ids[:AUDITED_FINGERPRINTS]
    return outcome, _record_stream(request, "dlq.delete", key, outcome, ids=ids, deletion=deletion)


def act_on_stream(
    client: redis.Redis,
    key: str,
    *,
    verb: str,
    request: HttpRequest | None,
    after: str = "-",
    budget_seconds: float = 3.0,
    filters: Filters | None = None,
    kept_before: int | None = None,
    deletion: str = "",
) -> tuple[streams.StreamOutcome, str, int, int]:
    """Retry or delete every entry of a stream DLQ after id ``after`` (or every one matching
    ``filters``), one time-boxed chunk.

    Returns the outcome, the position (continue after this id), how many entries stay at or
    before it (not matching, or not retryable; see ``streams.sweep`` for ``kept_before``), and
    the audit id.
    """
    _check_verb(verb)
    filters, deletion = filters or Filters(), deletion or new_nonce()
    action = streams.retry_entries if verb == "retry" else _archive_delete_stream(request, deletion)
    outcome, position, kept = streams.sweep(
        client,
        key,
        action,
        budget_seconds=budget_seconds,
        after=after,
        select=filters.select if filters.active else None,
        kept_before=kept_before,
    )
    outcome.target = keys.source_queue(key) if verb == "retry" else None
    audit_id = _record_stream(
        request,
        f"dlq.{verb}_all",
        key,
        outcome,
        after=after,
        position=position,
        filters=filters.as_query(),
        **_deletion(verb, deletion),
    )
    return outcome, position, kept, audit_id


def restore(
    client: redis.Redis, ids: list[int], *, to_source: bool, request: HttpRequest | None
) -> dict[str, int]:
    archive.reconcile(client, older_than_seconds=RECONCILE_AFTER_SECONDS)
    done = archive.restore_rows(client, ids, _username(request), to_source=to_source)
    audit.record(
        getattr(request, "user", None),
        "archive.restore",
        count=len(done.restored),
        request=request,
        detail={
            **done.result,
            "ids": ids[:AUDITED_FINGERPRINTS],
            "to_source": to_source,
            "fingerprints": done.fingerprints[:AUDITED_FINGERPRINTS],
        },
    )
    return done.result


def restore_all(
    client: redis.Redis,
    key: str,
    *,
    to_source: bool,
    request: HttpRequest | None,
    after: int = 0,
    budget_seconds: float = 3.0,
    deletion: str = "",
    filters: Filters | None = None,
) -> tuple[archive.RestoreRun, int]:
    """One time-boxed step of restoring a DLQ's whole archive (or what one delete action archived:
    its undo); one audit entry (its id returned) per step."""
    archive.reconcile(client, older_than_seconds=RECONCILE_AFTER_SECONDS)
    run = archive.restore_all(
        client,
        key,
        _username(request),
        to_source=to_source,
        after=after,
        budget_seconds=budget_seconds,
        deletion=deletion,
        select=filters.select if filters and filters.active else None,
    )
    scope: dict[str, Any] = {"deletion": deletion} if deletion else {}
    if filters and filters.active:
        scope |= {"filters": filters.as_query(), "not_matching": run.passed}
    entry = audit.record(
        getattr(request, "user", None),
        "archive.restore_all",
        key=key,
        count=run.restored,
        request=request,
        detail={
            "restored": run.restored,
            "not_restored": run.not_restored,
            "to": run.target,
            **scope,
            "rows_after": after,
            "rows_through": run.after,
            "full": run.full,
            "remaining": run.remaining,
            "fingerprints": run.fingerprints[:AUDITED_FINGERPRINTS],
        },
    )
    return run, entry.pk
