"""Fixtures for the sandbox tests: real Lua runtimes (lupa), an in-memory SDK
handler that behaves like the actor layer's for kv, and helpers to run a
source once and to check a runtime is still healthy after an attack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from picloud.domain.sdk_ops import SDK
from picloud.scripting import (
    AppRuntime,
    ScriptLimits,
)
from tests.scripting.helpers import (
    TEST_LIMITS,
    Runner,
)


@pytest.fixture
def limits() -> ScriptLimits:
    return TEST_LIMITS


@pytest.fixture
def runtime(limits: ScriptLimits) -> Iterator[AppRuntime]:
    rt = AppRuntime("app-a", limits, sdk=SDK)
    yield rt
    rt.close()


@pytest.fixture
def other_runtime(limits: ScriptLimits) -> Iterator[AppRuntime]:
    rt = AppRuntime("app-b", limits, sdk=SDK)
    yield rt
    rt.close()


@pytest.fixture
def run(runtime: AppRuntime) -> Runner:
    return Runner(runtime)


@pytest.fixture
def other(other_runtime: AppRuntime) -> Runner:
    return Runner(other_runtime)
