"""Reading a source ahead of its consumer.

While the caller encodes one batch (Python work, holding the GIL), a thread fetches the next
ones: drivers release the GIL while they wait on the network and parse, so on two cores the
fetch and the encoding overlap instead of taking turns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


@dataclass(frozen=True)
class _Failure:
    error: BaseException


class ReadAhead(Generic[T]):
    """``items`` read in a thread of its own, at most ``depth`` ahead of the consumer."""

    def __init__(self, items: Iterator[T], depth: int) -> None:
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(
            target=self._pump, args=(items,), name="livedata-read-ahead", daemon=True
        )
        self._thread.start()

    def _pump(self, items: Iterator[T]) -> None:
        end: object = _END
        try:
            for item in items:
                self._queue.put(item)
                if self._stop.is_set():
                    break
        except BaseException as exc:  # raised again in the consumer's thread
            end = _Failure(exc)
        self._queue.put(end)

    def __iter__(self) -> Iterator[T]:
        while not self._ended:
            item = self._take()
            if isinstance(item, _Failure):
                raise item.error
            if item is not _END:
                yield item  # type: ignore[misc]  # anything else is an item

    def _take(self) -> object:
        item = self._queue.get()
        self._ended = item is _END or isinstance(item, _Failure)
        return item

    def close(self) -> None:
        """Stop reading and wait for the thread, after which the items' source may be closed."""
        self._stop.set()
        while not self._ended:
            self._take()  # makes room for the thread's last item, then its end
        self._thread.join()
