"""``Caller``: the authenticated party behind a request, as the core sees it.

The web layer builds one from credentials; the planner and the service only read it. It
carries no secret, so it may be logged and put in error details.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Caller:
    id: str  # "key:<id>", "token:<subject>", or "anonymous" when authentication is off
    queries: frozenset[str] | None = None  # named queries it may run; None: every one
    tables: frozenset[str] | None = None  # tables it may read; None: every one
    # Parameter values the caller cannot change (row-level restrictions, e.g. a tenant).
    # They are part of the cache key, so two callers with different ones never share rows.
    restrictions: Mapping[str, Any] = field(default_factory=dict)
    admin: bool = False  # may manage the cache and read metrics

    def allows(self, kind: str, name: str) -> bool:
        """May run the table (``kind`` "table") or named query ("query") called ``name``."""
        allowed = self.tables if kind == "table" else self.queries
        return allowed is None or name in allowed

    def visible(self, kind: str, names: Iterable[str]) -> list[str]:
        """The names it may run, so listings and "did you mean" reveal no others."""
        return [name for name in names if self.allows(kind, name)]


NOBODY = Caller("unauthenticated", frozenset(), frozenset())  # public endpoints, no credentials
ANONYMOUS = Caller("anonymous", admin=True)  # authentication off: loopback-only serving
