"""Progress of a long command on stderr: a bar on a terminal, else a plain
line now and then (a log file or CI gets no carriage returns)."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 30
_REDRAW_S = 0.1


class Progress:
    """Counts ``what`` done out of ``total`` (None: unknown) onto ``out``."""

    def __init__(
        self,
        out: TextIO,
        *,
        total: int | None,
        what: str = "events",
        every_s: float = 10.0,
    ) -> None:
        """A plain line goes out every ``every_s`` when ``out`` is no terminal
        (none for a command that ends sooner)."""
        self._out = out
        self._tty = out.isatty()
        self._total = total
        self._what = what
        self._every = _REDRAW_S if self._tty else every_s
        self._started = time.monotonic()
        self._shown = self._started
        self.done = 0

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._shown >= self._every:
            self._shown = now
            self._show(now, final=False)

    def finish(self) -> None:
        """The last word: the bar completed, or one line if it ran long."""
        now = time.monotonic()
        if self._tty or now - self._started >= self._every:
            self._show(now, final=True)

    def _show(self, now: float, *, final: bool) -> None:
        rate = self.done / max(now - self._started, 1e-9)
        of = "" if self._total is None else f" of {self._total:,}"
        text = f"{self.done:,}{of} {self._what} ({rate:,.0f}/s)"
        if not self._tty:
            self._out.write(f"picloud: {text}{' done' if final else ''}\n")
        else:
            bar = ""
            if self._total:
                filled = min(_WIDTH, _WIDTH * self.done // self._total)
                bar = "[" + "#" * filled + "." * (_WIDTH - filled) + "] "
            self._out.write(f"\r{bar}{text}" + ("\n" if final else ""))
        self._out.flush()
