"""Where Lua runs: on the event loop (inline or within a slice) or on worker
threads, where a CPU-bound script cannot stall the loop; os.clock() is the
invocation's own CPU time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from picloud.domain.sdk_ops import SDK
from picloud.errors import ScriptPreempted, ScriptTimeout
from picloud.scripting import AppRuntime, Mode, ScriptLimits, cpu_ms_of
from tests.scripting.helpers import MemorySdk, Runner, assert_healthy

PURE_LUA_HOG = "local x = 0 while true do x = x + 1 end"
C_LEVEL_HOG = (
    'local s = string.rep("a", 1e7) for i = 1, 400 do s:find("[^a]") end return "done"'
)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(4, thread_name_prefix="lua-test")
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
async def threaded(executor: ThreadPoolExecutor) -> AsyncIterator[Runner]:
    limits = ScriptLimits(timeout_ms=800, max_instructions=10**12)
    rt = AppRuntime("threaded", limits, sdk=SDK, executor=executor)
    yield Runner(rt)
    rt.close()


async def _loop_lag_while(work: asyncio.Future[Any]) -> float:
    """The worst delay of a 1 ms sleep on this loop while ``work`` runs."""
    worst = 0.0
    while not work.done():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        worst = max(worst, time.perf_counter() - started)
    return worst


@pytest.mark.parametrize("source", [PURE_LUA_HOG, C_LEVEL_HOG])
async def test_a_hog_on_a_worker_thread_leaves_the_loop_free(
    threaded: Runner, source: str
) -> None:
    run = asyncio.ensure_future(threaded(source, mode=Mode.THREAD))
    lag = await _loop_lag_while(run)
    with pytest.raises(ScriptTimeout):
        await run
    assert lag < 0.05, f"the loop stalled {lag * 1000:.0f} ms"
    await assert_healthy(threaded)


async def test_a_sliced_run_is_stopped_at_its_slice_and_can_run_again(
    threaded: Runner,
) -> None:
    started = time.perf_counter()
    with pytest.raises(ScriptPreempted) as info:
        await threaded(PURE_LUA_HOG, mode=Mode.SLICED, slice_s=0.01)
    assert time.perf_counter() - started < 0.1
    assert cpu_ms_of(info.value) >= 5
    light = await threaded("return 1 + 1", mode=Mode.SLICED, slice_s=0.01)
    assert light.value == 2
    await assert_healthy(threaded)


async def test_a_slice_counts_the_scripts_cpu_not_the_time_it_waits(
    threaded: Runner,
) -> None:
    # The SDK call waits 50 ms (I/O, no CPU), five slices of wall time; then
    # enough Lua for the hook to look at the slice again.
    slow = MemorySdk(delay=0.05)
    source = (
        'local v = kv.collection("c"):get("k") '
        "local x = 0 for i = 1, 20000 do x = x + i end return x"
    )
    result = await threaded(source, sdk=slow, mode=Mode.SLICED, slice_s=0.01)
    assert result.value == sum(range(20001))
    assert [op for op, _ in slow.calls] == ["kv.get"]


async def test_a_c_level_hog_is_stopped_after_its_slice_too(threaded: Runner) -> None:
    started = time.perf_counter()
    with pytest.raises(ScriptPreempted):
        await threaded(C_LEVEL_HOG, mode=Mode.SLICED, slice_s=0.01)
    assert time.perf_counter() - started < 0.2


async def test_os_clock_is_the_invocation_own_cpu_time(threaded: Runner) -> None:
    busy = await threaded(
        "local t = os.clock() local x = 0 for i = 1, 3e6 do x = x + i end "
        "return {start = t, spent = os.clock() - t}",
        mode=Mode.THREAD,
    )
    assert busy.value["start"] < 0.005
    assert busy.value["spent"] > 0.001
    assert busy.cpu_ms >= busy.value["spent"] * 1000 * 0.9
    fresh = await threaded("return os.clock()", mode=Mode.THREAD)
    assert fresh.value < 0.005, "os.clock carried over from another invocation"


async def test_a_cancelled_thread_step_is_waited_for_and_the_runtime_lives(
    threaded: Runner,
) -> None:
    run = asyncio.ensure_future(threaded(PURE_LUA_HOG, mode=Mode.THREAD))
    await asyncio.sleep(0.05)
    run.cancel()
    started = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert time.perf_counter() - started < 0.2, "the step was not told to stop"
    assert threaded.runtime.current is None
    await assert_healthy(threaded)


async def test_sdk_calls_work_from_a_worker_thread(threaded: Runner) -> None:
    result = await threaded(
        'local c = kv.collection("t") c:set("k", 41) return c:get("k") + 1',
        mode=Mode.THREAD,
    )
    assert result.value == 42
    assert [op for op, _ in threaded.sdk.calls] == ["kv.set", "kv.get"]


async def test_a_run_that_reached_outside_is_never_preempted(threaded: Runner) -> None:
    """After an effect (http.fetch) a sliced run goes on, on a worker thread,
    instead of being stopped to run again from the start (which would send
    the request twice)."""
    threaded.sdk.answers["http.fetch"] = {"status": 200, "headers": {}, "body": "x"}
    result = await threaded(
        'local r = http.fetch("https://example.test/")\n'
        "local x = 0 for i = 1, 3e6 do x = x + 1 end\n"
        "return {status = r.status, x = x}",
        mode=Mode.SLICED,
        slice_s=0.001,
    )
    assert result.value == {"status": 200, "x": 3_000_000}
    assert [op for op, _ in threaded.sdk.calls] == ["http.fetch"]
    # Without the effect, the same work is stopped at its slice.
    with pytest.raises(ScriptPreempted):
        await threaded(
            'kv.collection("c"):get("k")\n'
            "local x = 0 for i = 1, 3e6 do x = x + 1 end return x",
            mode=Mode.SLICED,
            slice_s=0.001,
        )
    await assert_healthy(threaded)
