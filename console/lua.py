"""The console's Lua scripts, run by hash: EVALSHA, and EVAL only when Redis answers NOSCRIPT.

Every script in the project goes through here, so each is read and hashed once per process
rather than on every call (retry-all makes hundreds of calls a second).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import NoScriptError


@dataclass(frozen=True)
class Lua:
    """One script. EVAL runs only after NOSCRIPT, which EVALSHA answers without running anything,
    so a call never runs twice."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest())

    def call(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(self.text, len(keys), *keys, *args)

    def call_ro(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """As ``call``, for a script that only reads: EVALSHA_RO, which a user allowed only to read
        the keys may run (EVALSHA's keys count as written)."""
        try:
            return client.evalsha_ro(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval_ro(self.text, len(keys), *keys, *args)

    async def acall(self, client: redis.asyncio.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.text, len(keys), *keys, *args)


@cache
def load(*paths: Path) -> Lua:
    """One script from one file, or several joined in order (shared helpers first)."""
    return Lua("\n".join(path.read_text() for path in paths))
