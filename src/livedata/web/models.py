"""The shapes of request and response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from livedata.sql import FilterOp

JSONScalar = str | int | float | bool | None
Invalidated = Literal["table", "query", "source"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Filter(_Body):
    """One condition; all filters must hold (AND)."""

    column: str = Field(max_length=256)
    op: FilterOp = Field(
        description="eq, ne, lt, le, gt, ge, in, is_null, contains, has; the ops each column "
        "takes are listed in /queries"
    )
    value: JSONScalar | list[JSONScalar] = Field(
        default=None,
        description="A value; a list for `in`; true/false for `is_null` (default true).",
    )


class Order(_Body):
    column: str = Field(max_length=256)
    desc: bool = False


class QueryBody(_Body):
    """A request for rows: exactly one of `table` or `query`, then optional shaping."""

    table: str | None = Field(default=None, max_length=256, description="An exposed table.")
    query: str | None = Field(default=None, max_length=256, description="A named query.")
    params: dict[str, JSONScalar | list[JSONScalar]] = Field(
        default_factory=dict, description="Named-query parameters, converted to their types."
    )
    columns: list[str] | None = Field(default=None, max_length=1000)
    filters: list[Filter] = Field(default_factory=list, max_length=100)
    order_by: list[Order] = Field(default_factory=list, max_length=32)
    limit: int | None = Field(default=None, ge=0, description="Most rows to return.")
    offset: int = Field(default=0, ge=0, description="Rows to skip (after ordering).")
    format: Literal["json", "ndjson", "csv", "arrow", "parquet"] | None = Field(
        default=None, description="Response format; overrides the Accept header."
    )
    paginate: bool = Field(
        default=False,
        description="Page a snapshot: `limit` rows from `offset`, with `meta.next` (a cursor) "
        "while more rows follow and `meta.total`.",
    )
    cursor: str | None = Field(
        default=None,
        max_length=4096,
        description="The `meta.next` (or `X-Next-Cursor`) of the previous page, sent with the "
        "same `table` or `query`: the next page of the same snapshot.",
    )


class Column(BaseModel):
    name: str
    type: str


class ColumnInfo(Column):
    """A column as GET /queries lists it."""

    ops: list[str] = Field(description="The filter ops a filter on this column takes.")
    nullable: bool | None = Field(
        default=None,
        description="Whether the column may hold null, as the table declares it (NOT NULL: "
        "false); absent when the source cannot tell, as for a named query's columns.",
    )
    description: str | None = Field(
        default=None, description="From the catalog's column_descriptions; absent if none."
    )


class ResultMeta(BaseModel):
    rows: int
    truncated: bool = Field(description="True when the source's max_rows cut the result.")
    source: str
    table: str | None = None
    query: str | None = None
    params: dict[str, Any] = Field(description="The parameters after conversion.")
    fetched_at: str = Field(description="When the source answered (ISO 8601, UTC).")
    fresh_until: str = Field(description="Until when the cache answers with these rows.")
    timings_ms: dict[str, float] = Field(description="Milliseconds the source worked.")
    total: int | None = Field(
        default=None, description="Rows of the snapshot (snapshot pages only; null for keyset)."
    )
    next: str | None = Field(
        default=None, description="Cursor of the next page (paged only; null on the last)."
    )
    paging: Literal["snapshot", "keyset"] | None = Field(
        default=None,
        description="Paged only: snapshot (the cached result, pinned: pages never change) or "
        "keyset (nothing cached: each page read from the source after the last row sent).",
    )


class QueryResult(BaseModel):
    """The JSON response: column names and types, rows as arrays, then metadata."""

    columns: list[Column]
    rows: list[list[Any]]
    meta: ResultMeta


class ErrorDetail(BaseModel):
    code: str = Field(
        description="Stable machine-readable code (the README lists them all).",
        examples=["not_found"],
    )
    message: str = Field(
        description="What went wrong and what to do next.",
        examples=["No table named 'world_country_lst'. Did you mean 'world_country_list'?"],
    )
    request_id: str | None = Field(
        description="The X-Request-Id of the response: quote it when reporting a problem.",
        examples=["3f8f528bef08ceae"],
    )
    details: dict[str, Any] = Field(
        description="Machine-readable specifics: names, limits, did-you-mean.",
        examples=[{"kind": "table", "name": "world_country_lst"}],
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


class InvalidateBody(_Body):
    """What to remove from the result cache: exactly one of the four."""

    table: str | None = Field(
        default=None,
        max_length=256,
        description="A database table: every entry whose SQL reads it (after an ETL run).",
    )
    query: str | None = Field(default=None, max_length=256, description="A named query.")
    source: str | None = Field(default=None, max_length=256, description="A source.")
    all: Literal[True] | None = Field(default=None, description="Every entry.")

    @model_validator(mode="after")
    def _exactly_one(self) -> InvalidateBody:
        if sum(v is not None for v in (self.table, self.query, self.source, self.all)) != 1:
            raise ValueError('Give exactly one of "table", "query", "source" or "all"')
        return self

    def selector(self) -> tuple[Invalidated, str] | None:
        """The kind and the name to invalidate; None for every entry."""
        named: dict[Invalidated, str | None] = {
            "table": self.table,
            "query": self.query,
            "source": self.source,
        }
        return next(((kind, name) for kind, name in named.items() if name is not None), None)


class CacheEntry(BaseModel):
    """One stored result, as the cache index knows it."""

    key: str = Field(description="The cache key: a hash of everything that changes the result.")
    source: str
    kind: Literal["table", "query"]
    name: str
    params: dict[str, Any] = Field(description="The parameters after conversion.")
    rows: int
    truncated: bool
    columns: list[Column]
    bytes: int = Field(description="The entry's data plus the response bodies encoded from it.")
    source_ms: float = Field(description="Milliseconds the source worked to produce it.")
    digest: str = Field(description="xxh3-128 of the stored data.")
    created: dt.datetime
    fresh_until: dt.datetime
    stale_until: dt.datetime = Field(description="Past this, maintenance removes it.")
    last_access: dt.datetime
    hits: int = Field(description="Reads counted so far (written to the index in batches).")
    tags: list[str] = Field(description="What invalidates it: source:, query: or table:, reads:.")


class CacheListing(BaseModel):
    entries: list[CacheEntry] = Field(description="Most recently used first.")


class CacheCounters(BaseModel):
    """Counted by the answering process since it started (each worker counts for itself)."""

    requests: dict[str, int] = Field(
        description="Results by how they were answered: hit, stale, stale-if-error, miss, "
        "coalesced, bypass."
    )
    source_queries: int
    source_seconds: float
    source_seconds_saved: float = Field(description="Source time of the results the cache gave.")
    evictions: int
    integrity_failures: int = Field(description="Damaged files found, removed and re-fetched.")
    write_failures: int = Field(description="Writes the disk refused (served uncached).")


class CacheStats(BaseModel):
    entries: int
    bytes: int = Field(description="Total size on disk, bodies included.")
    max_bytes: int = Field(description="The size bound (LIVEDATA_CACHE_MAX_BYTES).")
    counters: CacheCounters


class Removed(BaseModel):
    removed: int = Field(description="How many entries were removed.")


class TableInfo(BaseModel):
    source: str
    description: str
    columns: list[ColumnInfo] | None = Field(
        description="The result columns; null while the source cannot say (it is down)."
    )


class QueryInfo(TableInfo):
    params: dict[str, dict[str, Any]] = Field(
        description="Each parameter: type, required, default, bounds, description, and "
        "`schema`, the JSON Schema of its values."
    )


class CatalogListing(BaseModel):
    """What the caller may ask for (GET /queries)."""

    tables: dict[str, TableInfo]
    queries: dict[str, QueryInfo]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """Admins also see each part; others see only the status."""

    status: Literal["ok", "degraded"] = Field(
        description="degraded: a source does not answer (hits and stale answers still flow) "
        "or the audit log refuses writes."
    )
    sources: dict[str, dict[str, Any]] | None = None
    audit_log: str | None = None
    cache: str | None = None
    cluster: str | None = None
    shared_tier: str | None = None
