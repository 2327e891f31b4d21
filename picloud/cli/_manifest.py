"""A deploy folder: ``*.lua`` files and a ``picloud.toml`` manifest.

The layout ``picloud deploy`` reads and ``picloud pull`` writes::

    app = "shop"            # the app (``--app`` overrides it)
    prune = true            # remove what the app has and the folder does not

    [scripts.util]          # one table per script that is not a plain endpoint
    kind = "module"         # its source is util.lua

    [[routes]]
    method = "GET"
    path = "/orders/{id}"
    script = "get_order"    # scripts by name, never by id
    dispatch_mode = "sync"  # or "async", with an optional retry = {…}

    [[triggers]]
    kind = "kv"             # kv, docs, dead_letter, schedule
    script = "on_order"
    ops = ["set"]
    collection = "orders"

    [[triggers]]
    kind = "schedule"
    script = "nightly"
    cron = "0 3 * * *"
    timezone = "Europe/Paris"
    retry = {max_attempts = 5, base_ms = 1000}

    [cors]                  # left out: the app's policy is left as it is
    origins = ["https://shop.example"]

Every ``NAME.lua`` in the folder (not in subfolders) is the script ``NAME``;
a ``[scripts.NAME]`` table without its file is an error. The server checks
everything else (names, paths, cron, capabilities), all or nothing.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from picloud.errors import InvalidInput

__all__ = ["MANIFEST", "read_folder", "write_folder"]

MANIFEST = "picloud.toml"
_TOP = frozenset({"app", "prune", "scripts", "routes", "triggers", "cors"})
_SCRIPT = frozenset({"kind"})


def read_folder(folder: Path, app: str | None) -> tuple[str, dict[str, Any]]:
    """The app and the deploy body (``DesiredApp`` as JSON) a folder gives."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    manifest = _manifest(folder / MANIFEST)
    unknown = set(manifest) - _TOP
    if unknown:
        raise InvalidInput(f"{MANIFEST}: unknown keys {sorted(unknown)}")
    app = app or manifest.get("app")
    if not isinstance(app, str) or not app:
        raise InvalidInput(f'name the app: app = "…" in {MANIFEST}, or --app')
    declared = manifest.get("scripts", {})
    if not isinstance(declared, dict):
        raise InvalidInput(f"{MANIFEST}: [scripts] must be tables by script name")
    files = {path.stem: path for path in sorted(folder.glob("*.lua"))}
    missing = sorted(set(declared) - set(files))
    if missing:
        raise InvalidInput(f"{MANIFEST} names scripts with no .lua file: {missing}")
    scripts = [
        _script(name, path, declared.get(name, {})) for name, path in files.items()
    ]
    body: dict[str, Any] = {
        "scripts": scripts,
        "routes": manifest.get("routes", []),
        "triggers": manifest.get("triggers", []),
        "prune": manifest.get("prune", True),
    }
    if "cors" in manifest:
        body["cors"] = manifest["cors"]
    return app, body


def _manifest(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"{path}: {e}") from None


def _script(name: str, path: Path, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict) or set(table) - _SCRIPT:
        raise InvalidInput(f"{MANIFEST}: [scripts.{name}] takes only kind")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name} is not UTF-8 text") from None
    return {"name": name, "kind": table.get("kind", "endpoint"), "source": source}


def write_folder(  # noqa: PLR0913  # the parts of an app, each named
    folder: Path,
    *,
    app: str,
    scripts: list[dict[str, Any]],
    routes: list[dict[str, Any]],
    triggers: list[dict[str, Any]],
    cors: dict[str, Any] | None,
    replace: bool = False,
) -> list[Path]:
    """Write the layout :func:`read_folder` reads (records as the API answers
    them); the files written. A ``.lua`` file of a script the app does not
    have would be deployed as a new one: it is removed with ``replace``,
    else the folder is refused before anything is written."""
    names = {s["id"]: s["name"] for s in scripts}
    wanted = {folder / f"{script['name']}.lua" for script in scripts}
    stale = sorted(set(folder.glob("*.lua")) - wanted)
    if stale and not replace:
        listed = ", ".join(p.name for p in stale[:5])
        raise InvalidInput(
            f"{folder} holds scripts {app} does not have ({listed}); a deploy"
            " would add them: move them away, or pull with --replace"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.unlink()
    written = []
    for script in scripts:
        path = folder / f"{script['name']}.lua"
        path.write_text(script["source"], encoding="utf-8")
        written.append(path)
    manifest: dict[str, Any] = {"app": app}
    kinds = {s["name"]: {"kind": s["kind"]} for s in scripts if s["kind"] != "endpoint"}
    if kinds:
        manifest["scripts"] = kinds
    if routes:
        manifest["routes"] = [_route(r, names) for r in routes]
    if triggers:
        manifest["triggers"] = [_trigger(t, names) for t in triggers]
    if cors is not None:
        manifest["cors"] = cors
    path = folder / MANIFEST
    path.write_text(tomli_w.dumps(manifest), encoding="utf-8")
    return [*written, path]


def _route(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    route = {
        "method": record["method"],
        "path": record["path"],
        "script": names[record["script_id"]],
        "dispatch_mode": record["dispatch_mode"],
    }
    return route | _present(record, "capabilities", "retry")


def _trigger(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "kind": record["kind"],
        "script": names[record["script_id"]],
    }
    if record.get("ops"):
        trigger["ops"] = sorted(record["ops"])
    return trigger | _present(
        record, "collection", "capabilities", "retry", "cron", "timezone"
    )


def _present(record: dict[str, Any], *fields: str) -> dict[str, Any]:
    """The fields that are set (TOML has no null)."""
    return {f: record[f] for f in fields if record.get(f) is not None}
