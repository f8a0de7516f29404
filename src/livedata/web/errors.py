"""The one table from error class to HTTP status, and the one JSON error shape.

Every error response is ``{"error": {"code", "message", "request_id", "details"}}``. A
client's mistake gets a 4xx with a message that says what to do next; anything unexpected
gets an opaque 500 carrying only the request id, while the traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from livedata import errors
from livedata.web.audit import record
from livedata.web.responses import JSONResponse

log = logging.getLogger("livedata.web")

STATUS: dict[type[errors.LivedataError], int] = {
    errors.MalformedBody: 400,
    errors.MalformedHeader: 400,
    errors.UnsupportedMediaType: 415,
    errors.BodyTooLarge: 413,
    errors.NotFound: 404,
    errors.InvalidParameter: 422,
    errors.InvalidOption: 422,
    errors.NotAcceptable: 406,
    errors.CursorExpired: 410,
    errors.InvalidCursor: 400,
    errors.CursorsNeedCache: 422,
    errors.CursorsNeedOrder: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.LimitExceeded: 422,
    errors.CostTooHigh: 422,
    errors.UnsupportedType: 422,
    errors.RateLimited: 429,
    errors.BudgetExhausted: 429,
    errors.TooManyRequests: 429,
    errors.NotCached: 504,
    errors.PreconditionFailed: 412,
    errors.RequestError: 400,
    errors.SourceBusy: 503,
    errors.SourceUnavailable: 503,
    errors.StatementTimeout: 504,
    errors.QueryFailed: 502,
    errors.SourceError: 502,
    errors.AccessFileError: 500,
    errors.CatalogError: 500,
    errors.SettingsError: 500,
    errors.UnsafeExposure: 500,
    errors.LivedataError: 500,
}
# RFC 6750: the same challenge whatever failed, so it says nothing about which check did.
CHALLENGE = 'Bearer realm="livedata", error="invalid_token"'
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


UNAVAILABLE_RETRY_AFTER = 5  # seconds; a source that is down gets that long to come back
BUSY_RETRY_AFTER = 1  # seconds; a full queue drains within a statement or two


def retry_after(exc: errors.LivedataError) -> int:
    """Seconds a client should wait before sending the same request again."""
    if isinstance(exc, errors.TooManyRequests):
        return exc.retry_after
    return BUSY_RETRY_AFTER if isinstance(exc, errors.SourceBusy) else UNAVAILABLE_RETRY_AFTER


def client_codes() -> dict[str, int]:
    """Every error code a client can get, with its status: each class's own below 500, the
    opaque ``internal_error`` for the rest, and those of the framework's own errors."""
    codes = {cls.code: status for cls, status in STATUS.items() if status != 500}
    return {
        **codes,
        **{code: status for status, code in _HTTP_CODES.items()},
        "invalid_request": 422,
        "internal_error": 500,
    }


def status_for(exc: errors.LivedataError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    record(request.scope)["error"] = code
    body = {
        "error": {
            "code": code,
            "message": message,
            "request_id": getattr(request.state, "request_id", None),
            "details": details or {},
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


async def livedata_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.LivedataError)
    status = status_for(exc)
    if status == 500:
        log.error("request %s failed: %s", request.state.request_id, exc.message)
        return error_response(request, status, "internal_error", _opaque(request))
    headers = {"Retry-After": str(retry_after(exc))} if status in (429, 503) else None
    if isinstance(exc, errors.Unauthenticated):
        headers = {"WWW-Authenticate": CHALLENGE}
    return error_response(request, status, exc.code, exc.message, exc.details, headers)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail)
    headers = exc.headers
    if exc.status_code == 404:
        message = f"No endpoint at {request.url.path}; see /docs for the API."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
        # Starlette names the methods of the first route on the path; a path may have several.
        methods = _methods(request.app.routes, request.url.path)
        headers = {**(headers or {}), "Allow": ", ".join(sorted(methods))}
    return error_response(request, exc.status_code, code, message, headers=headers)


def _methods(routes: Iterable[Any], path: str) -> set[str]:
    """The methods of every route at ``path``, in included routers too (FastAPI keeps those
    as routers of their own, under ``original_router``)."""
    found: set[str] = set()
    for route in routes:
        if (included := getattr(route, "original_router", None)) is not None:
            found |= _methods(included.routes, path)
        elif getattr(route, "path", None) == path:
            found |= set(getattr(route, "methods", None) or ())
    return found


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_describe(e) for e in exc.errors()]
    return error_response(request, 422, "invalid_request", "; ".join(problems))


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("request %s failed unexpectedly", getattr(request.state, "request_id", "?"))
    return error_response(request, 500, "internal_error", _opaque(request))


def _opaque(request: Request) -> str:
    return (
        f"Internal error; quote request id {getattr(request.state, 'request_id', '?')} "
        "when reporting it."
    )


def _describe(error: Any) -> str:
    location = ".".join(str(p) for p in error["loc"] if p != "body")
    return f"{location or 'body'}: {error['msg']}"


HANDLERS = {
    errors.LivedataError: livedata_error,
    HTTPException: http_error,
    RequestValidationError: validation_error,
    Exception: unexpected_error,
}
