"""Cancellation and progress for long jobs (evaluation, sweeps, conversion, training).

A job checks :meth:`CancelToken.raise_if_cancelled` between steps (images,
sweep points), so cancelling is prompt and never leaves half-written output.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from squeezelens.engine.errors import Cancelled

Progress = Callable[[int, int], None]  # (done, total)


class CancelToken:
    """A thread-safe flag a GUI or signal handler sets and a job polls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def check(cancel: CancelToken | None) -> None:
    """Raise Cancelled when a (possibly absent) token was cancelled."""
    if cancel is not None:
        cancel.raise_if_cancelled()
