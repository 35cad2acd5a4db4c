"""Page paths several test modules visit."""

KEY_PAGES = (
    "/keys/",
    "/keys/batches/",
    "/keys/dedupe/",
    "/keys/cache/",
    "/keys/embeddings/",
    "/keys/rate-limits/",
    "/keys/idempotency/",
    "/keys/telemetry/",
    "/keys/hll/",
)
