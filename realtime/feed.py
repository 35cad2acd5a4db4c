"""Console actions on the live feed: "otto retried 120 entries of dlq:detection_queue".

``publish_action`` appends the audit entry to the console's stream (unfenced: web processes are
not relays; the entry's pk is the idempotency token, so a re-sent call writes nothing) and sends
it to the ``live.events`` group. It never raises into the caller: the action already happened,
and a Redis error is logged (once a minute at most) and swallowed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from console.redis import explain, get_redis
from realtime import stream
from realtime.events import ACTIONS_CHANNEL, EVENTS_GROUP, Event, dumps, group_message, now_iso

if TYPE_CHECKING:
    from console.models import AuditEntry

logger = logging.getLogger("realtime.feed")
SOURCE = "console"
LOG_EVERY_SECONDS = 60.0
# Bulk entry actions: "<user> <verb> <count> entries of <key>".
VERBS = {
    "dlq.retry": "retried",
    "dlq.retry_all": "retried",
    "dlq.delete": "deleted",
    "dlq.delete_all": "deleted",
    "dlq.edit_and_retry": "edited and retried",
    "archive.restore": "restored",
    "archive.restore_all": "restored",
}
# Every other audited action: "<user> <phrase>", where {key} and {count} are the entry's.
PHRASES = {
    "login": "signed in",
    "login_failed": "failed to sign in",
    "login_rate_limited": "was refused sign-in: too many failed attempts",
    "job_abort": "aborted {key}",
    "job_cancel": "cancelled {key}",
    "job_delete": "deleted {key} (archived)",
    "job_restore": "restored {key} from the archive",
    "clear_dedupe": "cleared dedupe key {key}",
    "invalidate_cache": "invalidated {count} cache key{s} of {key}",
    "reset_rate_limit": "reset rate limit {key}",
}
_last_logged = {"at": -LOG_EVERY_SECONDS}


def summary(entry: AuditEntry) -> str:
    """One line: who did what to how many entries of which key."""
    verb = VERBS.get(entry.action)
    if verb is not None:
        noun = "entry" if entry.count == 1 else "entries"
        source = f" of {entry.key}" if entry.key else ""
        if entry.action.startswith("archive."):
            source = f" of {entry.key} from the archive" if entry.key else " from the archive"
        return f"{entry.username} {verb} {entry.count} {noun}{source}"
    if entry.action.startswith("service_"):
        return f"{entry.username} asked HSI to {entry.action.removeprefix('service_')} {entry.key}"
    phrase = PHRASES.get(entry.action)
    if phrase is not None:
        plural = "" if entry.count == 1 else "s"
        return f"{entry.username} {phrase.format(key=entry.key, count=entry.count, s=plural)}"
    target = f" on {entry.key}" if entry.key else ""
    count = f" ({entry.count})" if entry.count else ""
    return f"{entry.username} {entry.action}{count}{target}"


def action_event(entry: AuditEntry) -> Event:
    data: dict[str, Any] = {
        "user": entry.username,
        "action": entry.action,
        "key": entry.key,
        "count": entry.count,
        "summary": summary(entry),
        "audit_id": entry.pk,
    }
    return Event(ACTIONS_CHANNEL, "action", dumps(data), now_iso())


def publish_action(entry: AuditEntry) -> str | None:
    """Append ``entry`` to the stream and send it to the live pages; the stream id, or None.

    When only the group_send fails, the entry is still in the stream: open pages get it with
    their next event (a gap in the ids makes the consumer read it from the stream).
    """
    event = action_event(entry)
    try:
        entry_id = stream.append(get_redis(), event, source=SOURCE, token=f"audit:{entry.pk}")
    except Exception as exc:  # noqa: BLE001 - the action is done; the feed must never undo or fail it
        _log_failure(entry, exc)
        return None
    try:
        layer = get_channel_layer()
        if layer is not None:
            text = event.browser_text(entry_id)
            async_to_sync(layer.group_send)(
                EVENTS_GROUP, group_message(event.browser_message(entry_id), text)
            )
    except Exception as exc:  # noqa: BLE001 - as above
        _log_failure(entry, exc)
    return entry_id


def _log_failure(entry: AuditEntry, exc: BaseException) -> None:
    now = time.monotonic()
    if now - _last_logged["at"] < LOG_EVERY_SECONDS:
        return
    _last_logged["at"] = now
    reason = explain(exc, settings.HSI_REDIS) if isinstance(exc, RedisError | OSError) else repr(exc)[:200]
    logger.warning("Could not put audit entry %s on the live feed: %s", entry.pk, reason)
