"""Quota counts in Redis, shared by every worker process and host: each check is one Lua
script, so reading, deciding and writing are atomic without locks or retries.

If Redis fails, the limits still hold, per process: the call falls back to a memory store
and the failure is logged at most once a minute. Availability wins over exact counting.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import redis.asyncio
import redis.exceptions

from livedata.cluster_redis import connect
from livedata.quota.store import MemoryStore, QuotaStore, Spend

log = logging.getLogger("livedata.quota")
_PREFIX = "livedata:quota:"
_LOG_EVERY = 60.0  # seconds between two logged Redis failures

# Lua numbers that cross into Redis replies become integers, hence the tostring().
_TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1)
return tostring(wait)
"""
# ARGV: per key, amount, limit ('' for none), seconds to live.
_SPEND = """
for i, key in ipairs(KEYS) do
  local limit = ARGV[3 * i - 1]
  if limit ~= '' and tonumber(redis.call('GET', key) or '0') >= tonumber(limit) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBYFLOAT', key, ARGV[3 * i - 2])
  redis.call('EXPIRE', key, ARGV[3 * i])
end
return 0
"""


class RedisStore(QuotaStore):
    def __init__(self, url: str, timeout: float) -> None:
        # A Redis that does not answer (stopped, overloaded) counts as down, not as a wait.
        self._redis = connect(url, timeout)
        self._take = self._redis.register_script(_TAKE)
        self._spend = self._redis.register_script(_SPEND)
        self._fallback = MemoryStore()
        self._logged_at = -math.inf

    async def take(self, key: str, rate: float, burst: float, now: float) -> float:
        try:
            wait = await self._take(keys=[_PREFIX + key], args=[rate, burst, repr(now)])
        except redis.exceptions.RedisError as exc:
            self._failed(exc)
            return await self._fallback.take(key, rate, burst, now)
        return float(wait)

    async def spend(self, spends: Sequence[Spend], now: float) -> Spend | None:
        args: list[str | float] = []
        for spend in spends:
            ttl = max(1, math.ceil(spend.window_end - now))
            args += [repr(spend.amount), "" if spend.limit is None else repr(spend.limit), ttl]
        try:
            refused = await self._spend(keys=[_PREFIX + s.key for s in spends], args=args)
        except redis.exceptions.RedisError as exc:
            self._failed(exc)
            return await self._fallback.spend(spends, now)
        return spends[int(refused) - 1] if int(refused) else None

    async def close(self) -> None:
        await self._redis.aclose()

    def _failed(self, exc: Exception) -> None:
        if time.monotonic() - self._logged_at >= _LOG_EVERY:
            self._logged_at = time.monotonic()
            log.warning("Redis failed (%s); counting quotas in this process meanwhile", exc)
