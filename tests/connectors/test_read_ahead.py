"""Reading ahead of the consumer: order kept, failures raised in the consumer, and a stop
that leaves the source alone at once (the connection may then be closed)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from livedata.connectors.read_ahead import ReadAhead


def test_items_arrive_in_order_and_the_thread_ends() -> None:
    ahead = ReadAhead(iter(range(100)), depth=2)
    assert list(ahead) == list(range(100))
    ahead.close()
    assert not ahead._thread.is_alive()


def test_a_failure_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("the source went away")

    got = []
    with pytest.raises(ValueError, match="went away"):
        got.extend(ReadAhead(failing(), depth=2))
    assert got == [1, 2]


def test_closing_early_stops_reading_within_the_depth() -> None:
    produced = itertools.count()
    endless = (next(produced) for _ in itertools.repeat(None))
    ahead = ReadAhead(endless, depth=2)
    taken = list(itertools.islice(ahead, 3))
    ahead.close()
    assert taken == [0, 1, 2]
    assert not ahead._thread.is_alive()
    # Read ahead at most: the queue's two, one blocked on put, one read while stopping.
    assert next(produced) <= len(taken) + 4
