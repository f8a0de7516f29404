"""The encoder interface: one method turning a result into chunks of response bytes."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pyarrow as pa

BATCH_ROWS = 16_384  # rows per chunk: small enough to keep memory flat, large enough to be fast


class Encoder(ABC):
    """Encodes a whole result as a stream of byte chunks, so a big result never sits in memory
    twice (once as Arrow, once encoded)."""

    name: ClassVar[str]
    media_type: ClassVar[str]

    @abstractmethod
    def encode(self, table: pa.Table, meta: Mapping[str, Any]) -> Iterator[bytes]:
        """Yield the response body in chunks."""


def drain(sink: io.BytesIO) -> bytes:
    """Take what a writer has put in ``sink`` so far and empty it, keeping memory flat."""
    chunk = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return chunk
