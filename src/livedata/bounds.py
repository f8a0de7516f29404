"""Bounds on what one request may ask and one result may hold.

The request bounds are checked on the parsed JSON, before it is validated or planned, so an
adversarial body (deep nesting, a 100,000-item ``in`` list) costs one walk over a value that
the body size limit already keeps small, never a model, a plan or a statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from livedata.errors import LimitExceeded


@dataclass(frozen=True)
class RequestBounds:
    max_depth: int  # arrays and objects inside each other; the body itself is depth 1
    max_items: int  # items of any one array, members of any one object

    def check(self, body: Any) -> None:
        """Raise LimitExceeded naming the first place in ``body`` that is over a bound."""
        pending: list[tuple[Any, str, int]] = [(body, "body", 1)]
        while pending:
            value, where, depth = pending.pop()
            prefix = "" if where == "body" else where
            if isinstance(value, dict):
                children = [(v, f"{prefix}.{k}".lstrip(".")) for k, v in value.items()]
            elif isinstance(value, list):
                children = [(v, f"{prefix}[{i}]") for i, v in enumerate(value)]
            else:
                continue
            if depth > self.max_depth:
                raise _exceeded(
                    "max_request_depth",
                    self.max_depth,
                    where,
                    f"nests deeper than {self.max_depth} levels",
                )
            if len(children) > self.max_items:
                raise _exceeded(
                    "max_request_items",
                    self.max_items,
                    where,
                    f"has {len(children)} items; at most {self.max_items} are allowed",
                )
            pending.extend((child, place, depth + 1) for child, place in reversed(children))


def _exceeded(setting: str, bound: int, where: str, what: str) -> LimitExceeded:
    return LimitExceeded(
        f"{where} {what} (LIVEDATA_{setting.upper()}).", limit=setting, max=bound, at=where
    )


def cap_bytes(
    table: pa.Table | pa.RecordBatch, max_bytes: int | None
) -> tuple[pa.Table | pa.RecordBatch, bool]:
    """The longest leading run of rows within ``max_bytes`` of Arrow data, and whether rows
    had to go. Cut before the result is stored, so a hit serves exactly what the miss did."""
    if max_bytes is None or table.nbytes <= max(0, max_bytes):
        return table, False
    fits, too_many = 0, table.num_rows  # slice(0, fits) fits; slice(0, too_many) does not
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if table.slice(0, middle).nbytes <= max_bytes:
            fits = middle
        else:
            too_many = middle
    return table.slice(0, fits), True
