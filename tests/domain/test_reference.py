"""The committed scripting reference is the rendering of the tables."""

from __future__ import annotations

from pathlib import Path

from lupa.lua54 import LuaRuntime

from picloud.domain.luals import render_luals
from picloud.domain.reference import render_reference
from picloud.domain.sdk_ops import SDK_OPS
from picloud.events.trigger_kinds import TRIGGER_KINDS

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = DOCS / "sdk-reference.md"
LUALS = DOCS / "picloud.d.lua"


def test_the_committed_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render_reference(), (
        "docs/sdk-reference.md is stale: run "
        "python -m picloud.domain.reference > docs/sdk-reference.md"
    )


def test_every_operation_and_trigger_kind_is_in_the_reference() -> None:
    text = render_reference()
    for op in SDK_OPS:
        assert f"{op.function.name}(" in text, op.name
        assert op.needs.value in text
    for kind in TRIGGER_KINDS:
        assert f"### `{kind}`" in text


def test_the_committed_luals_definitions_are_up_to_date_and_parse() -> None:
    text = render_luals()
    assert LUALS.read_text() == text, (
        "docs/picloud.d.lua is stale: run "
        "python -m picloud.domain.luals > docs/picloud.d.lua"
    )
    lua = LuaRuntime(unpack_returned_tuples=True)
    loads, error = lua.eval(
        "function(src) local f, e = load(src, 'defs', 't', {}) return f ~= nil, e end"
    )(text)
    assert loads, error
    for op in SDK_OPS:
        assert f"{op.function.name}(" in text
