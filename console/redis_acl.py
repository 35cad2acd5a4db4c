"""The console's least-privilege Redis ACL user, as data: one source for the command, docs and tests.

Each ``Grant`` is one ACL rule (a command, a key pattern or a channel pattern) with the reason the
console needs it. ``console_rules`` builds the list from the configuration (key families, event
channels and patterns, the console's prefix, the Channels layer prefix, the django-redis key
prefix), so a deployment that renames a channel or a prefix regenerates a matching user with
``manage.py redis_acl``. Lua scripts are ACL-checked command by command against the same key
patterns, so their commands are granted here too and every key they touch is passed in KEYS.

The read-only variant is for a Viewer-only deployment: it reads every HSI family but writes only
the console's own ``console:*`` keys (relay events and lock, caches, receipts), and publishes only
on the Channels layer's channels. Any action then fails with NOPERM, which ``console.redis.explain``
turns into a sentence.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings

from queues import keys
from realtime.events import setting as live_setting

DEFAULT_USERNAME = "hsi_console"
PASSWORD_PLACEHOLDER = ">PASSWORD"  # noqa: S105 - the word the operator replaces
USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# Commands every variant needs, with the reason; the subcommand forms (``a|b``) grant only that
# subcommand. Deliberately absent: KEYS, FLUSH*, CONFIG, DEBUG, SHUTDOWN, MONITOR, CLIENT KILL.
CONNECTION_COMMANDS: dict[str, str] = {
    "auth": "log in as this user (redis-py sends AUTH <user> <password>)",
    "hello": "protocol handshake",
    "ping": "health checks and the pool's health_check_interval",
    "select": "a REDIS_URL naming a database other than 0",
    "client|setinfo": "redis-py labels its connections (lib-name, lib-ver)",
    "info": "dashboard, overview and health: server, memory, clients, keyspace facts",
    "dbsize": "dashboard totals and the memory estimate's scale",
    "time": "Redis's clock for ages and the relay's samples",
    "slowlog|get": "the overview's slow-command list",
    "memory|usage": "the overview's memory-by-family sample and largest keys",
    "pubsub|numsub": "subscriber counts of HSI's channels",
    "pubsub|numpat": "pattern subscriber count",
}
READ_COMMANDS: dict[str, str] = {
    "scan": "bounded key census and family pages (never KEYS)",
    "type": "the type of each key found",
    "exists": "existence checks (also inside the Lua scripts)",
    "ttl": "key TTLs on every page",
    "get": "strings: jobs, orchestrator state, dedupe, cache, embeddings, receipts",
    "mget": "the jobs list reads a page of job values at once",
    "strlen": "value sizes before reading big values",
    "llen": "queue and DLQ depths",
    "lrange": "item pages of queues and DLQs",
    "lindex": "one DLQ entry by position",
    "lpos": "find a DLQ entry by its exact bytes when it moved",
    "hgetall": "whole hashes (batches, cost tracking, relay status)",
    "zcard": "sorted-set sizes (job indexes, rate-limit windows)",
    "zrevrange": "newest-first job indexes",
    "zscore": "one job's index entry",
    "zcount": "rate-limit window counts",
    "pfcount": "HyperLogLog counters",
    "xlen": "stream depths",
    "xrange": "stream entry pages",
    "xrevrange": "newest stream entries, the live page's catch-up",
    "xinfo|stream": "stream facts",
    "xinfo|groups": "consumer groups, pending and lag",
    "xinfo|consumers": "consumers of a group",
    "xpending": "a group's oldest pending entry, to tell whether trimming reached it",
    "watch": "optimistic checks before a job action",
    "unwatch": "end a WATCH without acting",
    "multi": "pipelines run as transactions",
    "exec": "pipelines run as transactions",
    "discard": "abandon a transaction",
    "evalsha": "the console's Lua scripts by hash",
    "eval": "the Lua scripts after a restart emptied Redis's script cache",
    "evalsha_ro": "the read-only script that reads item pages, large entries cut inside Redis",
    "eval_ro": "the same after a restart emptied Redis's script cache",
    "subscribe": "the relay and the Channels layer listen",
    "psubscribe": "the relay's HSI_EVENT_PATTERNS",
    "unsubscribe": "leave a channel",
    "punsubscribe": "leave a pattern",
}
# Writes the console's own keys need (relay, receipts, caches, nonces) in every variant.
OWN_WRITE_COMMANDS: dict[str, str] = {
    "set": "receipts, nonces, the relay lock, caches (also inside the Lua scripts)",
    "del": "django-redis deletes; the Lua scripts release locks and delete jobs",
    "unlink": "cache invalidation and django-redis deletes",
    "expire": "TTLs of the relay status and caches",
    "pexpire": "the relay lock's TTL",
    "hset": "the relay's status hash",
    "hincrby": "the relay's forwarded counter",
    "xadd": "the console's event stream and history (and a stream retry, HSI's keys)",
    "publish": "the Channels layer (and, for actions, HSI's job control channels)",
}
# Writes that only touch HSI's keys: DLQ retry/delete/restore, job cancel/delete/restore.
HSI_WRITE_COMMANDS: dict[str, str] = {
    "rpush": "retry and restore append to queues and DLQs",
    "ltrim": "bulk actions cut the entries they handled off the head of a DLQ",
    "lset": "tombstone an entry before removing it",
    "lrem": "remove tombstoned entries",
    "zadd": "restore job index entries",
    "zrem": "delete or cancel job index entries",
    "xdel": "delete or retry stream DLQ entries",
}


# Commands that older servers do not know (ACL SETUSER refuses unknown names), with the first
# version that has them. redis-py sends CLIENT SETINFO on connect and ignores the error of a
# server that lacks it; a 7.2+ server that denies it instead would fill ACL LOG.
SINCE: dict[str, tuple[int, int]] = {"client|setinfo": (7, 2)}


@dataclass(frozen=True)
class Grant:
    """One ACL rule and why the console needs it."""

    rule: str
    why: str


def _patterns(*family_names: str) -> list[str]:
    """The configured key patterns of the named families (``HSI_CONSOLE["KEY_FAMILIES"]``)."""
    wanted = set(family_names)
    return [p for f in keys.families() if f.name in wanted for p in f.patterns]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def console_prefixes() -> list[str]:
    """Patterns of the console's own keys: ``console:*``, the event stream, every Redis cache's prefix."""
    stream = str(live_setting("EVENTS_STREAM"))
    caches: dict[str, dict[str, Any]] = settings.CACHES
    cache_prefixes = [
        f"{entry['KEY_PREFIX']}:*"
        for entry in caches.values()
        if "redis" in str(entry.get("BACKEND", "")).lower() and entry.get("KEY_PREFIX")
    ]
    own = f"{keys.CONSOLE_PREFIX}*"
    return _unique([own, *(p for p in (stream, *cache_prefixes) if not fnmatchcase(p, own))])


def layer_channel_pattern() -> str:
    layers: dict[str, dict[str, Any]] = settings.CHANNEL_LAYERS
    prefix = str(layers.get("default", {}).get("CONFIG", {}).get("prefix", "asgi"))
    return f"{prefix}*"


def write_key_patterns() -> list[Grant]:
    """HSI keys an action writes, each family with the actions that write it."""
    groups = (
        (("queues", "dlq", "overflow_dlq"), "DLQ retry/delete/restore and edit-and-retry"),
        (("streams", "stream_dlq"), "stream DLQ retry/delete/restore"),
        (("jobs", "job_index"), "job cancel/abort/delete/restore and the job indexes"),
        (("dedupe",), "clear a dedupe entry"),
        (("cache",), "invalidate cache keys"),
        (("rate_limit",), "reset a rate-limit window"),
    )
    return [Grant(f"%RW~{p}", why) for names, why in groups for p in _patterns(*names)]


def channel_grants(*, read_only: bool) -> list[Grant]:
    grants = [Grant(f"&{c}", "the relay subscribes to HSI's events") for c in live_setting("EVENT_CHANNELS")]
    grants += [
        Grant(f"&{p}", "the relay's PSUBSCRIBE pattern (granted literally)")
        for p in live_setting("EVENT_PATTERNS")
    ]
    grants.append(Grant(f"&{layer_channel_pattern()}", "the Channels layer's own channels"))
    if not read_only:
        grants.append(
            Grant(f"&{keys.job_control_channel('*')}", "abort: PUBLISH on HSI's job control channel")
        )
    return grants


def parse_version(text: str) -> tuple[int, int]:
    """``"7.0.15"`` → ``(7, 0)``; raises ``ValueError`` on anything else."""
    major, minor = [*text.strip().split("."), "0"][:2]
    return int(major), int(minor)


def _commands(table: dict[str, str], version: tuple[int, int] | None) -> list[Grant]:
    return [
        Grant(f"+{name}", why)
        for name, why in table.items()
        if version is None or version >= SINCE.get(name, (0, 0))
    ]


def console_rules(*, read_only: bool = False, version: tuple[int, int] | None = None) -> list[Grant]:
    """Every rule after ``reset``: commands, then key patterns, then channels.

    ``version`` is the target server's (major, minor); commands it does not know yet are left
    out, since ACL SETUSER refuses unknown names. ``None`` means a current server.
    """
    grants = [Grant("-@all", "start from nothing")]
    for table in (CONNECTION_COMMANDS, READ_COMMANDS, OWN_WRITE_COMMANDS):
        grants += _commands(table, version)
    if not read_only:
        grants += _commands(HSI_WRITE_COMMANDS, version)
    grants.append(Grant("%R~*", "read every key: the census, item pages, TYPE and MEMORY USAGE of any key"))
    grants += [Grant(f"~{p}", "the console's own keys, read and write") for p in console_prefixes()]
    if not read_only:
        grants += write_key_patterns()
    grants.append(Grant("resetchannels", "no channel unless listed"))
    grants += channel_grants(read_only=read_only)
    return _dedupe(grants)


def _dedupe(grants: list[Grant]) -> list[Grant]:
    seen: set[str] = set()
    kept = []
    for grant in grants:
        if grant.rule not in seen:
            seen.add(grant.rule)
            kept.append(grant)
    return kept


def password_rule(password: str | None) -> str:
    """``#<sha256>`` of the password, or the placeholder ``>PASSWORD`` the operator replaces.

    Redis stores only the SHA-256 of a password anyway; printing the hash means the generated
    lines can sit in a terminal, a log or a config repository without giving the password away.
    """
    if not password:
        return PASSWORD_PLACEHOLDER
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def rule_words(grants: Iterable[Grant], password: str | None) -> list[str]:
    return ["reset", "on", password_rule(password), *(g.rule for g in grants)]


def setuser_line(username: str, grants: Iterable[Grant], password: str | None = None) -> str:
    """An ``ACL SETUSER`` line for redis-cli (or any client)."""
    return " ".join(["ACL", "SETUSER", username, *rule_words(grants, password)])


def aclfile_line(username: str, grants: Iterable[Grant], password: str | None = None) -> str:
    """A ``user ...`` line for an aclfile (``reset`` is implicit there)."""
    words = [w for w in rule_words(grants, password) if w != "reset"]
    return " ".join(["user", username, *words])


def setuser_args(username: str, grants: Iterable[Grant], password: str | None) -> list[str]:
    """``ACL SETUSER`` arguments for a client's ``execute_command`` (tests, scripted set-up)."""
    return ["ACL", "SETUSER", username, *rule_words(grants, password)]
