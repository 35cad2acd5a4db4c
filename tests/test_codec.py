"""The value codec over every encoding of the HSI contract, and over arbitrary bytes."""

from __future__ import annotations

import base64
import binascii
import io
import json
import tracemalloc
from collections.abc import Callable

import zstandard
from hypothesis import given
from hypothesis import strategies as st

from queues.codec import b64decode, decode, encode_payload

JOB = {
    "original_job": {"camera_id": "porch", "file_path": "/export/foscam/porch/snap_0042.jpg"},
    "error": "Detector unavailable: ConnectError",
    "attempt_count": 3,
    "first_failed_at": "2026-02-11T22:04:11.020114+00:00",
    "last_failed_at": "2026-02-11T22:04:14.310905+00:00",
    "queue_name": "detection_queue",
    "stack_trace": "Traceback (most recent call last):\n" + "  File x, line 1\n" * 200,
}


def test_plain_json() -> None:
    decoded = decode(b'{"camera_id": "porch"}')
    assert decoded.kind == "json"
    assert decoded.value == {"camera_id": "porch"}
    assert decoded.size == 22


def test_zstd_blob_as_hsi_writes_it() -> None:
    stored = encode_payload(JOB)
    assert stored.startswith(b"Z:")
    decoded = decode(stored)
    assert decoded.kind == "zstd"
    assert decoded.value == JOB
    assert decoded.encodings == ["zstd", "json"]
    assert decoded.raw == stored


def test_small_payload_stays_plain_json() -> None:
    assert decode(encode_payload({"a": 1})).kind == "json"


def test_json_quoted_string() -> None:
    decoded = decode(b'"batch-3f9a12c4"')
    assert decoded.kind == "json-string"
    assert decoded.value == "batch-3f9a12c4"


def test_double_encoded_json() -> None:
    inner = {"persons": [{"entity_type": "person"}], "vehicles": []}
    decoded = decode(json.dumps(json.dumps(inner)).encode())
    assert decoded.kind == "double-json"
    assert decoded.value == inner


def test_overflow_wrapper_decodes_its_compressed_data() -> None:
    original = encode_payload(JOB)
    wrapper = {"original_queue": "analysis_queue", "data": original.decode(), "reason": "queue_overflow"}
    decoded = decode(json.dumps(wrapper).encode())
    assert decoded.kind == "overflow"
    assert decoded.inner is not None and decoded.inner.kind == "zstd"
    assert decoded.inner.value == JOB


def test_plain_text_and_binary() -> None:
    assert decode(b"1770880563.21").value == 1770880563.21
    text = decode(b"not json {")
    assert (text.kind, text.value) == ("text", "not json {")
    binary = decode(b"\xff\xfe\x00\x01")
    assert binary.kind == "binary"
    assert binary.display() == "ff fe 00 01"


def test_broken_zstd_is_reported_not_raised() -> None:
    decoded = decode(b"Z:" + base64.b64encode(b"definitely not zstd"))
    assert decoded.kind == "binary"
    assert "cannot decode" in decoded.note
    assert decode(b"Z:!!!not base64").kind == "binary"


def streamed(text: bytes) -> bytes:
    """``Z:`` zstd written by a streaming compressor: the frame does not state its size."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as writer:
        writer.write(text)
    assert zstandard.frame_content_size(out.getvalue()) == -1
    return b"Z:" + base64.b64encode(out.getvalue())


def peak_bytes(work: Callable[[], object]) -> int:
    """The most memory Python held at once while ``work`` ran (output buffers are Python bytes)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_zstd_bomb_stating_its_size_is_refused_before_any_output() -> None:
    bomb = b"Z:" + base64.b64encode(zstandard.ZstdCompressor().compress(bytes(300 * 1024 * 1024)))
    assert len(bomb) < 64 * 1024  # a small entry that says "300 MiB of zeros"
    decoded = decode(bomb)
    assert decoded.kind == "binary"
    assert "it would decompress to 314,572,800 bytes, over the 64 MiB the console decodes" in decoded.note
    assert peak_bytes(lambda: decode(bomb)) < 1024 * 1024


def test_a_zstd_bomb_without_a_size_is_read_no_further_than_the_limit() -> None:
    bomb = streamed(bytes(200 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    decoded = decode(bomb)
    assert decoded.kind == "binary"
    assert "it decompresses to over the 64 MiB the console decodes" in decoded.note
    assert peak_bytes(lambda: decode(bomb)) < 80 * 1024 * 1024  # the limit and a chunk, not 200 MiB


def test_zstd_without_a_stated_size_still_decodes() -> None:
    decoded = decode(streamed(json.dumps(JOB).encode()))
    assert decoded.kind == "zstd" and decoded.value == JOB


def test_truncated_zstd_is_reported_not_shown_in_part() -> None:
    stored = encode_payload(JOB)
    frame = base64.b64decode(stored[2:])
    decoded = decode(b"Z:" + base64.b64encode(frame[:-8]))
    assert decoded.kind == "binary" and "cannot decode" in decoded.note


def test_zstd_of_non_json_is_text() -> None:
    stored = b"Z:" + base64.b64encode(zstandard.ZstdCompressor().compress(b"hello"))
    decoded = decode(stored)
    assert decoded.kind == "zstd" and decoded.value == "hello"


def test_missing_and_empty() -> None:
    assert decode(None).kind == "missing"
    assert decode(b"").kind == "empty"


def test_display_truncates_and_tells_the_size() -> None:
    decoded = decode(json.dumps({"x": "y" * 10000}).encode())
    text = decoded.display(limit=100)
    assert text.startswith("{\n")
    assert "truncated" in text and f"{decoded.size:,} bytes" in text


@given(st.binary(max_size=512))
def test_never_raises_on_any_bytes(raw: bytes) -> None:
    decoded = decode(raw)
    assert decoded.raw == raw
    assert isinstance(decoded.display(), str)


@given(st.binary(max_size=256))
def test_never_raises_on_any_zstd_looking_bytes(raw: bytes) -> None:
    decoded = decode(b"Z:" + base64.b64encode(raw))
    assert decoded.kind in {"binary", "zstd"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.lists(JSON_VALUES) | st.dictionaries(st.text(), JSON_VALUES))
def test_round_trips_any_json_document_through_hsi_encoding(value: object) -> None:
    """Top-level strings are left out: a JSON-quoted string holding JSON is decoded twice, by design."""
    assert decode(encode_payload(value, threshold=16)).value == value


BASE64ISH = (
    st.binary(max_size=24)
    | st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n", max_size=24).map(
        str.encode
    )
    | st.tuples(st.binary(max_size=24), st.sampled_from([b"", b"=", b"==", b"==="])).map(
        lambda parts: base64.b64encode(parts[0]).rstrip(b"=") + parts[1]  # padding short, right or extra
    )
)


def _standard(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


@given(BASE64ISH)
def test_base64_is_read_as_the_standard_library_reads_it(text: bytes) -> None:
    """The fast decoder must not change which ``Z:`` values decode (it refuses extra padding that
    the standard library accepts: those take the standard path) nor what they decode to."""
    try:
        found: bytes | None = b64decode(text)
    except binascii.Error:
        found = None
    assert found == _standard(text)


def test_padding_only_the_standard_library_accepts_still_decodes() -> None:
    assert _standard(b"cu3Q=") is not None  # what the fallback exists for
    assert b64decode(b"cu3Q=") == _standard(b"cu3Q=")
    assert b64decode(memoryview(b"Z:cu3Q=")[2:]) == _standard(b"cu3Q=")
