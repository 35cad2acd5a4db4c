"""Live events: group names, console keys, settings, stream ids, browser messages, normalisation.

The one module that names things for the relay, the feed and the WebSocket consumer; the wire
format is docs/live-protocol.md.

Stream ids. Every entry of the console's stream is appended by ``realtime/lua/append.lua`` with an
explicit id ``<ms>-<n>``: ``ms`` is Redis's clock (never going backwards) and ``n`` counts every
entry ever appended (the previous entry's ``n`` + 1). Ids therefore sort like ordinary stream ids,
and the difference of two ``n`` is exactly how many entries lie between them, even after MAXLEN
trimmed them away: that is how a consumer counts what a client lost, and how it notices a gap in
what the channel layer delivered.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.conf import settings

from queues import keys

EVENTS_GROUP = "live.events"
DEPTHS_GROUP = "live.depths"
GROUP_MESSAGE = "live.message"
REVOKE_MESSAGE = "live.revoke"
CONSOLE_CHANNEL = "console"
ACTIONS_CHANNEL = "console_actions"
WRAPPED_CHANNELS = frozenset({keys.SYSTEM_STATUS, keys.PERFORMANCE_UPDATE})
# Close codes. RFC 6455's 1008 (policy violation) and 1011 (internal error) cannot be sent through
# daphne: autobahn lets a server send only 1000 or 3000-4999 and daphne answers any other code
# with an exception and 1011. So the console uses the private range, mirroring the standard codes.
POLICY_VIOLATION = 4008  # session ended, user deactivated or lost "view live events": do not retry
INTERNAL_ERROR = 4011  # the socket failed on the server: reconnect with ?since=

LEADER_KEY = keys.console_key("relay:leader")
STATUS_KEY = keys.console_key("relay:status")
DEPTHS_KEY = keys.console_key("live:depths")
HISTORY_KEY = keys.console_key("live:history")  # capped stream of depth samples (one hour)
HISTORY_SECONDS = 3600
STATUS_TTL_SECONDS = 24 * 3600

DEFAULTS: dict[str, Any] = {
    "EVENT_CHANNELS": (keys.SECURITY_EVENTS, keys.SYSTEM_STATUS, keys.PERFORMANCE_UPDATE),
    "EVENT_PATTERNS": (),
    "EVENTS_STREAM": keys.console_key("events"),
    "EVENTS_MAXLEN": 10_000,
    "DEPTH_SAMPLE_SECONDS": 2.0,
    "LIVE_BUFFER": 500,
    "RELAY_LOCK_SECONDS": 5.0,
    "LIVE_RECHECK_SECONDS": 15.0,
    "EVENT_MAX_BYTES": 64 * 1024,
}
MALFORMED_REASONS = ("not_json", "wrong_shape", "too_large")
MAX_TYPE_LENGTH = 64


def setting(name: str) -> Any:
    """``HSI_CONSOLE[name]`` or its default; read on every call so ``override_settings`` works."""
    value = getattr(settings, "HSI_CONSOLE", {}).get(name, DEFAULTS[name])
    if name in ("EVENT_CHANNELS", "EVENT_PATTERNS") and isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value) if isinstance(value, list) else value


def user_group(user_id: int | str) -> str:
    """The group of one user's sockets (told to re-check their session at logout)."""
    return f"live.user.{user_id}"


class StreamId(NamedTuple):
    ms: int
    n: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.n}"


STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")


def parse_id(value: object) -> StreamId | None:
    """``"1732890000000-42"`` (str or bytes) as a comparable tuple; None for anything else."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    match = STREAM_ID.fullmatch(text) if isinstance(text, str) else None
    return StreamId(int(match[1]), int(match[2])) if match else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def notice(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A message of the console itself (``queue_depths``, ``caught_up``, ``lost``, ``skipped``)."""
    return {"id": None, "channel": CONSOLE_CHANNEL, "type": kind, "data": data}


@dataclass(frozen=True)
class Event:
    """One normalised message, ready to append: what the browser gets, minus the id."""

    channel: str
    type: str
    data_json: str
    time: str
    digest: str = ""

    def fields(self, source: str, token: str = "") -> list[str]:
        """Stream entry fields (docs/live-protocol.md) plus ``src`` (who wrote it), ``dg``, ``tok``."""
        return [
            "channel",
            self.channel,
            "type",
            self.type,
            "data",
            self.data_json,
            "time",
            self.time,
            "src",
            source,
            "dg",
            self.digest,
            "tok",
            token,
        ]

    def browser_text(self, entry_id: str) -> str:
        return (
            f'{{"id":{dumps(entry_id)},"channel":{dumps(self.channel)},"type":{dumps(self.type)},'
            f'"data":{self.data_json},"time":{dumps(self.time)}}}'
        )

    def browser_message(self, entry_id: str) -> dict[str, Any]:
        return {
            "id": entry_id,
            "channel": self.channel,
            "type": self.type,
            "data": json.loads(self.data_json),
            "time": self.time,
        }


def group_message(message: dict[str, Any], text: str) -> dict[str, Any]:
    """What goes over the channel layer: the browser message and its JSON text, encoded once."""
    return {"type": GROUP_MESSAGE, "message": message, "text": text}


def entry_message(entry_id: bytes | str, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """A stream entry as the browser message; None for an entry this console did not write."""

    def text(name: bytes) -> str:
        return fields.get(name, b"").decode("utf-8", "replace")

    try:
        data = json.loads(text(b"data"))
    except ValueError:
        return None
    ident = entry_id.decode("ascii") if isinstance(entry_id, bytes) else entry_id
    return {
        "id": ident,
        "channel": text(b"channel"),
        "type": text(b"type"),
        "data": data,
        "time": text(b"time"),
    }


# --- Normalisation of what HSI publishes (contract §13) ---


class Malformed(Exception):
    """A message the relay skips: ``reason`` is one of MALFORMED_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _type(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TYPE_LENGTH:
        raise Malformed("wrong_shape", f"'type' must be a string of 1-{MAX_TYPE_LENGTH} characters")
    return value


def _shape(channel: str, message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(type, data) of one decoded message, by the rules of docs/live-protocol.md."""
    if channel in WRAPPED_CHANNELS or ("_origin_instance" in message and "payload" in message):
        payload = message.get("payload", message)
        if not isinstance(payload, dict):
            raise Malformed("wrong_shape", "the wrapper's 'payload' is not an object")
        kind = payload.get("type")
        return (_type(kind) if kind is not None else channel), payload
    if "type" in message or channel == keys.SECURITY_EVENTS:
        data = message.get("data")
        if not isinstance(data, dict):
            raise Malformed("wrong_shape", 'expected an envelope {"type": ..., "data": {...}}')
        return _type(message.get("type")), data
    kind = message.get("event_type")  # sharded channels: {camera_id, event_type, payload, shard}
    return (_type(kind) if kind is not None else channel), message


def normalise(channel: str, raw: bytes, *, max_bytes: int, at: str | None = None) -> Event:
    """Validate one pub/sub message and turn it into an Event; raises Malformed."""
    if len(raw) > max_bytes:
        raise Malformed("too_large", f"{len(raw)} bytes, the limit is {max_bytes}")
    try:
        message = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise Malformed("not_json", str(exc)[:120] or type(exc).__name__) from None
    if not isinstance(message, dict):
        raise Malformed("wrong_shape", f"a JSON {type(message).__name__}, not an object")
    kind, data = _shape(channel, message)
    digest = hashlib.blake2b(channel.encode() + b"\0" + raw, digest_size=8).hexdigest()
    return Event(channel, kind, dumps(data), at or now_iso(), digest)


def sample(raw: bytes, limit: int = 160) -> str:
    """The start of a raw message as printable ASCII (escaped), safe to log and to show."""
    text = raw[:limit].decode("utf-8", "backslashreplace")
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped + ("…" if len(raw) > limit else "")


def history_maxlen(sample_seconds: float) -> int:
    """Entries of ``HISTORY_KEY`` that cover one hour at one sample per ``sample_seconds``."""
    return max(60, math.ceil(HISTORY_SECONDS / max(sample_seconds, 0.001)))


def depth_message(queues: list[dict[str, Any]], sampled_at: str) -> dict[str, Any]:
    return notice("queue_depths", {"sampled_at": sampled_at, "queues": queues})
