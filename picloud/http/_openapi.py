"""The OpenAPI document, generated from the endpoint table and msgspec types."""

from __future__ import annotations

import re
from typing import Any

import msgspec

import picloud
from picloud.http._api import Endpoint

__all__ = ["openapi_document"]

_PARAM = re.compile(r"\{(\w+)[^}]*\}")
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def openapi_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    types = sorted(
        {t for e in endpoints for t in (e.body, e.answer) if t is not None},
        key=lambda t: t.__name__,
    )
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    schema_of = dict(zip(types, schemas, strict=True))
    components["Error"] = _ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        path = _PARAM.sub(r"{\1}", e.path)
        paths.setdefault(path, {})[e.method.lower()] = _operation(e, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {"title": "PiCloud admin API", "version": picloud.__version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "picloud_session",
                },
            },
        },
    }


def _operation(e: Endpoint, schema_of: dict[Any, Any]) -> dict[str, Any]:
    error = {
        "description": "the caller's mistake",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
        },
    }
    ok: dict[str, Any] = {"description": "success"}
    if e.answer is not None:
        ok["content"] = {"application/json": {"schema": schema_of[e.answer]}}
    op: dict[str, Any] = {
        "operationId": e.name,
        "summary": e.summary,
        "tags": [e.tag],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(e.path)
        ],
        "responses": {str(e.status): ok, "4XX": error},
    }
    if e.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_of[e.body]}},
        }
    if e.needs is not None:
        op["security"] = [{"bearer": []}, {"session": []}]
        op["x-capability"] = e.needs
    return op
