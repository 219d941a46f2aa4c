"""Load items (decode and preprocess images) in background threads.

OpenCV releases the GIL while decoding PNGs and resizing, so loader threads run
in parallel with Python and TensorFlow.  Two ways:

- :func:`prefetch`: one reader thread runs ahead of the consumer all the time, for
  consumers whose own work leaves a core free (e.g. numpy preprocessing);
- :func:`load_in_bursts`: the next few items are loaded at once on every core while
  the consumer waits, then the consumer has the whole machine.  For a consumer that
  keeps every core busy (TensorFlow's forward pass uses a thread per core), a reader
  running beside it only takes turns with TensorFlow's threads, which then wait for
  one another; a burst costs a fraction of the loading time instead;
- :func:`load_adaptively`: tries both on the first items and keeps the faster (which
  one wins depends on the machine: on a busy one the model leaves cores idle, and
  the reader beside it is free).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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


MAX_BURST = 4


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_in_bursts(
    items: Sequence[T], load: Callable[[T], R], workers: int | None = None
) -> Iterator[tuple[T, R | BaseException]]:
    """Yield (item, load(item)) in order, loading ``workers`` items at a time in parallel.

    ``workers`` defaults to the usable CPUs (at most :data:`MAX_BURST`).  The loaders
    are idle while the consumer handles a burst.  A load that raises yields the
    exception instead of a result; stopping iteration early waits for the loads in
    flight (one burst at most).
    """
    workers = max(1, min(MAX_BURST, usable_cpus()) if workers is None else int(workers))
    items = list(items)

    def safe(item: T) -> R | BaseException:
        try:
            return load(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            return exc

    if not items:
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="prefetch") as pool:
        for start in range(0, len(items), workers):
            burst = items[start : start + workers]
            yield from zip(burst, list(pool.map(safe, burst)))


def _timed(gen: Iterator, seconds: list[float]) -> Iterator:
    """Pass ``gen`` through, appending the time from each item to the next to ``seconds``
    (the consumer's work on an item plus the wait for the next one)."""
    last = None
    for value in gen:
        now = time.perf_counter()
        if last is not None:
            seconds.append(now - last)
        last = now
        yield value


def load_adaptively(
    items: Sequence[T], load: Callable[[T], R], probe: int = 6
) -> Iterator[tuple[T, R | BaseException]]:
    """Yield (item, load(item)) in order: ``probe`` items loaded in bursts, ``probe`` with a
    reader ahead, then the rest the way whose items went through faster.

    Each way is timed from its first item to its last (the consumer's work included), so
    a reader's start-up is not counted.  Fewer than ``3 * probe`` items load in bursts.
    """
    items = list(items)
    if len(items) < 3 * probe:
        yield from load_in_bursts(items, load)
        return
    bursts: list[float] = []
    ahead: list[float] = []
    yield from _timed(load_in_bursts(items[:probe], load), bursts)
    yield from _timed(prefetch(items[probe : 2 * probe], load), ahead)
    faster = prefetch if sum(ahead) / len(ahead) < sum(bursts) / len(bursts) else load_in_bursts
    yield from faster(items[2 * probe :], load)
