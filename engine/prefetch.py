"""Decode images in a background thread while the model computes.

OpenCV releases the GIL while decoding PNGs, so one reader thread overlaps
decoding with TensorFlow's forward pass on the other core.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def prefetch(
    items: Sequence[T], load: Callable[[T], R], depth: int = 4
) -> Iterator[tuple[T, R | BaseException]]:
    """Yield (item, load(item)) in order, loading up to ``depth`` items ahead.

    A load that raises yields the exception instead of a result, so the caller
    decides whether one bad file stops the job.  Stopping iteration early stops
    the reader thread.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader() -> None:
        for item in items:
            if stop.is_set():
                break
            try:
                result = load(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                result = exc
            q.put((item, result))
        q.put(_DONE)

    thread = threading.Thread(target=reader, name="prefetch", daemon=True)
    thread.start()
    try:
        while (got := q.get()) is not _DONE:
            yield got
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)
