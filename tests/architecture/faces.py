"""An import-linter contract type: a package's ``_private`` modules are its own.

``containers`` lists packages; a module whose dotted name has a part starting
with ``_`` below one of them may only be imported from inside that package.
Everything else reaches the package through its public modules (its face).
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _private(module: str, container: str) -> bool:
    if not module.startswith(container + "."):
        return False
    parts = module[len(container) + 1 :].split(".")
    return any(p.startswith("_") and not p.startswith("__") for p in parts)


class FacesContract(Contract):
    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        broken: list[tuple[str, str, list[int]]] = []
        for container in self.containers:  # type: ignore[attr-defined]  # set by import-linter from the field
            for module in sorted(graph.modules):
                if not _private(module, container):
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(module)):
                    if importer == container or importer.startswith(container + "."):
                        continue
                    details = graph.get_import_details(
                        importer=importer, imported=module
                    )
                    lines = [d["line_number"] for d in details]
                    broken.append((importer, module, lines))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        rows: Any = check.metadata["broken"]
        for importer, module, lines in rows:
            where = ", ".join(f"l.{n}" for n in lines)
            output.print_error(f"{importer} imports the private {module} ({where})")
            output.new_line()
