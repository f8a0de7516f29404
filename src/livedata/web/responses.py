"""Turning results into HTTP responses: negotiation, caching headers, bodies."""

from __future__ import annotations

import functools
import mmap
import re
import tempfile
import time
from collections.abc import AsyncIterator
from typing import IO, Any

import anyio.to_thread
import orjson
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse
from werkzeug.datastructures import Accept, MIMEAccept
from werkzeug.http import parse_accept_header

from livedata.bodies import stored_body
from livedata.cache.entries import EntryHeader
from livedata.encoders.base import Encoder
from livedata.encoders.compression import available
from livedata.encoders.registry import DEFAULT_FORMAT, ENCODERS
from livedata.errors import NotAcceptable
from livedata.freshness import CacheControl
from livedata.results import LiveResult, Result, StoredResult
from livedata.service import Memo, QueryService
from livedata.status import Status
from livedata.web.audit import Template
from livedata.web.hot import HotBodies
from livedata.web.metrics import Metrics

# What changes a /query response besides its body: the format and coding asked for, the
# caller (its restrictions and allow-list), the cache directives. CORS adds Origin.
VARY = "Accept, Accept-Encoding, Authorization, Cache-Control"
STREAM_ABOVE_BYTES = 1 << 20  # unstored results smaller than this are sent with a length
SEND_WHOLE_BELOW_BYTES = 8 << 20  # stored bodies larger than this are sent in slices
SLICE_BYTES = 1 << 20
CODINGS = tuple(available())
# Offered in this order: the first wins among equally acceptable types, so JSON for */*.
_BY_MEDIA_TYPE = {
    e.media_type: e for e in sorted(ENCODERS.values(), key=lambda e: e.name != DEFAULT_FORMAT)
}
_OFFERED = tuple(_BY_MEDIA_TYPE)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def choose_encoder(format_name: str | None, accept: str | None) -> Encoder:
    """The ``format`` field wins; otherwise the Accept header (RFC 9110: the most specific
    matching range sets a type's q, q=0 refuses it), JSON when absent or among equals."""
    if format_name is not None:
        if format_name not in ENCODERS:
            raise NotAcceptable(
                f"Unknown format {format_name!r}; use one of {', '.join(ENCODERS)}.",
                formats=list(ENCODERS),
            )
        return ENCODERS[format_name]
    if not accept:
        return ENCODERS[DEFAULT_FORMAT]
    best = best_offer(accept, _OFFERED)
    if best is None:
        raise NotAcceptable(
            f"None of the accepted types ({accept}) is available; offered: "
            f"{', '.join(_BY_MEDIA_TYPE)}.",
            media_types=list(_BY_MEDIA_TYPE),
        )
    return _BY_MEDIA_TYPE[best]


def choose_coding(accept_encoding: str | None) -> str | None:
    """The content coding to use: the client's best q-value, our preference among equals;
    None (identity) when it accepts none of ours."""
    if not accept_encoding:
        return None
    return best_offer(accept_encoding, CODINGS, Accept)


# Parsing costs tens of microseconds and clients send few distinct headers, so each is parsed
# once; the bound keeps a client that varies its header from growing the process.
@functools.lru_cache(maxsize=1024)
def best_offer(
    header: str, offered: tuple[str, ...], kind: type[Accept] = MIMEAccept
) -> str | None:
    """The offer the client prefers (``kind``: MIMEAccept for media types, Accept for content
    codings); the first offered among equals; None when it accepts none."""
    best: str | None = parse_accept_header(header, kind).best_match(offered)
    return best


def cache_control(headers: Headers) -> CacheControl:
    """The client's directives. On a conditional request, ``no-cache`` and ``max-age`` are
    not the app's: browsers add them to any request an app sets ``If-None-Match`` on
    (Chromium ``max-age=0``; the Fetch standard ``no-cache`` and ``Pragma: no-cache``), so
    such a request is answered from the cache; a refetch is asked without a validator."""
    directives = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().lower().partition("=")
        directives[name] = value.strip('"')
    if "if-none-match" in headers:
        directives.pop("no-cache", None)
        directives.pop("max-age", None)
    max_age = directives.get("max-age", "")
    return CacheControl(
        no_cache="no-cache" in directives,
        max_age=float(max_age) if re.fullmatch(r"[0-9]{1,10}", max_age) else None,
        only_if_cached="only-if-cached" in directives,
    )


async def result_response(
    service: QueryService,
    result: Result,
    encoder: Encoder,
    coding: str | None,
    request_headers: Headers,
    total_ms: float,
    metrics: Metrics,
) -> tuple[Response, StoredResult | None]:
    """The response, and the stored result it was sent from (the fast path may keep that)."""
    if isinstance(result, StoredResult):
        return await _stored_response(
            service, result, encoder, coding, request_headers, total_ms, metrics
        )
    return await _live_response(
        service, result, encoder, coding, request_headers, total_ms, metrics
    )


async def _stored_response(
    service: QueryService,
    result: StoredResult,
    encoder: Encoder,
    coding: str | None,
    request_headers: Headers,
    total_ms: float,
    metrics: Metrics,
) -> tuple[Response, StoredResult]:
    headers = {"Vary": VARY, "Cache-Status": result.status.cache_status}
    headers.update(_counts(result.header, total_ms))
    variant = encoder.name if coding is None else f"{encoder.name}.{coding}"
    # Named by the rows, not the fetch: a refetch of unchanged rows keeps its tag, so a client
    # revalidating after it gets a 304. Weak, since meta (fetched_at, timings) may differ.
    headers["ETag"] = f'W/"{result.entry.key}.{result.entry.stored.digest}.{variant}"'
    headers["Cache-Control"] = f"max-age={max(0, int(result.fresh_for))}"
    headers["Age"] = str(int(result.age))
    existed = not result.status.asked_source
    if matches(headers["ETag"], request_headers.get("if-none-match"), existed):
        return Response(status_code=304, headers=headers), result
    cache = service.cache
    assert cache is not None, "a stored result comes from the cache"
    started = time.perf_counter()
    stored = await anyio.to_thread.run_sync(stored_body, cache, result, encoder, coding)
    metrics.encoded(encoder.name, time.perf_counter() - started)
    if coding is not None:
        headers["Content-Encoding"] = coding
    if len(stored) <= SEND_WHOLE_BELOW_BYTES:
        return Response(stored, media_type=encoder.media_type, headers=headers), result
    # Sent slice by slice, each once the client took the last: the server never copies a
    # big body into its send buffer.
    headers["Content-Length"] = str(len(stored))
    body = StreamingResponse(_slices(stored), media_type=encoder.media_type, headers=headers)
    return body, result


async def _live_response(
    service: QueryService,
    result: LiveResult,
    encoder: Encoder,
    coding: str | None,
    request_headers: Headers,
    total_ms: float,
    metrics: Metrics,
) -> tuple[Response, StoredResult | None]:
    """Rows still arriving from the source: a small result is sent whole, with its counts in
    the headers (a stored miss as the entry it became); a bigger one as it is encoded, its
    counts only in the body (JSON ``meta``). A page of a snapshot the client already has is
    a 304, its cursor renewed in the headers."""
    page = result.page
    existed = not result.status.asked_source
    if page and page.etag and matches(page.etag, request_headers.get("if-none-match"), existed):
        await result.body.aclose()
        headers = {"Vary": VARY, "Cache-Status": result.status.cache_status, **_paging(result)}
        headers.update(_counts(result.header(), total_ms))
        return Response(status_code=304, headers=headers), None
    head, more = await _first_bytes(result.body, STREAM_ABOVE_BYTES)
    if more and not encoder.says_truncated:
        return await _spooled(result, encoder, head, total_ms), None
    if more:
        headers = {
            "Vary": VARY,
            "Cache-Status": _STREAMING_STATUS.get(result.status, result.status.cache_status),
            "Cache-Control": "no-store",
        }
        streaming = StreamingResponse(
            _chained(head, result.body),
            media_type=encoder.media_type,
            headers=headers,
            background=BackgroundTask(result.body.aclose),  # frees the source if the client left
        )
        streaming.headers.update(_paging(result))
        return streaming, None
    status = result.status
    if result.stored is not None:
        stored = await result.stored()
        if stored is not None:
            return await _stored_response(
                service, stored, encoder, coding, request_headers, total_ms, metrics
            )
        status = Status.UNSTORED  # the disk refused it after all
    headers = {"Vary": VARY, "Cache-Status": status.cache_status, "Cache-Control": "no-store"}
    headers.update(_counts(result.header(), total_ms))
    headers.update(_paging(result))
    return Response(b"".join(head), media_type=encoder.media_type, headers=headers), None


# A big miss goes out before its entry is committed: whether the cache stored it is not known.
_STREAMING_STATUS = {Status.MISS: "livedata; fwd=miss"}


async def _spooled(
    result: LiveResult, encoder: Encoder, head: list[bytes], total_ms: float
) -> Response:
    """A big body in a format that cannot say in itself that it was cut (CSV): written to a
    temporary file to its end, then sent with its counts (``X-Truncated``) in the headers."""
    spool = await anyio.to_thread.run_sync(tempfile.TemporaryFile)
    try:
        for chunk in head:
            await anyio.to_thread.run_sync(spool.write, chunk)
        async for chunk in result.body:
            await anyio.to_thread.run_sync(spool.write, chunk)
    except BaseException:
        spool.close()
        raise
    finally:
        await result.body.aclose()
    headers = {
        "Vary": VARY,
        "Cache-Status": _STREAMING_STATUS.get(result.status, result.status.cache_status),
        "Cache-Control": "no-store",
        "Content-Length": str(spool.tell()),
        **_counts(result.header(), total_ms),
    }
    return StreamingResponse(
        _read(spool),
        media_type=encoder.media_type,
        headers=headers,
        background=BackgroundTask(spool.close),
    )


async def _read(spool: IO[bytes]) -> AsyncIterator[bytes]:
    spool.seek(0)
    while chunk := await anyio.to_thread.run_sync(spool.read, SLICE_BYTES):
        yield chunk


def _counts(header: EntryHeader, total_ms: float) -> dict[str, str]:
    return {
        "Server-Timing": f"source;dur={header.source_ms}, total;dur={total_ms:.3f}",
        "X-Row-Count": str(header.rows),
        "X-Truncated": str(header.truncated).lower(),
    }


def _paging(result: LiveResult) -> dict[str, str]:
    """A page's cursor and total as headers, for formats with no ``meta`` (CSV, Arrow...);
    a snapshot page's validator, and that it may be kept by the client (bound to it) but
    checked first. A keyset page, read live, is not kept."""
    page = result.page
    if page is None:
        return {}
    headers = {"X-Paging": page.paging, "Cache-Control": "no-store"}
    if page.etag is not None:
        headers["ETag"] = f"W/{page.etag}"
        headers["Cache-Control"] = "private, no-cache"
    if page.total is not None:
        headers["X-Total-Count"] = str(page.total)
    return headers if page.next is None else {**headers, "X-Next-Cursor": page.next}


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


def matches(etag: str, if_none_match: str | None, existed: bool = True) -> bool:
    """Whether ``etag`` is among the tags of an If-None-Match header, compared weakly, or
    the header is ``*`` and the answer ``existed`` before the request (RFC 9110 13.1.2: a
    current representation; not one this request just fetched)."""
    tags = {tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")}
    return etag.removeprefix("W/") in tags or ("*" in tags and existed)


_STATIC_HEADERS = {
    b"content-type",
    b"etag",
    b"vary",
    b"x-row-count",
    b"x-truncated",
    b"content-encoding",
}


def remember(
    hot: HotBodies,
    memo_key: bytes | None,
    memo: Memo | None,
    response: Response,
    line: Template,
) -> None:
    """Let the fast path answer this raw request again while the entry stays fresh;
    ``line``: the audit log's line of a hit on it."""
    if memo_key is None or memo is None or response.status_code != 200:
        return
    if isinstance(response, StreamingResponse):
        return  # too big to keep in memory
    hot.put(
        memo_key,
        bytes(response.body),
        memo,
        (
            *((k, v) for k, v in response.raw_headers if k in _STATIC_HEADERS),
            (b"server-timing", f"source;dur={memo.source_ms}".encode()),
        ),
        line,
    )
