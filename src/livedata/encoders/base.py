"""The encoder interface: one method turning a result into chunks of response bytes."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import pyarrow as pa

BATCH_ROWS = 16_384  # rows per chunk: small enough to keep memory flat, large enough to be fast


class RecordBatches(Protocol):
    """Rows as they arrive: a source's result being read, or ``pa.Table.to_reader()``."""

    @property
    def schema(self) -> pa.Schema: ...

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...


@dataclass(frozen=True)
class Passing:
    """Batches passing through on their way elsewhere (being stored, say), with their schema."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self.batches


Meta = Callable[[], Mapping[str, Any]]  # asked for after the last row: counts are known then
TRUNCATED = "livedata:truncated"  # in Arrow and Parquet metadata: "true" when max_rows cut it
ROWS = "livedata:rows"  # and how many rows the body holds


class Encoder(ABC):
    """Encodes a result as a stream of byte chunks while its rows arrive, so a big result
    never sits in memory whole, let alone twice (once as Arrow, once encoded)."""

    name: ClassVar[str]
    media_type: ClassVar[str]

    # Whether the body itself says, at its end, that the result was cut (JSON's meta, an
    # Arrow or Parquet footer, NDJSON's last line). A format that cannot (CSV) is never
    # streamed before its end is known, so its headers always say it (see web.responses).
    says_truncated: ClassVar[bool] = True

    @abstractmethod
    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        """Yield the response body in chunks."""


def footer(meta: Meta) -> dict[str, str]:
    """The counts as Arrow and Parquet key-value metadata, written after the last row."""
    counts = meta()
    return {ROWS: str(counts["rows"]), TRUNCATED: str(bool(counts["truncated"])).lower()}


def batches(rows: RecordBatches, max_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The rows in batches of at most ``max_rows``, whatever size the source delivers."""
    for batch in rows:
        for offset in range(0, batch.num_rows, max_rows):
            yield batch.slice(offset, max_rows)


def drain(sink: io.BytesIO) -> bytes:
    """Take what a writer has put in ``sink`` so far and empty it, keeping memory flat."""
    chunk = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return chunk
