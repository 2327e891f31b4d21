"""The OpenAPI document, generated from the endpoint table and msgspec types.

Everything a generated client needs comes from the declarations the server
itself runs on: path parameters (with the name rules of
:mod:`picloud.domain.names`), the query parameters of each endpoint's
``query=`` (type and bounds), request bodies (KV values and document data
included) and answers.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

import picloud
from picloud.domain.names import COLLECTION, USERNAME
from picloud.http._api import Endpoint
from picloud.http._fields import APP_REF
from picloud.http._params import Param

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
_PATH_PARAMS: dict[str, dict[str, Any]] = {
    "app": APP_REF,
    "collection": {"type": "string", "pattern": COLLECTION.pattern},
    "user": {
        "type": "string",
        "anyOf": [{"pattern": USERNAME.pattern}, {"format": "uuid"}],
        "description": "the user's username or id",
    },
}
_ANY_PATH_PARAM = {"type": "string", "minLength": 1}
_EXTRA_ANSWERS: dict[str, dict[str, Any]] = {
    # Health reports a degraded instance with 503: the one non-4xx failure
    # an endpoint declares (monitors read its body).
    "healthz": {"503": {"description": "Postgres or Ray is not answering"}},
}


def openapi_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    types = sorted(
        {t for e in endpoints for t in (e.body, e.answer) if t is not None},
        key=repr,
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
    if e.stream:
        ok["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    if e.text:
        ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
    op: dict[str, Any] = {
        "operationId": e.name,
        "summary": e.summary,
        "tags": [e.tag],
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": _PATH_PARAMS.get(name, _ANY_PATH_PARAM),
            }
            for name in _PARAM.findall(e.path)
        ]
        + [_query_parameter(p) for p in e.query],
        "responses": {
            str(e.status): ok,
            "4XX": error,
            **_EXTRA_ANSWERS.get(e.name, {}),
        },
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


def _query_parameter(param: Param) -> dict[str, Any]:
    schema = dict(param.schema)
    if param.default is not None and param.default != "":
        schema["default"] = param.default
    return {
        "name": param.name,
        "in": "query",
        "required": False,
        "description": param.description,
        "schema": schema,
    }
