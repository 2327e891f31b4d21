"""The architecture is checked, not hoped for: the import-linter contracts of
pyproject.toml (layers, who may see asyncpg/Ray/aiohttp, packages' faces)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
from importlinter.domain.contract import ContractCheck

from tests.architecture.faces import FacesContract

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_linter_contract_is_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout
    assert "7 kept, 0 broken" in done.stdout, done.stdout


def _check_faces(imports: list[tuple[str, str]]) -> ContractCheck:
    graph = grimp.ImportGraph()
    for importer, imported in imports:
        graph.add_module(importer)
        graph.add_module(imported)
        graph.add_import(
            importer=importer,
            imported=imported,
            line_number=1,
            line_contents=f"import {imported}",
        )
    contract = FacesContract(
        name="faces",
        session_options={"root_packages": ["app"]},
        contract_options={"containers": ["app.store", "app.http"]},
    )
    return contract.check(graph, verbose=False)


def test_faces_refuse_an_import_of_another_package_private_module() -> None:
    check = _check_faces([("app.http.handlers", "app.store._sql")])
    assert not check.kept
    assert check.metadata["broken"] == [("app.http.handlers", "app.store._sql", [1])]


def test_faces_allow_public_modules_and_a_package_own_privates() -> None:
    check = _check_faces(
        [
            ("app.http.handlers", "app.store.api"),
            ("app.store.api", "app.store._sql"),
            ("app.store._sql", "app.store._errors"),
        ]
    )
    assert check.kept, check.metadata
