"""Coordination between the nodes (and worker processes) of a cluster, through Redis.

- **Generations.** One counter per invalidation tag (``source:``, ``query:``, ``table:``,
  ``reads:``) in the hash ``livedata:generations``; invalidating a tag advances it and
  publishes the new value. Counters advance to Redis's clock in milliseconds (or by one, if
  that is not more), so they keep growing when Redis restarts empty: the nodes remember the
  old values, and a counter that started again from 1 would be taken for an old one.
  Every process holds the counters in memory (loaded when it
  subscribes, updated by the messages), and an entry is good only while the counters of its
  tags are those it was fetched under. So an invalidation on any node makes every node's
  copies stale at once, with no Redis round trip per hit; and a fetch that started before an
  invalidation stores an entry that is stale from the start.
- **Leases.** One node fetches a key for the cluster: it holds ``livedata:lease:<key>``
  (``SET NX PX`` with a token, renewed while the fetch runs, released after it) and a fence
  (advanced like a generation, in the hash ``livedata:fences``) that names its object in the
  shared tier. The others wait
  for its message (``done <key>``, pub/sub: no polling) or for the lease to lapse (the holder
  died), then read the committed entry, or take the lease over.
- **Pointers.** ``livedata:latest:<key>`` names the newest committed object and its
  lifetimes; only a larger fence may replace it, so a holder that lost its lease cannot
  overwrite a newer entry.
- **Throttles.** A client-forced revalidation of a key claims ``livedata:revalidated:<key>``
  for the interval, so the throttle holds across nodes and workers.

Redis down or slow (no answer within the timeout): the process coordinates for itself (its
own coalescing, throttle and limits), says so once in the log, in ``/ready`` and
``/metrics``, and tries again every few seconds. While it is not subscribed it cannot hear of
invalidations, so its copies from before the loss count as stale (fetched once more); what it
fetches meanwhile is as fresh as it can tell, within its TTL (the documented bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import anyio
import orjson
import redis.asyncio
import redis.exceptions

from livedata.cluster_redis import (
    ADVANCE,
    EVENTS,
    FENCES,
    FORGET,
    GENERATIONS,
    POINT,
    RELEASE,
    RENEW,
    connect,
)

log = logging.getLogger("livedata.cluster")
EVERYTHING = "*"  # the counter that invalidating every entry increments
RETRY_SECONDS = 2.0  # between two attempts to reach Redis again


@dataclass(frozen=True)
class Pointer:
    """The newest committed object of a key in the shared tier."""

    name: str
    fence: int
    created: float
    fresh_until: float
    stale_until: float
    generations: Mapping[str, int]


@dataclass
class Lease:
    """The right to fetch ``key`` for the cluster; ``fence`` 0: Redis is down, this process
    fetches for itself only (no object, no pointer)."""

    key: str
    token: str
    fence: int
    renewal: asyncio.Task[None] | None = None


class Cluster:
    """``url`` None: a single process, coordinating with nobody (every answer local)."""

    def __init__(
        self,
        url: str | None,
        timeout: float,
        lease_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.timeout = timeout
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.generations: dict[str, int] = {}
        self.problem: str | None = None  # why Redis is not being used right now
        self.listeners: list[Callable[[], None]] = []  # told when copies may have gone stale
        self._url = url
        self._redis = None if url is None else connect(url, timeout)
        self._subscribed = url is None  # a single process hears every invalidation
        self._lost_at = -float("inf")
        self._waiting: dict[str, list[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()  # the first subscription attempt has ended

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    async def start(self) -> None:
        """Subscribe, waiting for the first attempt (within the timeout) so that the first
        requests already coordinate; then keep the subscription in the background, retrying
        while Redis does not answer."""
        if self._url is not None and self._listener is None:
            self._lost(None)
            self._listener = asyncio.ensure_future(self._listen(self._url))
            with anyio.move_on_after(self.timeout):
                await self._attempted.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    # -- generations -----------------------------------------------------------------------

    def current_generations(self, tags: Iterable[str]) -> dict[str, int]:
        """The counters an entry of ``tags`` is fetched under (the global one included)."""
        return {tag: self.generations.get(tag, 0) for tag in (*tags, EVERYTHING)}

    def is_current(
        self, tags: Iterable[str], generations: Mapping[str, int], created: float
    ) -> bool:
        """Whether an entry of ``tags`` fetched at ``created`` under ``generations`` is still
        good: no tag invalidated since, and (unsubscribed) not from before the loss."""
        if not self._subscribed and created < self._lost_at:
            return False
        return all(self.generations.get(t, 0) == generations.get(t, 0) for t in (*tags, EVERYTHING))

    async def invalidate(self, tag: str) -> None:
        """Make every copy tagged ``tag`` (``EVERYTHING``: every copy) stale, on every node."""
        if self._redis is not None:
            try:
                async with self._bounded():
                    value = int(await self._redis.eval(ADVANCE, 2, GENERATIONS, EVENTS, tag, "gen"))
                self._set_generation(tag, value)
                return
            except (redis.exceptions.RedisError, TimeoutError) as exc:
                self._failed(exc)
        self._set_generation(tag, self.generations.get(tag, 0) + 1)

    # -- leases and pointers ---------------------------------------------------------------

    async def acquire(self, key: str) -> Lease | None:
        """The lease of ``key``, or None while another process holds it."""
        token = secrets.token_hex(8)
        if self._redis is None or not self._subscribed:
            return Lease(key, token, 0)
        try:
            async with self._bounded():
                taken = await self._redis.set(
                    f"livedata:lease:{key}", token, nx=True, px=self._ttl_ms
                )
                if not taken:
                    return None
                fence = int(await self._redis.eval(ADVANCE, 2, FENCES, EVENTS, key, ""))
        except (redis.exceptions.RedisError, TimeoutError) as exc:
            self._failed(exc)
            return Lease(key, token, 0)
        lease = Lease(key, token, fence)
        lease.renewal = asyncio.ensure_future(self._renew(lease))
        return lease

    async def release(self, lease: Lease) -> None:
        if lease.renewal is not None:
            lease.renewal.cancel()
        if self._redis is None or lease.fence == 0:
            return
        with contextlib.suppress(redis.exceptions.RedisError, TimeoutError):
            async with self._bounded():  # and wake the waiters, whatever became of the fetch
                await self._redis.eval(
                    RELEASE, 2, f"livedata:lease:{lease.key}", EVENTS, lease.token, lease.key
                )

    @contextlib.asynccontextmanager
    async def watching(self, key: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        """While open, ``wait()`` returns once a committed entry of ``key`` is announced (or
        after a lease's lifetime, when its holder may have died). Open it before looking, so
        an announcement between the look and the wait is not missed."""
        event = asyncio.Event()
        self._waiting.setdefault(key, []).append(event)

        async def wait() -> None:
            with anyio.move_on_after(self.lease_seconds):
                await event.wait()
            event.clear()

        try:
            yield wait
        finally:
            self._waiting[key].remove(event)
            if not self._waiting[key]:
                del self._waiting[key]

    async def latest(self, key: str) -> Pointer | None:
        raw = await self._get(f"livedata:latest:{key}")
        return None if raw is None else Pointer(**raw)

    async def point(self, lease: Lease, pointer: Pointer) -> bool:
        """Name ``pointer`` the newest entry of the key, unless a larger fence did already;
        the waiters of every node are told."""
        if self._redis is None or lease.fence == 0:
            return False
        ttl = max(1, int((pointer.stale_until - self.clock()) * 1000))
        try:
            async with self._bounded():
                done = await self._redis.eval(
                    POINT,
                    2,
                    f"livedata:latest:{lease.key}",
                    EVENTS,
                    orjson.dumps(asdict(pointer)),
                    pointer.fence,
                    ttl,
                    lease.key,
                )
        except (redis.exceptions.RedisError, TimeoutError) as exc:
            self._failed(exc)
            return False
        return bool(done)

    async def forget(self, key: str, fence: int) -> None:
        """Drop the pointer of ``key`` if it still names ``fence`` (its object is damaged)."""
        if self._redis is None:
            return
        with contextlib.suppress(redis.exceptions.RedisError, TimeoutError):
            async with self._bounded():
                await self._redis.eval(FORGET, 1, f"livedata:latest:{key}", fence)

    async def remember_error(self, key: str, error: Mapping[str, object], ttl: float) -> None:
        """A failed fetch of ``key``: waiters on every node get it instead of asking again."""
        if self._redis is None:
            return
        with contextlib.suppress(redis.exceptions.RedisError, TimeoutError):
            async with self._bounded():
                await self._redis.set(
                    f"livedata:error:{key}", orjson.dumps(error), px=max(1, int(ttl * 1000))
                )

    async def remembered_error(self, key: str) -> dict[str, Any] | None:
        return await self._get(f"livedata:error:{key}")

    async def claim_revalidation(self, key: str, interval: float) -> bool:
        """Whether this request may revalidate ``key`` now (at most once per ``interval``
        across the cluster)."""
        if self._redis is None or interval <= 0:
            return True
        try:
            async with self._bounded():
                return bool(
                    await self._redis.set(
                        f"livedata:revalidated:{key}", 1, nx=True, px=int(interval * 1000)
                    )
                )
        except (redis.exceptions.RedisError, TimeoutError) as exc:
            self._failed(exc)
            return True

    # -- internals -------------------------------------------------------------------------

    @property
    def _ttl_ms(self) -> int:
        return int(self.lease_seconds * 1000)

    async def _get(self, name: str) -> dict[str, Any] | None:
        """A JSON value, or None when there is none (or no subscription to trust it by)."""
        if self._redis is None or not self._subscribed:
            return None
        try:
            async with self._bounded():
                raw = await self._redis.get(name)
        except (redis.exceptions.RedisError, TimeoutError) as exc:
            self._failed(exc)
            return None
        return None if raw is None else dict(orjson.loads(raw))

    @contextlib.asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        """A Redis call that answers within the timeout, or TimeoutError."""
        with anyio.fail_after(self.timeout):
            yield

    async def _renew(self, lease: Lease) -> None:
        assert self._redis is not None
        while True:
            await anyio.sleep(self.lease_seconds / 3)  # a lease's own rhythm, not a sync
            with contextlib.suppress(redis.exceptions.RedisError, TimeoutError):
                async with self._bounded():
                    await self._redis.eval(
                        RENEW, 1, f"livedata:lease:{lease.key}", lease.token, self._ttl_ms
                    )

    async def _listen(self, url: str) -> None:
        """Hold the subscription; on every (re)connection, reload the counters first."""
        while True:
            listener = redis.asyncio.Redis.from_url(
                url, socket_connect_timeout=self.timeout, health_check_interval=RETRY_SECONDS
            )
            try:
                async with listener.pubsub() as pubsub:
                    await pubsub.subscribe(EVENTS)
                    loaded = await listener.hgetall(GENERATIONS)
                    self._resynced({_text(k): int(v) for k, v in loaded.items()})
                    self._attempted.set()
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=RETRY_SECONDS
                        )
                        if message is not None:
                            self._heard(_text(message["data"]))
            except (redis.exceptions.RedisError, OSError) as exc:
                self._lost(exc)
                self._attempted.set()
            finally:
                with contextlib.suppress(Exception):
                    await listener.aclose()
            await anyio.sleep(RETRY_SECONDS)  # Redis is down: try again later

    def _heard(self, message: str) -> None:
        kind, _, rest = message.partition(" ")
        if kind == "gen":
            tag, _, value = rest.rpartition(" ")
            self._set_generation(tag, int(value))
        elif kind == "done":
            for event in self._waiting.get(rest, []):
                event.set()

    def _set_generation(self, tag: str, value: int) -> None:
        if value > self.generations.get(tag, 0):
            self.generations[tag] = value
            self._notify()

    def _resynced(self, generations: dict[str, int]) -> None:
        self.generations.update(generations)
        if not self._subscribed:
            log.info("subscribed to Redis: invalidations are shared with the cluster")
        self._subscribed = True
        self.problem = None
        self._notify()

    def _lost(self, exc: Exception | None) -> None:
        if self._subscribed or exc is None:
            self._lost_at = self.clock()
        if self._subscribed and exc is not None:
            log.warning("lost Redis (%s); this process coordinates for itself meanwhile", exc)
        self._subscribed = False
        self.problem = "not subscribed to Redis" if exc is None else f"Redis failed: {exc}"
        for events in self._waiting.values():
            for event in events:
                event.set()  # waiters stop waiting for a message that may never come
        self._notify()

    def _failed(self, exc: BaseException) -> None:
        if self.problem is None:
            log.warning("Redis failed (%s); this process coordinates for itself meanwhile", exc)
        self.problem = f"Redis failed: {type(exc).__name__}"

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
