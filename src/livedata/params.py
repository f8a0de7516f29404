"""Typed parameters of named queries: declared by the app builder, converted once per request.

Every conversion has exactly one failure path (``_fail``), so every rejected value produces an
``InvalidParameter`` naming the parameter and the rule it broke. Conversion is strict but
friendly to what browsers send: ``"5"`` is a valid int, ``"2024-01-31"`` a valid date.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, model_validator

from livedata.errors import InvalidParameter

Scalar = int | float | str | bool | dt.date | dt.datetime
ScalarType = Literal["int", "float", "str", "bool", "date", "datetime", "enum"]
SCALAR_TYPES: tuple[ScalarType, ...] = ("int", "float", "str", "bool", "date", "datetime", "enum")
MAX_LIST_LENGTH = 1000

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_JSON_TYPES: dict[ScalarType, dict[str, str]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


class ParamSpec(BaseModel):
    """One parameter of a named query, as written in the catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(
        description='One of int, float, str, bool, date, datetime, enum, or "list[T]".'
    )
    description: str = ""
    default: Any = None
    required: bool | None = Field(
        default=None, description="Defaults to true when no default is given."
    )
    min: int | float | str | None = Field(default=None, description="Inclusive lower bound.")
    max: int | float | str | None = Field(default=None, description="Inclusive upper bound.")
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    pattern: str | None = Field(default=None, description="Regular expression a str must match.")
    values: list[str | int] | None = Field(default=None, description="Allowed values of an enum.")

    @property
    def item_type(self) -> ScalarType:
        return _split_type(self.type)[0]

    @property
    def is_list(self) -> bool:
        return _split_type(self.type)[1]

    @property
    def is_required(self) -> bool:
        return self.default is None if self.required is None else self.required

    @model_validator(mode="after")
    def _check(self) -> ParamSpec:
        item, _ = _split_type(self.type)
        if item == "enum" and not self.values:
            raise ValueError("an enum parameter needs `values = [...]`")
        if item != "enum" and self.values is not None:
            raise ValueError(f"`values` is only for enum parameters, not {self.type}")
        if self.pattern is not None:
            re.compile(self.pattern)
        try:
            for bound in ("min", "max"):
                if getattr(self, bound) is not None:
                    _convert_item(self, bound, getattr(self, bound), check_rules=False)
            if self.default is not None:
                self.convert("default", self.default)
        except InvalidParameter as exc:
            raise ValueError(exc.message) from exc
        return self

    def convert(self, name: str, value: Any) -> Any:
        """Return ``value`` as this parameter's Python type, or raise InvalidParameter."""
        if not self.is_list:
            return _convert_item(self, name, value)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, list):
            _fail(name, f"must be a list of {self.item_type}", value)
        _check_length(self, name, value, what="items")
        return [_convert_item(self, f"{name}[{i}]", v) for i, v in enumerate(value)]

    def describe(self) -> dict[str, Any]:
        """The parameter as GET /queries shows it: as declared, plus its JSON Schema."""
        out = self.model_dump(exclude_none=True, exclude={"required"})
        out["required"] = self.is_required
        if "default" in out:
            out["default"] = jsonable(self.convert("default", self.default))
        out["schema"] = self.json_schema()
        return out

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the values ``convert`` accepts in their canonical JSON form,
        shared by GET /queries and the OpenAPI document. Bounds of dates are not expressible
        in JSON Schema and stay in ``min``/``max``."""
        kind = self.item_type
        item: dict[str, Any] = {"enum": self.values} if kind == "enum" else dict(_JSON_TYPES[kind])
        if kind in ("int", "float"):
            item.update(
                {
                    k: _convert_item(self, k, v, check_rules=False)
                    for k, v in (("minimum", self.min), ("maximum", self.max))
                    if v is not None
                }
            )
        upper = MAX_LIST_LENGTH if self.max_length is None else self.max_length  # _check_length
        if kind == "str":
            item.update(minLength=self.min_length, maxLength=upper)
            item["pattern"] = None if self.pattern is None else f"^(?:{self.pattern})$"
        schema = item = _present(item)
        if self.is_list:  # the length bounds count both the items and each str item
            items = {"minItems": self.min_length, "maxItems": upper}
            schema = _present({"type": "array", "items": item, **items})
        if self.description:
            schema["description"] = self.description
        if self.default is not None:
            schema["default"] = jsonable(self.convert("default", self.default))
        return schema


def _split_type(declared: str) -> tuple[ScalarType, bool]:
    text = declared.strip()
    is_list = text.startswith("list[") and text.endswith("]")
    item = text[5:-1].strip() if is_list else text
    if item not in SCALAR_TYPES:
        raise ValueError(
            f"unknown parameter type {declared!r}; use one of {', '.join(SCALAR_TYPES)} "
            'or "list[T]" of those'
        )
    return item, is_list


def _present(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if v is not None}


def _fail(name: str, rule: str, value: Any) -> NoReturn:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    raise InvalidParameter(f"Parameter {name!r} {rule} (got {shown}).", parameter=name, rule=rule)


def _convert_item(spec: ParamSpec, name: str, value: Any, *, check_rules: bool = True) -> Any:
    kind = spec.item_type
    converted: Any
    if kind == "int":
        converted = _to_int(name, value)
    elif kind == "float":
        converted = _to_float(name, value)
    elif kind == "bool":
        converted = _to_bool(name, value)
    elif kind == "date":
        converted = _to_date(name, value)
    elif kind == "datetime":
        converted = _to_datetime(name, value)
    elif kind == "enum":
        allowed = spec.values or []
        matches = [v for v in allowed if v == value or str(v) == str(value)]
        if not matches:
            _fail(name, f"must be one of {', '.join(map(str, allowed))}", value)
        converted = matches[0]
    else:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            _fail(name, "must be a string", value)
        converted = str(value)
        if "\x00" in converted:  # PostgreSQL refuses NUL in text: say so as the client's mistake
            _fail(name, "must not contain NUL characters", value)
    if check_rules:
        _check_rules(spec, name, converted)
    return converted


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not _integral(value):
        _fail(name, "must be an integer", value)
    number = int(value)
    if not INT64_MIN <= number <= INT64_MAX:  # what every source's BIGINT holds
        _fail(name, f"must be an integer between {INT64_MIN} and {INT64_MAX}", value)
    return number


def _integral(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):
        return re.fullmatch(r"\s*[+-]?\d{1,19}\s*", value) is not None
    return isinstance(value, int)


def _to_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        _fail(name, "must be a number", value)
    try:
        number = float(value)
    except ValueError:
        _fail(name, "must be a number", value)
    if not math.isfinite(number):
        _fail(name, "must be a finite number", value)
    return number


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    _fail(name, "must be true or false", value)


def _to_date(name: str, value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        _fail(name, "must be a date as YYYY-MM-DD", value)


def _to_datetime(name: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        _fail(name, "must be an ISO 8601 date-time, e.g. 2024-01-31T12:00:00+00:00", value)


def _check_rules(spec: ParamSpec, name: str, value: Any) -> None:
    if spec.min is not None and value < _convert_item(spec, "min", spec.min, check_rules=False):
        _fail(name, f"must be at least {spec.min}", value)
    if spec.max is not None and value > _convert_item(spec, "max", spec.max, check_rules=False):
        _fail(name, f"must be at most {spec.max}", value)
    if isinstance(value, str) and spec.item_type == "str":
        _check_length(spec, name, value, what="characters")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            _fail(name, f"must match the pattern {spec.pattern}", value)


def _check_length(spec: ParamSpec, name: str, value: Sequence[Any], *, what: str) -> None:
    upper = spec.max_length if spec.max_length is not None else MAX_LIST_LENGTH
    if spec.min_length is not None and len(value) < spec.min_length:
        _fail(name, f"must have at least {spec.min_length} {what}", value)
    if len(value) > upper:
        _fail(name, f"must have at most {upper} {what}", value)


def jsonable(value: Any) -> Any:
    """A converted value as JSON shows it: dates and date-times in ISO 8601."""
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def convert_all(specs: dict[str, ParamSpec], given: dict[str, Any]) -> dict[str, Any]:
    """Convert a request's parameters; unknown names and missing required ones are errors."""
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise InvalidParameter(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"this query takes {', '.join(map(repr, specs)) or 'no parameters'}.",
            parameter=unknown[0],
            rule="unknown",
        )
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        if given.get(name) is not None:
            out[name] = spec.convert(name, given[name])
        elif spec.default is not None:
            out[name] = spec.convert(name, spec.default)
        elif spec.is_required:
            raise InvalidParameter(
                f"Parameter {name!r} is required ({spec.type}).", parameter=name, rule="required"
            )
        else:
            out[name] = None
    return out
