"""Deadlines, the frozen heap and the memory given back (picloud.event_loop),
on the loop tests run on."""

from __future__ import annotations

import asyncio
import gc

import psutil

from picloud.actors.invoker import Invoker
from picloud.config import Settings
from picloud.event_loop import Deadlines, deadlines, freeze_heap, release_memory
from picloud.scripting import AppInfo


async def test_a_deadline_fires_once_after_its_time_within_a_tick() -> None:
    loop = asyncio.get_running_loop()
    pending = Deadlines(tick=0.01)
    fired: list[tuple[str, float]] = []
    when = loop.time() + 0.2
    pending.arm(when, lambda name: fired.append((name, loop.time())), "a")
    await asyncio.sleep(0.05)
    assert fired == []
    await asyncio.sleep(0.35)
    [(name, at)] = fired
    assert name == "a"
    assert at >= when  # by the loop's clock (uvloop's moves in whole ms)
    assert at - when < 0.15  # a tick (10 ms) late, with room for a loaded machine


async def test_a_disarmed_deadline_never_fires_and_others_still_do() -> None:
    loop = asyncio.get_running_loop()
    pending = Deadlines(tick=0.01)
    fired: list[str] = []
    early = pending.arm(loop.time() + 0.02, fired.append, "disarmed")
    pending.arm(loop.time() + 0.04, fired.append, "kept")
    pending.disarm(early)
    pending.disarm(early)  # twice is harmless
    await asyncio.sleep(0.3)
    assert fired == ["kept"]


async def test_deadlines_can_be_armed_again_after_all_fired() -> None:
    loop = asyncio.get_running_loop()
    pending = Deadlines(tick=0.01)
    fired: list[int] = []
    pending.arm(loop.time(), fired.append, 1)
    await asyncio.sleep(0.2)
    pending.arm(loop.time(), fired.append, 2)  # the sweep had stopped meanwhile
    await asyncio.sleep(0.2)
    assert fired == [1, 2]


async def test_each_loop_has_its_own_deadlines() -> None:
    here = deadlines()
    assert deadlines() is here

    async def other() -> Deadlines:
        return deadlines()

    elsewhere = await asyncio.to_thread(asyncio.run, other())
    assert elsewhere is not here


def test_freeze_heap_moves_what_lives_now_out_of_the_collectors_reach() -> None:
    before = gc.get_freeze_count()
    kept = [[n] for n in range(1000)]  # container objects the collector tracks
    try:
        freeze_heap()
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()


def test_the_memory_of_closed_sandboxes_goes_back_to_the_system() -> None:
    def uss() -> float:
        return float(psutil.Process().memory_full_info().uss) / 2**20

    settings = Settings()
    release_memory()
    before = uss()
    invokers = [
        Invoker(AppInfo(id=f"a{n}", slug=f"a{n}", name="a"), settings)
        for n in range(150)
    ]
    grown = uss() - before
    assert grown > 20, grown  # ~250 KB a sandbox
    for invoker in invokers:
        invoker.close()
    del invokers, invoker
    release_memory()
    assert uss() - before < grown * 0.4, (before, grown, uss())
