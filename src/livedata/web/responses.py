"""Turning results into HTTP responses: negotiation, caching headers, bodies."""

from __future__ import annotations

import mmap
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import anyio.to_thread
import orjson
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse

from livedata.encoders.base import Encoder
from livedata.encoders.compression import available
from livedata.encoders.registry import DEFAULT_FORMAT, ENCODERS
from livedata.errors import NotAcceptable
from livedata.service import CacheControl, QueryService, Result
from livedata.web.audit import describe
from livedata.web.hot import HotBodies, HotBody

# What changes a /query response besides its body: the format and coding asked for, the
# caller (its restrictions and allow-list), the cache directives. CORS adds Origin.
VARY = "Accept, Accept-Encoding, Authorization, Cache-Control"
STREAM_ABOVE_BYTES = 1 << 20  # unstored results smaller than this are sent with a length
SEND_WHOLE_BELOW_BYTES = 8 << 20  # stored bodies larger than this are sent in slices
SLICE_BYTES = 1 << 20
CODINGS = available()
_BY_MEDIA_TYPE = {e.media_type: e for e in ENCODERS.values()}
# RFC 9211 Cache-Status for each way a result was obtained.
_CACHE_STATUS = {
    "hit": "livedata; hit",
    "stale": "livedata; hit; detail=stale-while-revalidate",
    "stale-if-error": "livedata; hit; detail=stale-if-error",
    "miss": "livedata; fwd=miss; stored",
    "coalesced": "livedata; fwd=miss; collapsed",
    "unstored": "livedata; fwd=miss; detail=not-stored",
    "bypass": "livedata; fwd=bypass",
}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def choose_encoder(format_name: str | None, accept: str | None) -> Encoder:
    """The ``format`` field wins; otherwise the Accept header's best q-value, JSON by default."""
    if format_name is not None:
        if format_name not in ENCODERS:
            raise NotAcceptable(
                f"Unknown format {format_name!r}; use one of {', '.join(ENCODERS)}.",
                formats=list(ENCODERS),
            )
        return ENCODERS[format_name]
    if not accept:
        return ENCODERS[DEFAULT_FORMAT]
    for media_range, quality in _ranked(accept):
        encoder = _match(media_range) if quality > 0 else None
        if encoder is not None:
            return encoder
    raise NotAcceptable(
        f"None of the accepted types ({accept}) is available; offered: "
        f"{', '.join(_BY_MEDIA_TYPE)}.",
        media_types=list(_BY_MEDIA_TYPE),
    )


def choose_coding(accept_encoding: str | None) -> str | None:
    """The content coding to use: the client's best q-value, our preference among equals."""
    if not accept_encoding:
        return None
    accepted = dict(_ranked(accept_encoding))
    return max(
        (c for c in CODINGS if accepted.get(c, accepted.get("*", 0)) > 0),
        key=lambda c: accepted.get(c, accepted.get("*", 0)),
        default=None,
    )


def cache_control(headers: Headers) -> CacheControl:
    directives = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().lower().partition("=")
        directives[name] = value.strip('"')
    max_age = directives.get("max-age", "")
    return CacheControl(
        no_cache="no-cache" in directives,
        max_age=float(max_age) if re.fullmatch(r"[0-9]{1,10}", max_age) else None,
        only_if_cached="only-if-cached" in directives,
    )


def _ranked(header: str) -> list[tuple[str, float]]:
    """Header values with their q-values, best first, header order among equals."""
    ranges = []
    for part in header.split(","):
        value, *parameters = (p.strip() for p in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, number = parameter.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if value:
            ranges.append((value.lower(), quality))
    return sorted(ranges, key=lambda item: -item[1])


def _match(media_range: str) -> Encoder | None:
    if media_range in ("*/*", "application/*"):
        return ENCODERS[DEFAULT_FORMAT]
    if media_range.endswith("/*"):
        prefix = media_range[:-1]
        return next((e for t, e in _BY_MEDIA_TYPE.items() if t.startswith(prefix)), None)
    return _BY_MEDIA_TYPE.get(media_range)


async def result_response(
    service: QueryService,
    result: Result,
    encoder: Encoder,
    coding: str | None,
    request_headers: Headers,
    total_ms: float,
) -> Response:
    headers = {
        "Vary": VARY,
        "Cache-Status": _CACHE_STATUS[result.status],
    }
    if result.entry is None:
        return await _unstored_response(service, result, encoder, headers, total_ms)
    headers.update(_counts(result, total_ms))
    variant = encoder.name if coding is None else f"{encoder.name}.{coding}"
    headers["ETag"] = f'"{result.entry.version}.{variant}"'
    headers["Cache-Control"] = f"max-age={max(0, int(result.fresh_for))}"
    headers["Age"] = str(int(result.age))
    if headers["ETag"] in _etags(request_headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    stored = await anyio.to_thread.run_sync(service.body, result, encoder, coding)
    if coding is not None:
        headers["Content-Encoding"] = coding
    if len(stored) <= SEND_WHOLE_BELOW_BYTES:
        return Response(stored, media_type=encoder.media_type, headers=headers)
    # Sent slice by slice, each once the client took the last: the server never copies a
    # big body into its send buffer.
    headers["Content-Length"] = str(len(stored))
    return StreamingResponse(_slices(stored), media_type=encoder.media_type, headers=headers)


async def _unstored_response(
    service: QueryService,
    result: Result,
    encoder: Encoder,
    headers: dict[str, str],
    total_ms: float,
) -> Response:
    """Rows still arriving from the source: a small result is sent whole, with its counts in
    the headers; a bigger one as it is encoded, its counts only in the body (JSON ``meta``)."""
    headers["Cache-Control"] = "no-store"
    chunks = service.chunks(result, encoder)
    head, more = await _first_bytes(chunks, STREAM_ABOVE_BYTES)
    if not more:
        headers.update(_counts(result, total_ms))
        return Response(b"".join(head), media_type=encoder.media_type, headers=headers)
    return StreamingResponse(
        _chained(head, chunks),
        media_type=encoder.media_type,
        headers=headers,
        background=BackgroundTask(chunks.aclose),  # frees the source if the client left
    )


def _counts(result: Result, total_ms: float) -> dict[str, str]:
    return {
        "Server-Timing": f"source;dur={result.header['source_ms']}, total;dur={total_ms:.3f}",
        "X-Row-Count": str(result.rows),
        "X-Truncated": str(result.truncated).lower(),
    }


async def _first_bytes(chunks: AsyncIterator[bytes], limit: int) -> tuple[list[bytes], bool]:
    """Chunks up to ``limit`` bytes, and whether more follow."""
    head, size = [], 0
    async for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > limit:
            return head, True
    return head, False


async def _chained(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in head:
        yield chunk
    async for chunk in rest:
        yield chunk


async def _slices(body: memoryview) -> AsyncIterator[memoryview]:
    """A stored body in slices. Once a slice is sent, its pages are unmapped from this
    process (the page cache keeps them; touching them again reads them back), so sending a
    big body does not grow the server by the body's size."""
    mapping = body.obj if isinstance(body.obj, mmap.mmap) else None
    start = len(mapping) - len(body) if mapping is not None else 0  # the payload ends the file
    for offset in range(0, len(body), SLICE_BYTES):
        yield body[offset : offset + SLICE_BYTES]
        if mapping is not None:
            page = (start + offset) // mmap.PAGESIZE * mmap.PAGESIZE
            end = min(start + offset + SLICE_BYTES, len(mapping))
            mapping.madvise(mmap.MADV_DONTNEED, page, end - page)


def _etags(header: str | None) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in (header or "").split(",")}


_STATIC_HEADERS = {
    b"content-type",
    b"etag",
    b"vary",
    b"x-row-count",
    b"x-truncated",
    b"content-encoding",
}


def remember(
    hot: HotBodies, memo: bytes | None, service: QueryService, result: Result, response: Response
) -> None:
    """Let the fast path answer this raw request again while the entry stays fresh."""
    entry = result.entry
    if memo is None or entry is None or response.status_code != 200:
        return
    if isinstance(response, StreamingResponse):
        return  # too big to keep in memory
    if result.status not in ("hit", "miss", "coalesced") or result.fresh_for <= 0:
        return
    hot.put(
        memo,
        HotBody(
            body=bytes(response.body),
            entry_path=str(entry.stored.path),
            identity=entry.stored.identity,
            fresh_until=float(result.header["fresh_until"]),
            created=float(result.header["created"]),
            headers=(
                *((k, v) for k, v in response.raw_headers if k in _STATIC_HEADERS),
                (b"server-timing", f"source;dur={result.header['source_ms']}".encode()),
            ),
            on_hit=lambda: service.count_hit(result),
            audit=describe(replace(result, status="hit")),
        ),
    )
