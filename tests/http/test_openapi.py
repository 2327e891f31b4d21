"""The OpenAPI document states what the server checks: every path and query
parameter, every body (KV values and document data too) and the name rules,
read from the declarations the server runs on."""

from __future__ import annotations

import re
from typing import Any

import pytest

import picloud.http.app  # noqa: F401  # registers every endpoint
from picloud.domain.names import COLLECTION, SCRIPT_NAME, SLUG, USERNAME
from picloud.http._api import ENDPOINTS
from picloud.http._openapi import openapi_document

DOC = openapi_document(ENDPOINTS.endpoints)
SCHEMAS = DOC["components"]["schemas"]
APP = "/api/v1/admin/apps/{app}"


def operation(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = DOC["paths"][path][method.lower()]
    return op


def parameters(method: str, path: str, where: str) -> dict[str, dict[str, Any]]:
    return {
        p["name"]: p["schema"]
        for p in operation(method, path)["parameters"]
        if p["in"] == where
    }


def test_every_path_parameter_is_declared_once() -> None:
    for path, operations in DOC["paths"].items():
        in_path = re.findall(r"\{(\w+)\}", path)
        for op in operations.values():
            declared = [p["name"] for p in op["parameters"] if p["in"] == "path"]
            assert declared == in_path, path


@pytest.mark.parametrize(
    ("path", "names", "most"),
    [
        (f"{APP}/kv/{{collection}}", {"prefix", "cursor", "limit"}, 1000),
        (f"{APP}/docs/{{collection}}", {"cursor", "limit"}, 1000),
        (
            f"{APP}/executions",
            {"status", "script", "trigger", "since", "until", "cursor", "limit"},
            500,
        ),
        (f"{APP}/dead-letters", {"resolved", "cursor", "limit"}, 500),
    ],
)
def test_lists_declare_their_paging_with_its_bounds(
    path: str, names: set[str], most: int
) -> None:
    query = parameters("GET", path, "query")
    assert set(query) == names
    assert query["limit"]["type"] == "integer"
    assert (query["limit"]["minimum"], query["limit"]["maximum"]) == (1, most)
    assert query["cursor"] == {"type": "string"}
    answer = operation("GET", path)["responses"]["200"]["content"]
    page = SCHEMAS[answer["application/json"]["schema"]["$ref"].split("/")[-1]]
    assert {"items", "cursor"} <= set(page["properties"])


def test_other_query_parameters_are_declared_with_their_values() -> None:
    executions = parameters("GET", "/api/v1/admin/apps/{app}/executions", "query")
    assert executions["status"]["enum"] == ["ok", "error"]
    force = parameters("DELETE", "/api/v1/admin/scripts/{id}", "query")["force"]
    assert force["type"] == "boolean"


def test_kv_and_document_writes_declare_their_bodies() -> None:
    kv = "/api/v1/admin/apps/{app}/kv/{collection}/{key}"
    body = operation("PUT", kv)["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["not"] == {"type": "null"}
    docs = "/api/v1/admin/apps/{app}/docs/{collection}"
    for method, path in [("POST", docs), ("PUT", docs + "/{id}")]:
        schema = operation(method, path)["requestBody"]["content"]["application/json"]
        assert schema["schema"]["type"] == "object"


def test_names_carry_the_patterns_of_their_rules() -> None:
    def field(struct: str, name: str) -> dict[str, Any]:
        schema: dict[str, Any] = SCHEMAS[struct]["properties"][name]
        return schema

    assert field("CreateAppBody", "slug")["pattern"] == SLUG.pattern
    assert field("CreateScriptBody", "name")["pattern"] == SCRIPT_NAME.pattern
    assert field("CreateUserBody", "username")["pattern"] == USERNAME.pattern
    trigger_collection = field("CreateTriggerBody", "collection")["anyOf"]
    assert {"type": "string", "pattern": COLLECTION.pattern} in trigger_collection
    kv_path = parameters("GET", "/api/v1/admin/apps/{app}/kv/{collection}", "path")
    assert kv_path["collection"]["pattern"] == COLLECTION.pattern
    assert {"pattern": SLUG.pattern} in kv_path["app"]["anyOf"]


def test_every_operation_answers_json_errors_and_states_its_success() -> None:
    for path, operations in DOC["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            assert "4XX" in responses, (method, path)
            assert any(code.startswith("2") for code in responses), (method, path)
