"""The endpoints. Each handler is a thin translation between HTTP and the query service."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from livedata import sql
from livedata.errors import (
    BodyTooLarge,
    InvalidOption,
    MalformedBody,
    PreconditionFailed,
    UnsupportedMediaType,
)
from livedata.plan import QueryRequest
from livedata.results import Result
from livedata.service import QueryService
from livedata.status import Status
from livedata.web.audit import AuditWriter, describe, record, template
from livedata.web.auth import caller_of
from livedata.web.browser import cacheable
from livedata.web.models import (
    CatalogListing,
    ErrorBody,
    Health,
    QueryBody,
    QueryResult,
    Readiness,
)
from livedata.web.responses import (
    JSONResponse,
    cache_control,
    choose_coding,
    choose_encoder,
    matches,
    remember,
    result_response,
)

router = APIRouter()


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


_ROWS: dict[str, Any] = {  # the 200 of both forms of /query
    "description": "The rows, in the format asked for (`format`, else `Accept`).",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/QueryResult"}},
        "application/x-ndjson": {
            "schema": {"type": "string", "description": "One JSON object per row."}
        },
        "text/csv": {"schema": {"type": "string", "description": "A header row."}},
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    },
}


@router.post(
    "/query",
    summary="Rows of a table or named query",
    response_model=QueryResult,
    response_class=Response,
    responses={
        200: _ROWS,
        **_errors(400, 403, 404, 406, 412, 413, 415, 422, 429, 500, 502, 503, 504),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryBody"}}},
        }
    },
)
async def query(request: Request) -> Response:
    """Answer with the rows of an exposed table (`{"table": ...}`) or of a named query
    (`{"query": ..., "params": {...}}`), shaped by `columns`, `filters`, `order_by`, `limit`
    and `offset`. The format follows `format`, else the Accept header (JSON by default).
    With `"paginate": true`, pages of one snapshot: each carries `meta.next` (and the
    `X-Next-Cursor` header), sent back as `cursor` for the next."""
    started = time.perf_counter()
    caller = caller_of(request)
    await request.app.state.rate_limiter.admit(caller.id)
    response = await _answer(request, await _read_body(request), started)
    if response.status_code == 304:
        raise PreconditionFailed(
            "The result matches If-None-Match: unchanged. A POST says so with 412 (RFC 9110); "
            "revalidate with GET /query?q=<the body> to be answered 304."
        )
    return response


@router.get(
    "/query",
    summary="Rows of a table or named query, the request in the URL (cacheable)",
    response_class=Response,
    responses={
        200: {
            **_ROWS,
            "description": "As `POST /query`, with `Cache-Control: private` when the caller "
            "authenticated, so browsers and shared caches (nginx, Varnish, a CDN) may keep it.",
        },
        304: {"description": "Not modified: the entry's ETag matches If-None-Match."},
        **_errors(400, 403, 404, 406, 413, 422, 429, 500, 502, 503, 504),
    },
    openapi_extra={
        "parameters": [
            {
                "name": "q",
                "in": "query",
                "required": True,
                "description": "The `POST /query` body as JSON; its canonical form (keys "
                "sorted, no spaces) lets caches share one copy.",
                "schema": {"type": "string"},
            }
        ]
    },
)
async def query_in_url(request: Request) -> Response:
    """`POST /query` as a GET, for HTTP caches: the same answer and validators."""
    started = time.perf_counter()
    caller = caller_of(request)
    await request.app.state.rate_limiter.admit(caller.id)
    asked = request.query_params.get("q")
    if asked is None:
        raise MalformedBody("Send the request as JSON in the query parameter 'q'.")
    limit: int = request.app.state.settings.max_body_bytes
    if len(asked) > limit:
        raise BodyTooLarge(f"The request is over the {limit}-byte limit.", limit=limit)
    response = await _answer(request, _parse_body(request, asked.encode()), started)
    control = response.headers.get("cache-control")
    if control and "no-store" not in control:
        response.headers["Cache-Control"] = cacheable(control, caller)
    return response


async def _answer(request: Request, body: QueryBody, started: float) -> Response:
    caller = caller_of(request)
    encoder = choose_encoder(body.format, request.headers.get("accept"))
    coding = choose_coding(request.headers.get("accept-encoding"))
    service: QueryService = request.app.state.service
    audit = record(request.scope)
    audit.update({k: v for k, v in (("table", body.table), ("query", body.query)) if v})
    asked, control = _to_request(body), cache_control(request.headers)
    if body.paginate or body.cursor is not None:
        result: Result = await service.page(asked, body.cursor, encoder, control, caller)
    else:
        result = await service.run(asked, encoder, control, caller)
    total_ms = (time.perf_counter() - started) * 1000
    response, served = await result_response(
        service, result, encoder, coding, request.headers, total_ms, request.app.state.metrics
    )
    answered = result if served is None else served
    audit["described"] = lambda: describe(answered)  # after the last row: streamed rows count
    memo_key = getattr(request.state, "hot_memo", None)
    if served is not None and memo_key is not None:
        hit_line = template(request.scope, describe(served, Status.HIT))
        remember(request.app.state.hot, memo_key, service.memo(served), response, hit_line)
    return response


@router.get(
    "/queries",
    summary="The catalog: tables and named queries with their parameters",
    responses={
        200: {"model": CatalogListing},
        304: {"description": "Not modified: the body's ETag matches If-None-Match."},
    },
)
async def queries(request: Request) -> Response:
    """Everything the caller may ask for, with parameter types, defaults and result columns.
    Its strong ETag is the digest of this caller's body, so a client revalidates cheaply (a
    304 still costs the schema probes, not the transfer); each caller sees its own body."""
    caller = caller_of(request)
    body = orjson.dumps(await request.app.state.describe(caller))
    headers = {
        "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
        "Vary": "Authorization",
        "Cache-Control": cacheable("no-cache", caller),
    }
    if matches(headers["ETag"], request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSONResponse.media_type, headers=headers)


@router.get("/health", summary="Liveness: the process answers", responses={200: {"model": Health}})
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/ready", summary="Readiness: this node can answer", responses={200: {"model": Readiness}}
)
async def ready(request: Request) -> Response:
    """200 while this process serves: `degraded` when a source does not answer, since hits
    and stale-if-error answers still flow, and a balancer that pulled every node because one
    shared source is down would turn a partial outage into a full one; so is an audit log
    that refuses writes. Admins see each source, the audit log, the cache directory, Redis
    and the shared tier."""
    service: QueryService = request.app.state.service
    writer: AuditWriter | None = request.app.state.audit
    sources = await service.sources.readiness()
    ok = all(s["status"] == "ok" for s in sources.values())
    ok = ok and (writer is None or writer.problem is None)
    answer: dict[str, Any] = {"status": "ok" if ok else "degraded"}
    if caller_of(request).admin:  # public for probes; which part is down is for admins
        answer["sources"] = sources
        if writer is not None:
            answer["audit_log"] = writer.problem or "ok"
        if service.tier is not None:
            answer["cache"] = service.tier.problem or "ok"
        if service.cluster.enabled:
            answer["cluster"] = service.cluster.problem or "ok"
        if service.sharing.shared is not None:
            answer["shared_tier"] = service.sharing.shared.problem or "ok"
    return JSONResponse(answer)


async def _read_body(request: Request) -> QueryBody:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"Send the body as JSON with 'Content-Type: application/json' (got {content_type!r})."
        )
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"The body is over the {limit}-byte limit.", limit=limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The body is over the {limit}-byte limit.", limit=limit)
        chunks.append(chunk)
    return _parse_body(request, b"".join(chunks))


def _parse_body(request: Request, text: bytes) -> QueryBody:
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}.") from exc
    request.app.state.bounds.check(raw)
    try:
        return QueryBody.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidOption(f"The body does not match the documented shape: {problems}.") from exc


def _to_request(body: QueryBody) -> QueryRequest:
    return QueryRequest(
        table=body.table,
        query=body.query,
        params=body.params,
        columns=body.columns,
        filters=[sql.Filter(f.column, f.op, f.value) for f in body.filters],
        order_by=[(o.column, o.desc) for o in body.order_by],
        limit=body.limit,
        offset=body.offset,
    )
