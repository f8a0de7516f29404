"""Where the next keyset page starts: the last row's order values as JSON, or a refusal."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest

from livedata import keyset
from livedata.errors import CursorsNeedOrder

ORDER = [("day", False), ("price", True), ("id", False)]


def rows(*ids: int, price: float | None = None) -> pa.Table:
    return pa.table(
        {
            "day": pa.array([dt.date(2024, 1, 31)] * len(ids)),
            "price": pa.array([decimal.Decimal("9.50")] * len(ids), pa.decimal128(15, 2)),
            "id": pa.array(ids, pa.int64()),
            "score": pa.array([price] * len(ids), pa.float64()),
        }
    )


def test_the_last_rows_values_as_a_filter_takes_them_back() -> None:
    assert keyset.next_after(rows(1, 2, 3), ORDER, 2) == ["2024-01-31", "9.50", 2]


def test_no_row_past_the_page_means_no_next_page() -> None:
    assert keyset.next_after(rows(1, 2), ORDER, 2) is None


def test_a_tie_across_the_boundary_is_refused() -> None:
    with pytest.raises(CursorsNeedOrder, match="Rows 2 and 3 hold the same"):
        keyset.next_after(rows(1, 2, 2), ORDER, 2)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_value_json_cannot_carry_is_refused_not_sent_as_null(value: float) -> None:
    with pytest.raises(CursorsNeedOrder, match="cannot start after"):
        keyset.next_after(rows(1, 2, 3, price=value), [("score", False), ("id", False)], 2)
