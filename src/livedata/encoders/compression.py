"""Content codings for response bodies, done by Arrow's bundled codecs (no extra packages)."""

from __future__ import annotations

import pyarrow as pa

# HTTP content-coding -> (Arrow codec, level); in our order of preference. The levels trade a
# little size for speed: bodies are compressed once per cache entry, but on a request's path.
CODINGS = {"zstd": ("zstd", 3), "br": ("brotli", 5), "gzip": ("gzip", 6)}


def compress(data: bytes | memoryview, coding: str) -> bytes:
    codec, level = CODINGS[coding]
    return pa.Codec(codec, compression_level=level).compress(data, asbytes=True)  # type: ignore[no-any-return]


def available() -> list[str]:
    return [coding for coding, (codec, _) in CODINGS.items() if pa.Codec.is_available(codec)]
