"""What importing a layer costs: the plain-Python actors load no Ray, the
pure layers load no database driver, Ray or web framework, and the CLI loads
no Ray (``picloud serve`` sets Ray's environment, token included, before
Ray is imported: Ray reads it at import)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("picloud.actors.app_actor", ["ray"]),
        ("picloud.actors", ["ray", "aiohttp"]),
        ("picloud.domain.names", ["ray", "asyncpg", "aiohttp", "lupa"]),
        ("picloud.events.pending", ["ray", "asyncpg", "aiohttp", "lupa"]),
        ("picloud.cli._main", ["ray"]),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(
    module: str, absent: list[str]
) -> None:
    probe = (
        f"import sys, {module}\n"
        f"print(','.join(m for m in {absent!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "", f"{module} loaded {done.stdout.strip()}"
