"""The OpenAPI document: FastAPI's, plus the request body and each named query's parameters."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from livedata.catalog import Catalog
from livedata.params import ParamSpec
from livedata.web.models import QueryBody

_JSON_TYPES = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


def build_openapi(app: FastAPI, catalog: Catalog) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    body = QueryBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body.pop("$defs", {}))
    schemas["QueryBody"] = body
    variants = []
    for name, query in catalog.queries.items():
        schemas[f"Params_{name}"] = _params_schema(query.params)
        variants.append(
            {
                "title": name,
                "description": query.description,
                "type": "object",
                "properties": {
                    "query": {"const": name},
                    "params": {"$ref": f"#/components/schemas/Params_{name}"},
                },
                "required": ["query"],
            }
        )
    for name, table in catalog.tables.items():
        variants.append(
            {
                "title": name,
                "description": table.description,
                "type": "object",
                "properties": {"table": {"const": name}},
                "required": ["table"],
            }
        )
    # Every body is a QueryBody; the variants document what each table or query accepts.
    body["anyOf"] = variants
    app.openapi_schema = document
    return document


def _params_schema(params: dict[str, ParamSpec]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: _param_schema(spec) for name, spec in params.items()},
        "required": [name for name, spec in params.items() if spec.is_required],
    }


def _param_schema(spec: ParamSpec) -> dict[str, Any]:
    item: dict[str, Any] = (
        {"enum": spec.values} if spec.item_type == "enum" else dict(_JSON_TYPES[spec.item_type])
    )
    bounds = (
        {"minimum": spec.min, "maximum": spec.max}
        if spec.item_type in ("int", "float")
        else {"minLength": spec.min_length, "maxLength": spec.max_length, "pattern": spec.pattern}
    )
    if not spec.is_list:
        item.update({k: v for k, v in bounds.items() if v is not None})
    schema = {"type": "array", "items": item} if spec.is_list else item
    if spec.description:
        schema["description"] = spec.description
    if spec.default is not None:
        schema["default"] = spec.describe()["default"]
    return schema
