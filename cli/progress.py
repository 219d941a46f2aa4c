"""Progress on stderr through tqdm, as a ``(done, total)`` callable the engine calls.

The engine reports progress as ``progress(done, total)``; :class:`ProgressBar`
adapts that to one tqdm bar (rate and ETA on a terminal, a line every ~10 % in a
log file).  Messages printed while a bar runs go through :meth:`ProgressBar.write`
so they do not tear the bar.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    """A tqdm bar driven by ``(done, total)`` calls; closed when ``done`` reaches ``total``."""

    def __init__(self, label: str, unit: str = "it", stream=None) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self._bar: tqdm | None = None
        self._note = ""

    def _open(self, total: int, initial: int) -> tqdm:
        tty = getattr(self.stream, "isatty", lambda: False)()
        return tqdm(total=total, initial=initial, desc=self.label, unit=self.unit, file=self.stream,
                    dynamic_ncols=True, mininterval=0.1 if tty else 30.0,
                    miniters=None if tty else max(1, total // 10), leave=True)  # fmt: skip

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None or self._bar.total != total:
            self.close()
            self._bar = self._open(total, done)  # work done before (a resumed job) sets no rate
        if self._note:
            self._bar.set_postfix_str(self._note, refresh=False)
        self._bar.update(max(0, done - self._bar.n))
        if done >= total:
            self.close()

    def note(self, text: str) -> None:
        """Text shown after the bar's counts and rate (e.g. ``tasks 3/40``), from the next update."""
        self._note = text

    def write(self, message: str) -> None:
        """Print a line above the bar."""
        tqdm.write(message, file=self.stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
