"""The Redis side of the cluster (``livedata.cluster``): key names, the steps that must run
atomically in Redis as Lua scripts, and the client."""

from __future__ import annotations

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

EVENTS = "livedata:events"
GENERATIONS = "livedata:generations"
FENCES = "livedata:fences"
# Renew a held lease (if the token is still ours) / release it / replace a pointer only with a
# larger fence, then tell the waiters.
RENEW = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
)
# Advance counter ARGV[1] of hash KEYS[1] to Redis's clock in ms, or by one; publish it on
# KEYS[2] as "ARGV[2] name value" unless ARGV[2] is empty. Numbers leave Lua through %d: its
# own conversion would round them to 14 digits.
ADVANCE = """
local now = redis.call('TIME')
local value = string.format('%d', math.max(
  tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') + 1,
  now[1] * 1000 + math.floor(now[2] / 1000)))
redis.call('HSET', KEYS[1], ARGV[1], value)
if ARGV[2] ~= '' then redis.call('PUBLISH', KEYS[2], ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. value) end
return value
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', KEYS[2], 'done ' .. ARGV[2])
return 1
"""
POINT = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['fence'] >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('PUBLISH', KEYS[2], 'done ' .. ARGV[4])
return 1
"""
FORGET = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['fence'] == tonumber(ARGV[1]) then
  return redis.call('DEL', KEYS[1]) end
return 0
"""


def connect(url: str, timeout: float) -> redis.asyncio.Redis:
    """A client for which a Redis that does not answer within ``timeout`` is down, not a
    wait; a pooled connection that a restarted Redis closed is replaced once, at once
    (without the retry, the first command after a restart failed, and an invalidation
    reached only its own node)."""
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.exceptions.ConnectionError],
    )
