"""Coalescing: many identical requests on a missing entry cost one source query.

Within a process, the first request starts a task and later ones await the same task; the
task is shielded, so a requester that disconnects never cancels it for the others. Across
processes on one host, the task holds an exclusive ``flock`` on the key's lock file while it
fetches; another process's task blocks on that lock in a worker thread (no polling), then
finds the entry the first one wrote.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


class Flights(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    async def join(self, key: str, start: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Await the task for ``key``, starting it if none runs; say whether one already ran."""
        task = self._running.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.ensure_future(start())
            self._running[key] = task
            task.add_done_callback(lambda _: self._running.pop(key, None))
        return await asyncio.shield(task), joined


@asynccontextmanager
async def host_lock(
    folder: Path, key: str, waiters: anyio.CapacityLimiter, on_error: Callable[[OSError], None]
) -> AsyncIterator[None]:
    """Hold the host-wide lock for ``key``.

    ``waiters`` is a thread pool of its own for threads blocked on another process's lock:
    sharing anyio's default one, 40 such waits would leave no thread to store and encode the
    results that end them. When the lock file cannot be made (a read-only or full disk), the
    work goes on without it: coalescing then holds within the process only, and the cache,
    failing to write on the same disk, serves results uncached.
    Lock files are never deleted while in use: the lock belongs to the open file, and a
    deleted name would let two holders in.
    """
    try:
        fd = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        on_error(exc)
        yield
        return
    try:
        await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX, limiter=waiters)
        yield
    finally:
        os.close(fd)  # closing releases the lock
