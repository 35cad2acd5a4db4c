"""Typed, read-mostly views of HSI's other key families (contract §7 to §12), at bounded cost.

Each reader finds its keys with a bounded ``SCAN … MATCH`` (patterns from ``queues.keys``; no
whole-keyspace listing), then reads them in one or two pipelined round trips. Every value goes through
``queues.codec.decode``; a value that is not what the contract describes becomes a row with a
``problem`` sentence, never an exception. The few mutations (clear a dedupe entry, invalidate cache
keys, reset a rate-limit window) live beside their readers and each writes an audit entry.
"""

from queues.keyspace.batches import Batch, open_batches
from queues.keyspace.cache import (
    CacheEntry,
    cache_entries,
    cache_prefix_keys,
    cache_problem,
    invalidate_cache_key,
    invalidate_cache_prefix,
    is_cache_key,
)
from queues.keyspace.counters import Counter, Idempotency, Latency, hyperloglogs, idempotency_keys, latencies
from queues.keyspace.dedupe import SHA256, Dedupe, clear_dedupe, dedupe_entries
from queues.keyspace.embeddings import EMBEDDING_PREVIEW, EmbeddingDay, Entity, embedding_days
from queues.keyspace.rate_limits import (
    RATE_TIERS,
    RateWindow,
    is_rate_limit_key,
    rate_windows,
    reset_rate_limit,
)
from queues.keyspace.scan import Found, scan

__all__ = [
    "EMBEDDING_PREVIEW",
    "RATE_TIERS",
    "SHA256",
    "Batch",
    "CacheEntry",
    "Counter",
    "Dedupe",
    "EmbeddingDay",
    "Entity",
    "Found",
    "Idempotency",
    "Latency",
    "RateWindow",
    "cache_entries",
    "cache_prefix_keys",
    "cache_problem",
    "clear_dedupe",
    "dedupe_entries",
    "embedding_days",
    "hyperloglogs",
    "idempotency_keys",
    "invalidate_cache_key",
    "invalidate_cache_prefix",
    "is_cache_key",
    "is_rate_limit_key",
    "latencies",
    "open_batches",
    "rate_windows",
    "reset_rate_limit",
    "scan",
]
