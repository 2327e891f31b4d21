"""Modules: requests/s of an endpoint that requires three modules vs the same
logic inlined, and the extra latency of the first request after a module change.

Runs a real AppActor (the object an AppHost runs) on an embedded Postgres with
real Lua; no HTTP, which is the same for both endpoints. Every request is a
full invocation: the actor runs the script and appends its execution record
(group commit).

- throughput: per round ``--requests`` requests of each endpoint,
  ``--concurrency`` in flight, the two endpoints alternating batch by batch so
  that the machine's drift hits both alike (cache-hit path: modules compiled);
- runtime only: the same two scripts on the app's Lua runtime directly, with
  no actor and no Postgres, which shows the cost of require itself;
- first request after a change: save a new version of one module (through
  the actor, so this process has checked it), then time the next request and
  the one after it (the cache-hit path); "extra" is their difference. The
  same with the process's memo of checked sources emptied first shows the cost
  for a source that arrived only through the log (parsed once).

Figures are medians over rounds. Usage:
python bench/bench_modules.py [--requests 2000] [--concurrency 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from typing import Any

import asyncpg
from harness import ask, bench_actor, embedded_postgres

from picloud import event_loop
from picloud.actors.app_actor import AppActor
from picloud.actors.protocol import HttpReply
from picloud.config import Settings
from picloud.domain.commands import AddRoute, Invoke, SaveScript
from picloud.events.app import RequestRecord
from picloud.scripting import InvocationContext, RequestData
from picloud.scripting import modules as module_checks
from picloud.store import CommitSignals, EventLog
from picloud.store._pool import create_pool
from picloud.store.migrations import apply_migrations

TEXT = """local T = {}
function T.slug(s) return (s:lower():gsub("[^%w]+", "-")) end
function T.title(s) return (s:gsub("^%l", string.upper)) end
return T"""
CALC = """local C = {}
local RATE <const> = 0.2
function C.total(items)
  local sum = 0
  for _, it in ipairs(items) do sum = sum + it.price * it.qty end
  return sum * (1 + RATE)
end
return C"""
FMT = """local text = require("text")
local F = {}
function F.line(name, total)
  return text.title(name) .. ": " .. string.format("%.2f", total)
end
return F"""
BODY = """local items = {{price = 2.5, qty = 2}, {price = 1, qty = 3}}
local name = ctx.request.params.name
return {slug = text.slug(name), line = fmt.line(name, calc.total(items))}"""
MODULAR = (
    'local text = require("text")\nlocal calc = require("calc")\n'
    'local fmt = require("fmt")\n' + BODY
)
INLINE = f"""local text = (function() {TEXT} end)()
local calc = (function() {CALC} end)()
local fmt = (function()
{FMT.replace('local text = require("text")', "")}
end)()
{BODY}"""

_ids = itertools.count()
_rates = itertools.count(3)  # a new source for each change


async def build(log: EventLog, settings: Settings) -> tuple[AppActor, dict[str, str]]:
    actor = await bench_actor(log, settings)
    ids = {}
    for name, source in (("text", TEXT), ("calc", CALC), ("fmt", FMT)):
        ids[name] = (
            await ask(actor, SaveScript(name=name, kind="module", source=source))
        ).id
    for name, source in (("modular", MODULAR), ("inline", INLINE)):
        script = await ask(actor, SaveScript(name=name, source=source))
        route = await ask(
            actor, AddRoute(script_id=script.id, method="GET", path=f"/{name}/{{name}}")
        )
        ids[name] = route.id
    return actor, ids


async def request(actor: AppActor, route_id: str) -> float:
    req = RequestRecord(
        method="GET", path="/x/Blue Widget", params={"name": "blue widget"}
    )
    started = time.perf_counter()
    reply = await actor.submit(
        Invoke(execution_id=f"x{next(_ids)}", route_id=route_id, request=req), 60
    )
    elapsed = time.perf_counter() - started
    assert isinstance(reply, HttpReply), reply
    assert reply.status == 200, reply.body
    return elapsed


ORDERS = (("modular", "inline"), ("inline", "modular"))


async def interleaved(
    actor: AppActor, ids: dict[str, str], batches: int, concurrency: int
) -> dict[str, float]:
    """Requests/s of each endpoint, timed in alternating batches of
    ``concurrency`` requests in flight, so that drift hits both alike."""
    spent = dict.fromkeys(ORDERS[0], 0.0)
    for b in range(batches):
        for name in ORDERS[b % 2]:
            started = time.perf_counter()
            await asyncio.gather(
                *(request(actor, ids[name]) for _ in range(concurrency))
            )
            spent[name] += time.perf_counter() - started
    return {name: batches * concurrency / t for name, t in spent.items()}


async def runtime_interleaved(actor: AppActor, batches: int) -> dict[str, float]:
    """Invocations/s on the app's runtime alone (no actor, no Postgres), timed
    in alternating batches of 50."""
    invoker = actor._ctx.invoker  # the bench looks inside
    state = actor.state
    modules = invoker.modules(state)
    ctx = InvocationContext(
        execution_id="rt",
        app=actor.app,
        request=RequestData(method="GET", path="/", params={"name": "blue widget"}),
    )

    async def no_sdk(op: str, args: list[Any]) -> Any:
        raise AssertionError(op)

    compiled = {}
    for name in ORDERS[0]:
        script = state.script_named(name)
        assert script is not None
        compiled[name] = invoker.compiled(script)
    spent = dict.fromkeys(ORDERS[0], 0.0)
    for b in range(batches):
        for name in ORDERS[b % 2]:
            started = time.perf_counter()
            for _ in range(50):
                await invoker.runtime.invoke(compiled[name], ctx, no_sdk, modules)
            spent[name] += time.perf_counter() - started
    return {name: batches * 50 / t for name, t in spent.items()}


async def after_change(
    actor: AppActor, ids: dict[str, str], *, forget: bool
) -> tuple[float, float]:
    """(first request after saving a new ``calc``, the next one), in ms."""
    source = CALC.replace("0.2", f"0.{next(_rates)}")
    await ask(actor, SaveScript(script_id=ids["calc"], source=source))
    if forget:  # as if the source had arrived through the log only
        module_checks._memo._facts.clear()
    first = await request(actor, ids["modular"])
    steady = await request(actor, ids["modular"])
    return first * 1000, steady * 1000


def median(values: list[float]) -> float:
    return statistics.median(values)


async def throughput(
    actor: AppActor, ids: dict[str, str], args: argparse.Namespace
) -> None:
    await interleaved(actor, ids, 10, args.concurrency)  # warm-up: fill the caches
    rates: dict[str, list[float]] = {"modular": [], "inline": []}
    rt: dict[str, list[float]] = {"modular": [], "inline": []}
    batches = max(1, args.requests // args.concurrency)
    for r in range(args.rounds):
        got = await interleaved(actor, ids, batches, args.concurrency)
        got_rt = await runtime_interleaved(actor, max(1, args.requests // 50))
        for name in ORDERS[0]:
            rates[name].append(got[name])
            rt[name].append(got_rt[name])
        m, i, rm, ri = (
            got["modular"],
            got["inline"],
            got_rt["modular"],
            got_rt["inline"],
        )
        print(
            f"round {r + 1}: actor {m:,.0f} vs {i:,.0f} req/s ({m / i:.3f});"
            f" runtime {rm:,.0f} vs {ri:,.0f} inv/s ({rm / ri:.3f})"
        )
    for label, got_by in (("throughput", rates), ("runtime only", rt)):
        ratio = median([m / i for m, i in zip(*got_by.values(), strict=True)])
        unit = "req/s" if got_by is rates else "inv/s"
        print(
            f"{label} (median of {args.rounds} rounds): three modules"
            f" {median(got_by['modular']):,.0f} {unit}, inlined"
            f" {median(got_by['inline']):,.0f} {unit}; median ratio {ratio:.3f}"
            + (" (target >= 0.9)" if got_by is rates else "")
        )


async def change_latency(
    actor: AppActor, ids: dict[str, str], args: argparse.Namespace
) -> None:
    for forget, label in (
        (False, "saved through this process"),
        (True, "from the log only"),
    ):
        pairs = [
            await after_change(actor, ids, forget=forget) for _ in range(args.changes)
        ]
        first, steady = median([p[0] for p in pairs]), median([p[1] for p in pairs])
        extra = median([p[0] - p[1] for p in pairs])
        print(
            f"first request after a module change ({label}): {first:.2f} ms vs"
            f" {steady:.2f} ms cached; extra {extra:.2f} ms (median of {args.changes};"
            " target < 20 ms)"
        )


async def run(dsn: str, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.close()
    settings = Settings(db_pool_max=4)
    pool = await create_pool(dsn, settings)
    actor, ids = await build(EventLog(pool, CommitSignals()), settings)
    print(f"{args.concurrency} requests in flight, {args.requests} per round each")
    await throughput(actor, ids, args)
    await change_latency(actor, ids, args)
    await actor.close()
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args()
    with embedded_postgres() as (dsn, _, _):
        event_loop.run(run(dsn, args))


if __name__ == "__main__":
    main()
