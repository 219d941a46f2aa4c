"""Lazy, quiet TensorFlow import shared by every module that needs it.

TensorFlow 2.21 prints absl/oneDNN start-up lines on stderr that no
environment variable silences; the import runs with the process's stderr
pointed at /dev/null (Python errors still propagate as exceptions; see
:mod:`engine.tf_quiet` for the rest of TensorFlow's chatter).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from squeezelens.engine.tf_quiet import import_quietly

_lock = threading.Lock()
_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


def import_tf():
    """Import TensorFlow with its C++ start-up logging silenced; returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _lock:
        if "tensorflow" in sys.modules and hasattr(sys.modules["tensorflow"], "function"):
            return sys.modules["tensorflow"]
        with import_quietly():
            import tensorflow as tf
    return tf


@contextmanager
def graph_building() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while TensorFlow builds or traces a graph.

    Why: a collection run by *another* thread (a GUI's event loop, say) that frees
    TensorFlow objects while this thread is inside graph construction crashed the
    process (seen: a segmentation fault in the UI thread's "Garbage-collecting" during a
    Keras export on a worker).  Reference counting still frees acyclic garbage; the
    collector resumes when the outermost block ends.  Nests and is thread-safe.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()
