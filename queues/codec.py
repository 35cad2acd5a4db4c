"""Decode any value HSI stores, defensively: ``decode`` never raises.

HSI writes plain JSON, ``Z:`` + base64(zstd(JSON)) for payloads over 1 KiB, JSON-quoted strings
(``RedisClient.set``), double-encoded JSON (embeddings), overflow-DLQ wrappers whose ``data`` is
itself a stored string, and anything else a bug may leave behind.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from dataclasses import dataclass
from typing import Any, cast

import pybase64
import zstandard

ZSTD_PREFIX = b"Z:"
MAX_DECOMPRESSED = 64 * 1024 * 1024
REFUSED = "over the 64 MiB the console decodes"
READ_CHUNK = 1024 * 1024  # a frame that does not state its size is read this much at a time
MAX_DEPTH = 4
OVERFLOW_FIELDS = frozenset({"original_queue", "data"})


@dataclass(frozen=True)
class Decoded:
    """A decoded value. ``kind`` says how it was stored; ``raw`` keeps the exact bytes."""

    kind: str
    value: Any
    raw: bytes
    note: str = ""
    inner: Decoded | None = None
    stored_size: int | None = None  # of a value read only in part (kind "cut"): its whole size

    @property
    def size(self) -> int:
        """The size of the value as stored."""
        return len(self.raw) if self.stored_size is None else self.stored_size

    @property
    def is_structured(self) -> bool:
        return isinstance(self.value, dict | list)

    @property
    def encodings(self) -> list[str]:
        """The chain of encodings from the outside in, e.g. ``["zstd", "json"]``."""
        chain = [self.kind]
        node = self.inner
        while node is not None:
            chain.append(node.kind)
            node = node.inner
        return chain

    def display(self, limit: int = 4096) -> str:
        """Text for a page: pretty JSON, the text, or hex; truncated with its size shown."""
        if self.kind == "cut":
            text = utf8_head(self.raw)
            shown = self.raw[: limit // 2].hex(" ") if text is None else text[:limit]
            return f"{shown}\n… {self.note}"
        if self.kind == "binary":
            text = self.raw[: limit // 2].hex(" ")
        elif isinstance(self.value, str):
            text = self.value
        else:
            text = json.dumps(self.value, indent=2, ensure_ascii=False, default=str)
        if len(text) > limit:
            return f"{text[:limit]}\n… truncated ({len(text):,} characters, {self.size:,} bytes stored)"
        return text


_zstd_contexts = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    """One per thread: a context is costly to make and must not be shared between threads."""
    try:
        return cast(zstandard.ZstdDecompressor, _zstd_contexts.decompressor)
    except AttributeError:  # this thread's first
        _zstd_contexts.decompressor = decompressor = zstandard.ZstdDecompressor()
        return decompressor


def _compressor() -> zstandard.ZstdCompressor:
    if not hasattr(_zstd_contexts, "compressor"):
        _zstd_contexts.compressor = zstandard.ZstdCompressor()
    return cast(zstandard.ZstdCompressor, _zstd_contexts.compressor)


def b64decode(text: bytes | memoryview) -> bytes:
    """``base64.b64decode(text, validate=True)``, by pybase64's SIMD decoder: 0.7 us for a 900-byte
    entry, where the standard library's 2.3 were a quarter of what Python spends retrying a ``Z:``
    entry. It refuses some padding the standard library lets pass (``cu3Q=``): those go to it."""
    try:
        return pybase64.b64decode(text, validate=True)
    except binascii.Error:
        return base64.b64decode(bytes(text), validate=True)


def _zstd(raw: bytes) -> bytes:
    """The text of a ``Z:`` value, never more than ``MAX_DECOMPRESSED`` bytes of it.

    16 KiB of zstd can say "512 MiB of zeros", so the size is checked before any output is made:
    from the frame header when it states one (HSI's one-shot ``compress`` always does; the frame
    must then decode completely), else a chunk at a time, stopping once past the limit.
    """
    compressed = b64decode(memoryview(raw)[len(ZSTD_PREFIX) :])
    size = zstandard.frame_content_size(compressed)
    if size > MAX_DECOMPRESSED:
        raise ValueError(f"it would decompress to {size:,} bytes, {REFUSED}")
    if size >= 0:
        return _decompressor().decompress(compressed)
    chunks, total = [], 0
    with _decompressor().stream_reader(compressed) as reader:
        while chunk := reader.read(READ_CHUNK):
            total += len(chunk)
            if total > MAX_DECOMPRESSED:
                raise ValueError(f"it decompresses to {REFUSED}")
            chunks.append(chunk)
    return b"".join(chunks)


def _from_json_string(text: str, raw: bytes, depth: int) -> Decoded:
    """A JSON value that is itself a string: JSON-quoted text or double-encoded JSON."""
    if text.startswith("Z:") or text[:1] in "{[":
        inner = _decode(text.encode(), depth + 1)
        if inner.kind != "text":
            kind = "double-json" if inner.kind == "json" else "json-string"
            return Decoded(kind, inner.value, raw, inner=inner)
    return Decoded("json-string", text, raw)


def _from_json(value: Any, raw: bytes, depth: int) -> Decoded:
    if isinstance(value, str):
        return _from_json_string(value, raw, depth)
    if isinstance(value, dict) and value.keys() >= OVERFLOW_FIELDS and isinstance(value["data"], str):
        inner = _decode(value["data"].encode(), depth + 1)
        return Decoded("overflow", value, raw, note="overflow wrapper; data decoded below", inner=inner)
    return Decoded("json", value, raw)


def _decode(raw: bytes, depth: int) -> Decoded:
    if not raw:
        return Decoded("empty", "", raw)
    if depth > MAX_DEPTH:
        return Decoded("text", raw.decode("utf-8", "replace"), raw, note="nested too deeply")
    if raw.startswith(ZSTD_PREFIX):
        try:
            inner = _decode(_zstd(raw), depth + 1)
        except (binascii.Error, zstandard.ZstdError, ValueError) as exc:
            return Decoded("binary", None, raw, note=f"looks like Z: zstd but cannot decode: {exc}")
        return Decoded(
            "zstd", inner.value, raw, note=f"zstd, {len(inner.raw):,} bytes decompressed", inner=inner
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Decoded("binary", None, raw, note="not UTF-8 text")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return Decoded("text", text, raw)
    return _from_json(value, raw, depth)


def decode(raw: bytes | str | None) -> Decoded:
    """Decode one stored value. Never raises, whatever the bytes."""
    if raw is None:
        return Decoded("missing", None, b"", note="key or item does not exist")
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    try:
        return _decode(data, 0)
    except Exception as exc:  # noqa: BLE001 - the codec's promise is to never raise
        return Decoded("binary", None, data, note=f"undecodable: {type(exc).__name__}")


def decode_head(head: bytes, size: int) -> Decoded:
    """What a page can tell of a value from its first bytes, the whole (``size`` bytes) too large to
    read for it: the members of a JSON object that end before the cut. Never raises."""
    note = f"only the first {len(head):,} of {size:,} bytes were read"
    fields = None
    if head.startswith(ZSTD_PREFIX):
        note += " (Z: zstd, which cannot be decompressed from a part)"
    elif (text := utf8_head(head)) is not None:
        fields = leading_fields(text) or None
        if fields:
            note += f"; the fields before the cut are shown ({len(fields)} of them)"
    return Decoded("cut", fields, head, note=note, stored_size=size)


def utf8_head(head: bytes) -> str | None:
    """The text of the first bytes of a UTF-8 value (a character the cut split is left out)."""
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(head) - 3:
            return head[: exc.start].decode("utf-8")
        return None


_SPACE = re.compile(r"[ \t\n\r]*")
_JSON = json.JSONDecoder()


def leading_fields(text: str) -> dict[str, Any] | None:
    """The members of the JSON object ``text`` starts with, up to the first one it does not hold
    whole (a member is whole once a ``,`` or ``}`` follows it: a number may go on past a cut).
    ``None`` when ``text`` does not start an object."""
    at = _skip(text, 0)
    if not text.startswith("{", at):
        return None
    fields: dict[str, Any] = {}
    at += 1
    try:
        while text.startswith('"', at := _skip(text, at)):
            name, at = _JSON.raw_decode(text, at)
            at = _skip(text, at)
            if not text.startswith(":", at):
                break
            value, at = _JSON.raw_decode(text, _skip(text, at + 1))
            at = _skip(text, at)
            if at >= len(text) or text[at] not in ",}":
                break
            fields[name] = value
            if text[at] == "}":
                break
            at += 1
    except (ValueError, RecursionError):
        pass  # the cut, or text that is not JSON from here on
    return fields


def _skip(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    return match.end() if match else at


def inflate(raw: bytes) -> bytes | None:
    """The JSON text inside a ``Z:`` value (``None`` if it is not one, or is broken)."""
    if not raw.startswith(ZSTD_PREFIX):
        return None
    try:
        return _zstd(raw)
    except (binascii.Error, zstandard.ZstdError, ValueError):
        return None


def encode_payload(value: Any, *, threshold: int = 1024) -> bytes:
    """Store ``value`` the way HSI's ``add_to_queue_safe`` does (JSON, zstd when large)."""
    return encode_text(json.dumps(value).encode(), threshold=threshold)


def encode_text(text: bytes, *, threshold: int = 1024) -> bytes:
    """Store JSON text as ``add_to_queue_safe`` does: as it is, or ``Z:`` zstd when large."""
    if len(text) <= threshold:
        return text
    compressed = ZSTD_PREFIX + base64.b64encode(_compressor().compress(text))
    return compressed if len(compressed) < len(text) else text
