"""Typed parameter conversion: what browsers send becomes the declared type, or a 422."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from livedata.errors import InvalidParameter
from livedata.params import ParamSpec

D = dt.date(2024, 1, 31)


@pytest.mark.parametrize(
    ("spec", "given", "expected"),
    [
        pytest.param({"type": "int"}, "5", 5, id="int-from-string"),
        pytest.param({"type": "int"}, 5.0, 5, id="int-from-whole-float"),
        pytest.param({"type": "float"}, "2.5", 2.5, id="float"),
        pytest.param({"type": "bool"}, "yes", True, id="bool-word"),
        pytest.param({"type": "bool"}, 0, False, id="bool-zero"),
        pytest.param({"type": "date"}, "2024-01-31", D, id="date"),
        pytest.param(
            {"type": "datetime"},
            "2024-01-31T12:00:00+02:00",
            dt.datetime(2024, 1, 31, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            id="datetime",
        ),
        pytest.param({"type": "enum", "values": ["a", "b"]}, "b", "b", id="enum"),
        pytest.param({"type": "list[int]"}, "1,2,3", [1, 2, 3], id="list-from-csv"),
        pytest.param({"type": "list[date]"}, ["2024-01-31"], [D], id="list-of-dates"),
        pytest.param({"type": "str", "max_length": 3}, "abc", "abc", id="str-at-max"),
        pytest.param({"type": "date", "min": "2024-01-01"}, "2024-01-31", D, id="date-bound"),
    ],
)
def test_converts(spec: dict[str, Any], given: Any, expected: Any) -> None:
    assert ParamSpec(**spec).convert("p", given) == expected


@pytest.mark.parametrize(
    ("spec", "given", "rule"),
    [
        pytest.param({"type": "int"}, True, "must be an integer", id="bool-is-not-int"),
        pytest.param({"type": "int"}, "1e3", "must be an integer", id="int-exponent"),
        pytest.param({"type": "int", "max": 10}, 11, "must be at most 10", id="int-max"),
        pytest.param({"type": "float"}, "nan", "must be a finite number", id="float-nan"),
        pytest.param({"type": "bool"}, "maybe", "must be true or false", id="bool"),
        pytest.param({"type": "date"}, "2024-02-30", "must be a date", id="impossible-date"),
        pytest.param({"type": "str", "pattern": "[a-z]+"}, "A1", "must match", id="pattern"),
        pytest.param({"type": "str"}, {"a": 1}, "must be a string", id="object-as-str"),
        pytest.param(
            {"type": "list[int]", "max_length": 2}, [1, 2, 3], "at most 2 items", id="list-length"
        ),
        pytest.param(
            {"type": "list[int]"}, list(range(1001)), "at most 1000 items", id="list-hard-cap"
        ),
        pytest.param({"type": "enum", "values": ["a"]}, "b", "must be one of a", id="enum"),
    ],
)
def test_rejects_naming_the_rule(spec: dict[str, Any], given: Any, rule: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        ParamSpec(**spec).convert("p", given)
    assert rule in caught.value.message
    assert caught.value.details["parameter"] == "p"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        pytest.param({"type": "enum"}, "needs `values", id="enum-without-values"),
        pytest.param({"type": "int", "default": "x"}, "must be an integer", id="bad-default"),
        pytest.param({"type": "list[list[int]]"}, "unknown parameter type", id="nested-list"),
    ],
)
def test_bad_declarations(spec: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ParamSpec(**spec)
