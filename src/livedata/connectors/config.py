"""What every source's configuration has, whatever its kind: limits, cache lifetimes, a budget.

Each connector's own model (its address, its file, its options) extends ``SourceBase`` in the
connector's module, beside the connector that reads it. Secrets are never values here: a
password is a ``SecretRef`` to an environment variable or a file, resolved only when connecting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from livedata.errors import CatalogError


class Strict(BaseModel):
    """A configuration section: refuses fields it does not know, never changes once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """Where a secret lives; the catalog never holds the secret itself."""

    env: str | None = Field(default=None, description="Environment variable holding it.")
    file: Path | None = Field(default=None, description="File holding it (e.g. a mounted secret).")

    @model_validator(mode="after")
    def _one_place(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of { env = "VAR" } or { file = "/path" }')
        return self

    def resolve(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise CatalogError(f"Environment variable {self.env} (a secret) is not set.")
            return value
        assert self.file is not None
        try:
            return self.file.read_text().strip()
        except OSError as exc:
            raise CatalogError(f"Cannot read secret file {self.file}: {exc.strerror}.") from exc

    def __repr__(self) -> str:
        return f"SecretRef(env={self.env!r})" if self.env else f"SecretRef(file={self.file!s})"


class Freshness(Strict):
    """Cache lifetimes; unset ones come from the table or query's source, then the settings."""

    ttl: float | None = Field(default=None, ge=0, description="Seconds fresh; 0: never cached.")
    stale_while_revalidate: float | None = Field(
        default=None, ge=0, description="Seconds a stale result answers while it is refreshed."
    )
    stale_if_error: float | None = Field(
        default=None, ge=0, description="Seconds a stale result answers when the source fails."
    )


class BudgetLimits(Strict):
    """What one window allows; unset means no limit."""

    queries: int | None = Field(default=None, ge=0, description="Queries sent to the source.")
    source_seconds: float | None = Field(
        default=None, ge=0, description="Seconds the source worked on them."
    )


class Budget(BudgetLimits):
    """Spending on a source per window, for everyone together and for each caller. Only
    requests that reach the source spend: cache hits and coalesced waiters cost nothing."""

    window: float = Field(
        default=3600.0, gt=0, description="Seconds per window; counts restart with each window."
    )
    per_caller: BudgetLimits = Field(
        default_factory=BudgetLimits, description="The same limits for each caller on its own."
    )


class SourceBase(Freshness):
    """Limits every source has, whatever its kind. A kind's model narrows ``kind`` to its name."""

    kind: str
    max_concurrent_queries: int = Field(
        default=4, ge=1, description="Queries run at once against this source; others wait."
    )
    max_queued_queries: int = Field(
        default=64,
        ge=0,
        description="Queries that may wait for a slot; beyond, 503 source_busy at once.",
    )
    statement_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before the database itself cancels a statement."
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a connection before answering 503."
    )
    max_rows: int = Field(
        default=1_000_000, ge=1, description="Most rows one result may have; beyond, it is cut."
    )
    max_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Most bytes (as Arrow in memory) one result may hold; beyond, it is cut "
        "at a row boundary and flagged truncated.",
    )
    max_estimated_cost: float | None = Field(
        default=None,
        gt=0,
        description="Refuse, before running it, a query the source estimates above this "
        "(PostgreSQL: EXPLAIN total cost; DuckDB: estimated rows over the plan).",
    )
    budget: Budget | None = Field(default=None, description="Queries and source time per window.")

    def resolve_paths(self, base: Path) -> Self:
        """This source with its file paths made relative to ``base``, the catalog's folder;
        kinds that read local files override it."""
        return self


class ServerSource(SourceBase):
    """A database server reached over the network."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    database: str
    user: str
    password: SecretRef | None = Field(default=None, description="Never inline: env or file.")
