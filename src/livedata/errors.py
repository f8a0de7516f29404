"""Every failure livedata knows how to explain, as one tree.

Only the web layer maps these to HTTP status codes (``livedata.web.errors``); the CLI maps
them to exit codes (``livedata.commands.exits``). Each class carries a stable ``code`` that
clients can switch on.

    LivedataError
    ├── SettingsError           a LIVEDATA_* setting is unknown or invalid (exit code 2)
    ├── CatalogError            the catalog file is broken (start-up stops, exit code 2)
    │   └── AccessFileError     the access file (API keys, token keys) is broken
    ├── UnsafeExposure          a public address without authentication (start-up refused)
    ├── RequestError            the client asked for something it cannot have (4xx)
    │   ├── MalformedBody       the body is not JSON, or not the documented shape
    │   ├── MalformedHeader     a header breaks HTTP's rules (a singleton field sent twice)
    │   ├── UnsupportedMediaType  the body is not declared as JSON
    │   ├── BodyTooLarge        the body is over the size limit
    │   ├── NotFound            no such table or query (with "did you mean")
    │   ├── InvalidParameter    a parameter breaks its type or rule
    │   ├── InvalidOption       a column, filter, order or paging option is not allowed
    │   ├── NotAcceptable       no response format the client accepts
    │   ├── Unauthenticated     no valid credentials (one message, whatever check failed)
    │   ├── Forbidden           valid credentials, but not for this (admin scope, forced value)
    │   ├── LimitExceeded       the body nests too deep or holds too long an array
    │   ├── InvalidCursor       a paging cursor is forged, damaged, or not this caller's
    │   │   └── CursorExpired   a cursor past its time, or its snapshot is gone
    │   ├── CursorsNeedCache    the cache cannot keep the snapshot cursors would page
    │   ├── CursorsNeedOrder    keyset paging without an order that tells rows apart
    │   ├── UnsupportedType     a column's type (or value) has no lossless encoding
    │   └── CostTooHigh         the source estimates the query over its cost limit
    ├── TooManyRequests         the caller must wait (429, with Retry-After)
    │   ├── RateLimited         the caller's request rate is over its limit
    │   └── BudgetExhausted     a source's query or source-time budget is spent
    ├── NotCached               only-if-cached, and the cache has no usable entry (504)
    ├── PreconditionFailed      a POST whose If-None-Match matches the result (412)
    └── SourceError             the source could not answer (5xx)
        ├── SourceBusy          every slot and queue place of the source is taken
        ├── SourceUnavailable   cannot connect, or the connection dropped
        ├── StatementTimeout    the source cancelled the statement at its timeout
        └── QueryFailed         the source rejected the builder's SQL
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar


class LivedataError(Exception):
    """Base of every error livedata raises on purpose."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class SettingsError(LivedataError):
    """The environment holds a ``LIVEDATA_*`` variable that is no setting (a typo would be
    ignored silently), or a setting's value breaks its type; the message names every one."""

    code = "settings_error"


class CatalogError(LivedataError):
    """The catalog (file plus environment overrides) does not describe a valid service."""

    code = "catalog_error"


class AccessFileError(CatalogError):
    """The access file (API keys, token verification keys) does not describe valid access."""

    code = "access_file_error"


class UnsafeExposure(LivedataError):
    """Serving a non-loopback address with no credentials configured: anyone could read."""

    code = "unsafe_exposure"


class RequestError(LivedataError):
    """The client's request cannot be answered as sent; the message says how to fix it."""

    code = "bad_request"


class MalformedBody(RequestError):
    code = "malformed_body"


class MalformedHeader(RequestError):
    """The request's header section is not valid HTTP for livedata to act on, such as two
    ``Authorization`` fields (RFC 9110 makes it a singleton): a proxy reading the other one
    would see a different caller, so neither is taken."""

    code = "malformed_header"


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"


class BodyTooLarge(RequestError):
    code = "body_too_large"


class NotFound(RequestError):
    code = "not_found"

    @classmethod
    def for_name(cls, kind: str, name: str, known: Iterable[str]) -> NotFound:
        return unknown_name(cls, kind, name, known)


class InvalidParameter(RequestError):
    code = "invalid_parameter"


class InvalidOption(RequestError):
    code = "invalid_option"

    @classmethod
    def unknown_column(cls, name: str, known: Iterable[str]) -> InvalidOption:
        return unknown_name(cls, "column", name, known)


class NotAcceptable(RequestError):
    code = "not_acceptable"


class InvalidCursor(RequestError):
    """The cursor's signature fails, it pages another target, or another caller (or the same
    caller under other restrictions) was given it: never a page of someone else's rows."""

    code = "invalid_cursor"


class CursorExpired(InvalidCursor):
    """The cursor is older than LIVEDATA_CURSOR_TTL, or its snapshot is no longer kept."""

    code = "cursor_expired"


class CursorsNeedCache(RequestError):
    """The cache could not keep the snapshot a cursor would page (a full or failing disk)."""

    code = "cursors_need_cache"


class CursorsNeedOrder(RequestError):
    """Where nothing is cached, cursors page by keyset: they need an ``order_by`` of
    orderable columns that tells rows apart at each page boundary."""

    code = "cursors_need_order"


class LimitExceeded(RequestError):
    """The body is well-formed JSON but bigger than a configured bound allows."""

    code = "limit_exceeded"


class UnsupportedType(RequestError):
    """A column the source answered holds a type or value livedata cannot serve losslessly
    (a PostgreSQL ``inet``, a date past year 9999). Refused by name rather than sent as
    garbage; the client may leave the column out, the catalog may cast it in its SQL."""

    code = "unsupported_type"

    @classmethod
    def for_column(cls, column: str, kind: str, why: str, fix: str) -> UnsupportedType:
        return cls(
            f"Column {column!r} ({kind}) cannot be served: {why}. Leave it out with `columns`, "
            f"or {fix} in the catalog's SQL.",
            column=column,
            type=kind,
        )


class CostTooHigh(RequestError):
    """Refused before running: narrowing the request (filters, columns) may bring it under."""

    code = "cost_too_high"


class TooManyRequests(LivedataError):
    """Not a mistake in the request: the same request succeeds after ``retry_after`` seconds."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after: float = 1.0, **details: Any) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(message, retry_after=self.retry_after, **details)


class RateLimited(TooManyRequests):
    code = "rate_limited"


class BudgetExhausted(TooManyRequests):
    code = "budget_exhausted"


E = TypeVar("E", bound=LivedataError)
_PLURALS = {"query": "queries"}


def unknown_name(cls: type[E], kind: str, name: str, known: Iterable[str]) -> E:
    """Name the closest known names in the message, so the fix is one glance away."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return cls(
        f"No {kind} named {name!r}.{hint} Known {_PLURALS.get(kind, kind + 's')}: "
        f"{', '.join(known) or 'none'}.",
        kind=kind,
        name=name,
        did_you_mean=close,
    )


class Unauthenticated(RequestError):
    """Missing, malformed, expired or forged credentials. The client always gets the same
    message; ``reason`` says which check failed, for the server's log only."""

    code = "unauthenticated"
    MESSAGE = (
        "Send valid credentials: 'Authorization: Bearer <API key or embed token>' "
        "(never in the URL)."
    )

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGE)
        self.reason = reason


class Forbidden(RequestError):
    code = "forbidden"


class NotCached(LivedataError):
    """Not a client mistake: RFC 9111 answers only-if-cached without an entry with 504."""

    code = "not_cached"


class PreconditionFailed(LivedataError):
    """Not a client mistake: RFC 9110 answers a matching If-None-Match with 304 only for GET
    and HEAD, and with 412 for any other method; ``GET /query`` revalidates."""

    code = "precondition_failed"


class SourceError(LivedataError):
    """The source failed; messages name the source, never its address or credentials."""

    code = "source_error"


class SourceBusy(SourceError):
    """Overload, said at once instead of a hang; a stale entry may still answer."""

    code = "source_busy"


class SourceUnavailable(SourceError):
    code = "source_unavailable"


class StatementTimeout(SourceError):
    code = "statement_timeout"


class QueryFailed(SourceError):
    code = "query_failed"
