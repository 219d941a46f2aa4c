"""Lazy, quiet TensorFlow import shared by every module that needs it.

TensorFlow 2.21 prints absl/oneDNN start-up lines on stderr that no
environment variable silences; the import runs with the process's stderr
pointed at /dev/null (Python errors still propagate as exceptions; see
:mod:`engine.tf_quiet` for the rest of TensorFlow's chatter).

The import is also made kind to other threads (a GUI's event loop): Python loads
an extension module's shared libraries holding the interpreter lock, and
TensorFlow's (~850 MB) took 0.2-0.5 s to map and initialise, a freeze of every
other thread; :func:`preload_libraries` maps them first through a ctypes call,
which releases the lock.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
            preload_libraries()
            import tensorflow as tf
    return tf


def preload_libraries() -> list[str]:
    """Map TensorFlow's big shared libraries with the interpreter lock released (Linux);
    the import then finds them loaded.  Best effort: returns the libraries mapped, and a
    library that is missing or refuses is left to the import itself."""
    spec = importlib.util.find_spec("tensorflow")  # finds the package without importing it
    if not sys.platform.startswith("linux") or spec is None or not spec.origin:
        return []
    try:
        dlopen = ctypes.CDLL(None).dlopen  # a ctypes call releases the interpreter lock
    except (OSError, AttributeError):
        return []
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    folder = Path(spec.origin).parent
    loaded = []
    for pattern in ("libtensorflow_framework.so.*", "libtensorflow_cc.so.*"):
        for lib in sorted(folder.glob(pattern))[:1]:
            if dlopen(str(lib).encode(), os.RTLD_NOW):  # local, as the import loads them
                loaded.append(lib.name)
    return loaded


# Imported by TensorFlow, and slow to initialise while holding the interpreter lock:
# ml_dtypes registers its numpy types' loops one by one (0.3-1 s measured).
LOCK_HOLDING_MODULES = ("ml_dtypes",)


def import_lock_holders() -> None:
    """Import now what TensorFlow's import would later initialise holding the interpreter
    lock for long: a GUI calls this before its first paint, so a model loading on a worker
    never freezes the window (TensorFlow itself is not imported)."""
    for name in LOCK_HOLDING_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


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


@contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """TensorFlow's op determinism while the block runs, when ``enabled`` (it is
    process-wide, so the previous setting comes back afterwards)."""
    if not enabled:
        yield
        return
    tf = import_tf()
    from tensorflow.python.framework import config as tf_config  # the switch back is not public

    was_on = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_on:
            tf_config.disable_op_determinism()
