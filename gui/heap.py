"""Keeping Python's full garbage collections off the UI thread's way.

Why: with TensorFlow and a model loaded the process tracks ~340,000 objects, and a
full (generation 2) collection of them takes 200-350 ms here (measured with
``gc.collect()``).  The interpreter runs one whenever enough survivors pile up, on
whichever thread happens to allocate, holding the interpreter lock throughout: the
window would freeze for that long.  Once a model is loaded its objects live as long
as the model, so :func:`settle` moves everything alive into the permanent
generation, and later collections scan only what is new (well under a
millisecond).  :func:`thaw`, before the next load, makes the frozen objects
collectable again, so a replaced model's reference cycles are freed by the
collector's next full pass instead of being kept for good.  No collection is forced
here: a forced one would itself be the 300 ms freeze.
"""

from __future__ import annotations

import gc


def thaw() -> None:
    """Make frozen objects collectable again (before a model is replaced)."""
    gc.unfreeze()


def settle() -> None:
    """Exempt every object alive now from future collections (after a model load)."""
    gc.freeze()


def collect_and_settle() -> int:
    """Free a replaced model, then settle again; returns the objects collected.

    A replaced model's objects form reference cycles, and they were frozen with
    everything else: thawed but not collected before the next :func:`settle`, they
    would be frozen again and kept for good.  Run it on the UI thread, right when a
    replacing load completes (the user is waiting for it anyway; a few hundred
    milliseconds once): a collection on a worker thread may free Qt wrappers that
    sit in garbage cycles, and Qt objects destroyed off their thread crash the
    process.
    """
    gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    return freed
