"""Coalescing across the processes of one host: a fill holds an exclusive ``flock`` on its
key's lock file while it fetches; another process's fill blocks on that lock in a worker
thread (no polling), then finds the entry the first one wrote. Within a process, fills are
shared by ``livedata.filling``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


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
