"""Test data shaped like HSI's: shared by the tests and the benchmarks."""

from __future__ import annotations

from typing import Any

from queues.codec import encode_payload


def failure(n: int, *, big: bool = False, trace: bool = False) -> bytes:
    """A JobFailure entry for ``dlq:detection_queue`` whose ``original_job.n`` identifies it.

    Odd ``n`` fail with "Detector unavailable", even ones with "Invalid image". ``trace`` adds a
    stack trace, as HSI's entries usually have, so the entry is stored ``Z:``-compressed while its
    job stays small; ``big`` also makes the job over 1 KiB, so it is compressed again on retry.
    """
    entry: dict[str, Any] = {
        "original_job": {"camera_id": f"cam{n % 5}", "file_path": f"/export/cam/{n}.jpg", "n": n},
        "error": "Detector unavailable: ConnectError" if n % 2 else "Invalid image: truncated JPEG",
        "error_type": "DetectorUnavailableError" if n % 2 else "ValueError",
        "attempt_count": 3,
        "first_failed_at": "2026-02-11T22:04:11+00:00",
        "last_failed_at": f"2026-02-11T22:{n % 60:02d}:14+00:00",
        "queue_name": "detection_queue",
    }
    if big or trace:
        entry["stack_trace"] = "".join(f"  File mod_{i}.py, line {i * n}\n" for i in range(80))
    if big:
        entry["original_job"]["labels"] = [f"label-{i}-{n}" for i in range(120)]
    return encode_payload(entry)
