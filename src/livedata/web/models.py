"""The shapes of request and response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from livedata.sql import FilterOp

JSONScalar = str | int | float | bool | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Filter(_Body):
    """One condition; all filters must hold (AND)."""

    column: str = Field(max_length=256)
    op: FilterOp = Field(description="eq, ne, lt, le, gt, ge, in, is_null, contains")
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


class Column(BaseModel):
    name: str
    type: str


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


class QueryResult(BaseModel):
    """The JSON response: column names and types, rows as arrays, then metadata."""

    columns: list[Column]
    rows: list[list[Any]]
    meta: ResultMeta


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. unknown_table.")
    message: str = Field(description="What went wrong and what to do next.")
    request_id: str | None
    details: dict[str, Any]


class ErrorBody(BaseModel):
    error: ErrorDetail
