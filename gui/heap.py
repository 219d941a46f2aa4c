"""Keeping Python's full garbage collections off the UI thread's way.

Why: with TensorFlow and a model loaded the process tracks ~340,000 objects, and a
full (generation 2) collection of them takes 200-350 ms here (measured with
``gc.collect()``).  The interpreter runs one whenever enough survivors pile up, on
whichever thread happens to allocate, holding the interpreter lock throughout: the
window would freeze for that long.  While a model loads (TensorFlow's import builds
most of those objects) the collector is paused (:func:`loading`); once loaded, the
model's objects live as long as the model, so everything alive is moved into the
permanent generation and later collections scan only what is new (well under a
millisecond).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading() -> Iterator[None]:
    """Around a model load on a worker: no collection while TensorFlow is imported and the
    model built (each full one held the interpreter lock for 100-300 ms, so the UI thread
    stalled; measured in benchmarks/bench_gui.py), then everything alive is frozen before
    the collector resumes, so its first run does not scan the whole new heap either.
    Freezing frees nothing, so it is safe off the UI thread (see :func:`settle`)."""
    from squeezelens.engine.tf_runtime import graph_building

    with graph_building():  # pauses the collector (nests with TensorFlow's own pauses)
        yield
        gc.freeze()


def settle(replaced: bool = False) -> int:
    """Exempt every object alive now from future collections (after a model load);
    returns the objects collected first.

    replaced: the load replaced a model.  Its objects form reference cycles and were
    frozen with everything else, so they are thawed and collected once before the
    freeze, else they would be kept for good.  That one full collection (a few
    hundred milliseconds, while the user waits for the load anyway) must run on the
    UI thread: on a worker it may free Qt wrappers that sit in garbage cycles, and a
    Qt object destroyed off its thread crashes the process.
    """
    freed = 0
    if replaced:
        gc.unfreeze()
        freed = gc.collect()
    gc.freeze()
    return freed
