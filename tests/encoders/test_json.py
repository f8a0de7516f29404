"""The JSON encodings of nested values, value by value: the same as at the top level, also in
a slice of a batch (the encoder cuts batches into slices) and under nulls."""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from livedata.encoders.json import iso_duration, json_values

BIG = 2**60
NESTED = [
    pytest.param(
        pa.array([[1, BIG], None, [], [None]], pa.list_(pa.int64())),
        [[1, str(BIG)], None, [], [None]],
        id="list-int",
    ),
    pytest.param(
        pa.array([[float("nan"), float("-inf")], [0.5]], pa.large_list(pa.float64())),
        [["NaN", "-Infinity"], [0.5]],
        id="large-list-float",
    ),
    pytest.param(
        pa.array([[decimal.Decimal("1E-10")], None], pa.list_(pa.decimal128(20, 10), 1)),
        [["0.0000000001"], None],
        id="fixed-size-list-decimal",
    ),
    pytest.param(
        pa.array(
            [{"n": BIG, "l": [b"\x00"]}, None, {"n": None, "l": None}],
            pa.struct([("n", pa.int64()), ("l", pa.list_(pa.binary()))]),
        ),
        [{"n": str(BIG), "l": ["AA=="]}, None, {"n": None, "l": None}],
        id="struct",
    ),
    pytest.param(
        pa.array([[(1, BIG)], None], pa.map_(pa.int32(), pa.int64())),
        [[{"key": 1, "value": str(BIG)}], None],
        id="map",
    ),
    pytest.param(
        pa.array([[2**63 - 1, 0], [-(2**63)]], pa.list_(pa.timestamp("us", "UTC"))),
        [["infinity", "1970-01-01T00:00:00.000000+00:00"], ["-infinity"]],
        id="list-timestamp-infinity",
    ),
]


@pytest.mark.parametrize(("array", "expected"), NESTED)
def test_nested_values_follow_the_top_level_encodings(
    array: pa.Array, expected: list[object]
) -> None:
    assert json_values(array) == expected
    for start in range(1, len(expected)):
        assert json_values(array.slice(start)) == expected[start:]
        assert json_values(array.slice(0, start)) == expected[:start]


@pytest.mark.parametrize(
    ("parts", "text"),
    [
        pytest.param((0, 0, 0), "PT0S", id="zero"),
        pytest.param((14, 0, 0), "P1Y2M", id="years"),
        pytest.param((-14, 0, 0), "P-1Y-2M", id="negative-months"),
        pytest.param((1, -2, 11_045_500_000_000), "P1M-2DT3H4M5.5S", id="mixed-signs"),
        pytest.param((0, 0, -(838 * 3600 + 59 * 60 + 59) * 10**9), "PT-838H-59M-59S", id="time"),
        pytest.param((0, 0, 1), "PT0.000000001S", id="nanosecond"),
    ],
)
def test_durations_are_iso_8601_as_postgresql_writes_them(
    parts: tuple[int, int, int], text: str
) -> None:
    assert iso_duration(*parts) == text
