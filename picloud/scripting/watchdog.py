"""The second sandbox layer: kill the process when Lua overruns its deadline.

Nothing inside the process can stop a C loop inside Lua, so a thread watches
the runtimes it is given; when one of them has been executing the same
invocation past its hard deadline (timeout + grace), the watchdog calls
``on_overrun`` with that invocation (to record which app brought the host
down) and then sends SIGKILL to its own process. The host's supervisor (Ray)
restarts it. lupa releases the GIL while Lua runs, so the thread gets to run.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import CurrentInvocation
    from .runtime import AppRuntime

__all__ = ["Watchdog"]

_log = logging.getLogger(__name__)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Watchdog:
    """A daemon thread checking ``runtime.current`` every ``interval_s``.

    Guarantees: an invocation still executing Lua more than ``interval_s``
    after its hard deadline gets ``on_overrun`` called once and the process
    killed; ``on_overrun`` runs on the watchdog thread and should only record
    (its exceptions are logged and ignored — the kill happens regardless).
    """

    def __init__(
        self,
        on_overrun: Callable[[CurrentInvocation], None],
        *,
        interval_s: float = 0.1,
        kill: Callable[[], None] = _kill_self,
    ) -> None:
        self._on_overrun = on_overrun
        self._interval = interval_s
        self._kill = kill
        self._runtimes: set[AppRuntime] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="picloud-watchdog", daemon=True
        )

    def watch(self, runtime: AppRuntime) -> None:
        with self._lock:
            self._runtimes.add(runtime)

    def unwatch(self, runtime: AppRuntime) -> None:
        with self._lock:
            self._runtimes.discard(runtime)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> CurrentInvocation | None:
        """One round: the first overrunning invocation (and it is handled)."""
        with self._lock:
            runtimes = list(self._runtimes)
        now = time.monotonic()
        for runtime in runtimes:
            current = runtime.current
            if current is not None and now > current.hard_deadline:
                self._overrun(current)
                return current
        return None

    def _overrun(self, current: CurrentInvocation) -> None:
        try:
            self._on_overrun(current)
        except Exception:  # noqa: BLE001 - the kill must happen whatever the recorder did
            _log.exception("the watchdog's overrun callback failed")
        finally:
            self._kill()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.check()
