"""The apps admin API end to end over HTTP against a running server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from picloud.events import (
    ApiKeyCreated,
    AppCreated,
    AppDeleted,
    AppUpdated,
    MemberSet,
    UserCreated,
)
from picloud.server import Server
from picloud.store import START
from tests.http.helpers import Api

pytestmark = [pytest.mark.ray, pytest.mark.server]


def assert_error(status: int, body: Any, expected_status: int, code: str) -> str:
    assert status == expected_status, body
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    return message


async def test_app_lifecycle_answers_the_resulting_state_and_records_events(
    api: Api, server: Server
) -> None:
    status, app = await api.call(
        "POST", "/api/v1/admin/apps", {"slug": "shop", "name": "Shop"}
    )
    assert status == 201
    assert set(app) == {"id", "slug", "name", "created_at", "updated_at"}
    assert (app["slug"], app["name"]) == ("shop", "Shop")

    for ref in (app["id"], "shop"):
        status, got = await api.call("GET", f"/api/v1/admin/apps/{ref}")
        assert (status, got) == (200, app)

    status, listed = await api.call("GET", "/api/v1/admin/apps")
    assert status == 200
    assert listed == {"items": [{**app, "dead_letters_unresolved": 0}]}

    status, renamed = await api.call(
        "PATCH", "/api/v1/admin/apps/shop", {"name": "The Shop", "slug": "the-shop"}
    )
    assert status == 200
    assert (renamed["id"], renamed["slug"], renamed["name"]) == (
        app["id"],
        "the-shop",
        "The Shop",
    )
    assert renamed["updated_at"] > app["updated_at"]
    status, _ = await api.call("GET", "/api/v1/admin/apps/shop")
    assert status == 404

    status, body = await api.call("DELETE", f"/api/v1/admin/apps/{app['id']}")
    assert (status, body) == (204, "")
    status, _ = await api.call("GET", f"/api/v1/admin/apps/{app['id']}")
    assert status == 404

    assert server.services is not None
    events, _ = await server.services.log.read_all(START, stream="system")
    # The fixture's admin and key come first; the creator becomes the owner.
    assert [type(r.event) for r in events] == [
        UserCreated,
        ApiKeyCreated,
        AppCreated,
        MemberSet,
        AppUpdated,
        AppDeleted,
    ]
    assert all(r.event.app_id == app["id"] for r in events[2:])  # type: ignore[attr-defined]  # app events


async def test_bad_input_gets_a_4xx_json_error_and_changes_nothing(api: Api) -> None:
    await api.call("POST", "/api/v1/admin/apps", {"slug": "taken", "name": "Taken"})
    cases: list[tuple[str, str, Any, bytes | None, int, str]] = [
        ("POST", "/api/v1/admin/apps", None, b"{not json", 400, "invalid_input"),
        ("POST", "/api/v1/admin/apps", None, b"", 400, "invalid_input"),
        ("POST", "/api/v1/admin/apps", None, b"[1, 2]", 400, "invalid_input"),
        ("POST", "/api/v1/admin/apps", {"name": "No slug"}, None, 400, "invalid_input"),
        ("POST", "/api/v1/admin/apps", {"slug": "x"}, None, 400, "invalid_input"),
        (
            "POST",
            "/api/v1/admin/apps",
            {"slug": 5, "name": "n"},
            None,
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps",
            {"slug": "Bad Slug", "name": "n"},
            None,
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps",
            {"slug": "-x", "name": "n"},
            None,
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps",
            {"slug": "a" * 64, "name": "n"},
            None,
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps",
            {"slug": "ok", "name": ""},
            None,
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps",
            {"slug": "ok", "name": "n", "x": 1},
            None,
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps",
            {"slug": "api", "name": "n"},
            None,
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/admin/apps",
            {"slug": "taken", "name": "Again"},
            None,
            409,
            "conflict",
        ),
        ("GET", "/api/v1/admin/apps/nope", None, None, 404, "not_found"),
        ("PATCH", "/api/v1/admin/apps/nope", {"name": "x"}, None, 404, "not_found"),
        ("PATCH", "/api/v1/admin/apps/taken", {}, None, 400, "invalid_input"),
        (
            "PATCH",
            "/api/v1/admin/apps/taken",
            {"slug": "NO"},
            None,
            400,
            "invalid_input",
        ),
        ("DELETE", "/api/v1/admin/apps/nope", None, None, 404, "not_found"),
        (
            "PUT",
            "/api/v1/admin/apps",
            {"slug": "x", "name": "y"},
            None,
            405,
            "method_not_allowed",
        ),
        ("GET", "/api/v1/admin/nothing-here", None, None, 404, "not_found"),
    ]
    for method, path, body, raw, expected, code in cases:
        status, answer = await api.call(method, path, body, raw=raw)
        message = assert_error(status, answer, expected, code)
        assert "Traceback" not in message
    status, listed = await api.call("GET", "/api/v1/admin/apps")
    assert [a["slug"] for a in listed["items"]] == ["taken"]


async def test_field_errors_name_the_field(api: Api) -> None:
    status, body = await api.call(
        "POST", "/api/v1/admin/apps", {"slug": "ok", "name": 3}
    )
    message = assert_error(status, body, 400, "invalid_input")
    assert message.startswith("name:")


async def test_renaming_onto_a_taken_slug_is_a_conflict(api: Api) -> None:
    await api.call("POST", "/api/v1/admin/apps", {"slug": "one", "name": "One"})
    await api.call("POST", "/api/v1/admin/apps", {"slug": "two", "name": "Two"})
    status, body = await api.call("PATCH", "/api/v1/admin/apps/two", {"slug": "one"})
    assert_error(status, body, 409, "conflict")


async def test_concurrent_creates_of_one_slug_make_exactly_one_app(api: Api) -> None:
    results = await asyncio.gather(
        *(
            api.call("POST", "/api/v1/admin/apps", {"slug": "race", "name": f"R{n}"})
            for n in range(8)
        )
    )
    assert sorted(status for status, _ in results) == [201] + [409] * 7


async def test_a_repeated_idempotency_key_creates_once(api: Api) -> None:
    headers = {"Idempotency-Key": "create-once"}
    first = await api.call(
        "POST", "/api/v1/admin/apps", {"slug": "idem", "name": "I"}, headers=headers
    )
    again = await api.call(
        "POST", "/api/v1/admin/apps", {"slug": "idem", "name": "I"}, headers=headers
    )
    assert first[0] == again[0] == 201
    assert first[1] == again[1]


async def test_openapi_document_describes_every_endpoint(api: Api) -> None:
    status, doc = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    create = doc["paths"]["/api/v1/admin/apps"]["post"]
    assert create["responses"]["201"]["content"]["application/json"]["schema"][
        "$ref"
    ].endswith("/AppRecord")
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = doc["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert set(body_schema["required"]) == {"slug", "name"}
    assert {"get", "patch", "delete"} <= set(doc["paths"]["/api/v1/admin/apps/{app}"])


async def test_healthz_reports_postgres_and_ray(api: Api) -> None:
    status, health = await api.call("GET", "/healthz")
    assert status == 200
    assert health["status"] == "ok"
    assert health["postgres"]["ok"] is True
    assert health["ray"]["ok"] is True
    assert health["ray"]["control_plane_pid"] > 0
