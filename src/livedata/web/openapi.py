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
from livedata.web.errors import client_codes
from livedata.web.models import QueryBody
from livedata.web.responses import JSONResponse

SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the access file (LIVEDATA_AUTH_FILE): "
        "`Authorization: Bearer KEY`.",
    },
    "token": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An embed token (`livedata token issue`): `Authorization: Bearer TOKEN`.",
    },
}
HEADERS = {
    "X-Request-Id": {
        "description": "This request's id: the caller's own X-Request-Id when well-formed.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:+/=-]{1,128}$"},
    },
    "ETag": {
        "description": "Strong validator of the cache entry and variant; send it back in "
        "If-None-Match for a 304.",
        "schema": {"type": "string"},
    },
    "Cache-Status": {
        "description": "RFC 9211: how the cache answered (hit, fwd=miss; stored, ...).",
        "schema": {"type": "string", "examples": ["livedata; hit"]},
    },
    "X-Row-Count": {
        "description": "Rows in the body (absent when a big result is streamed as fetched).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-Truncated": {
        "description": "true when the source's max_rows cut the result.",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before sending the same request again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {
        "description": "The Bearer challenge (RFC 6750).",
        "schema": {"type": "string"},
    },
}
_HEADERS_BY_STATUS = {401: ("WWW-Authenticate",), 429: ("Retry-After",), 503: ("Retry-After",)}
_QUERY_HEADERS = {
    200: ("ETag", "Cache-Status", "X-Row-Count", "X-Truncated"),
    304: ("ETag", "Cache-Status"),
}
# Fields of every request for rows, whatever its target.
_SHAPING = ("columns", "filters", "order_by", "limit", "offset", "format")

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    """Public, but it lists only the tables and queries the caller's credentials may run."""
    return JSONResponse(build_openapi(request.app, request.app.state.catalog, caller_of(request)))


def build_openapi(app: FastAPI, catalog: Catalog, caller: Caller = ANONYMOUS) -> dict[str, Any]:
    document = copy.deepcopy(_endpoints(app))
    schemas = document["components"]["schemas"]
    shaping = {field: schemas["QueryBody"]["properties"][field] for field in _SHAPING}
    variants = []
    for name in caller.visible("query", catalog.queries):
        query = catalog.queries[name]
        schemas[f"Params_{name}"] = _params_schema(query.params)
        properties = {
            "query": {"const": name},
            "params": {"$ref": f"#/components/schemas/Params_{name}"},
        }
        variants.append(_variant(name, query.description, "query", properties, shaping))
    for name in caller.visible("table", catalog.tables):
        properties = {"table": {"const": name}}
        description = catalog.tables[name].description
        variants.append(_variant(name, description, "table", properties, shaping))
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
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    if app.state.authenticator is not None:  # every operation but the public ones needs it
        document["security"] = [{name: []} for name in SECURITY_SCHEMES]
        for path in PUBLIC & set(document["paths"]):
            for operation in document["paths"][path].values():
                operation["security"] = []
    document["components"]["headers"] = HEADERS
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                _describe_response(path, int(status), response)
    app.openapi_schema = document
    return document


def _describe_response(path: str, status: int, response: dict[str, Any]) -> None:
    """The headers we send with ``response``, and error examples with the codes we send."""
    names = ["X-Request-Id", *_HEADERS_BY_STATUS.get(status, ())]
    if path == "/query":
        names += _QUERY_HEADERS.get(status, ())
    response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in names}
    if status >= 400:
        examples = {
            code: {"value": _error_example(code)}
            for code, code_status in client_codes().items()
            if code_status == status
        }
        body = response.get("content", {}).get("application/json")
        if examples and body is not None:
            body["examples"] = examples


def _error_example(code: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": "What went wrong and what to do next.",
            "request_id": "3f8f528bef08ceae",
            "details": {},
        }
    }


def _variant(
    name: str,
    description: str,
    kind: str,
    properties: dict[str, Any],
    shaping: dict[str, Any],
) -> dict[str, Any]:
    """One target's request: its name and parameters, then the shaping every target takes."""
    return {
        "title": name,
        "description": description,
        "type": "object",
        "properties": {**properties, **shaping},
        "required": [kind],
        "additionalProperties": False,
    }


def _params_schema(params: dict[str, ParamSpec]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: spec.json_schema() for name, spec in params.items()},
        "required": [name for name, spec in params.items() if spec.is_required],
    }
