"""The OpenAPI document: FastAPI's, plus the request body and each named query's parameters."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi

from livedata.auth.caller import ANONYMOUS, Caller
from livedata.catalog import Catalog
from livedata.params import ParamSpec
from livedata.web.auth import PUBLIC, caller_of
from livedata.web.models import QueryBody
from livedata.web.responses import JSONResponse

_JSON_TYPES = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    """Public, but it lists only the tables and queries the caller's credentials may run."""
    return JSONResponse(build_openapi(request.app, request.app.state.catalog, caller_of(request)))


def build_openapi(app: FastAPI, catalog: Catalog, caller: Caller = ANONYMOUS) -> dict[str, Any]:
    document = copy.deepcopy(_endpoints(app))
    schemas = document["components"]["schemas"]
    variants = []
    for name in caller.visible("query", catalog.queries):
        query = catalog.queries[name]
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
    for name in caller.visible("table", catalog.tables):
        variants.append(
            {
                "title": name,
                "description": catalog.tables[name].description,
                "type": "object",
                "properties": {"table": {"const": name}},
                "required": ["table"],
            }
        )
    # Every body is a QueryBody; the variants document what each table or query accepts.
    if variants:
        schemas["QueryBody"]["anyOf"] = variants
    return document


def _endpoints(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the request body's schema: the same for every caller."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    body = QueryBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body.pop("$defs", {}))
    schemas["QueryBody"] = body
    if app.state.authenticator is not None:  # every operation but the public ones needs it
        bearer = {"type": "http", "scheme": "bearer", "description": "API key or embed token."}
        document["components"]["securitySchemes"] = {"bearer": bearer}
        document["security"] = [{"bearer": []}]
        for path in PUBLIC & set(document["paths"]):
            for operation in document["paths"][path].values():
                operation["security"] = []
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
