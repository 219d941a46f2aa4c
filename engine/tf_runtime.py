"""Lazy, quiet TensorFlow import shared by every module that needs it.

TensorFlow 2.21 prints absl/oneDNN start-up lines on stderr that no
environment variable silences; the import runs with the process's stderr
pointed at /dev/null (Python errors still propagate as exceptions).
"""

from __future__ import annotations

import os
import sys
import threading

_lock = threading.Lock()


def import_tf():
    """Import TensorFlow with its C++ start-up logging silenced; returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _lock:
        if "tensorflow" in sys.modules and hasattr(sys.modules["tensorflow"], "function"):
            return sys.modules["tensorflow"]
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        saved = os.dup(fd) if fd is not None else None
        try:
            if saved is not None:
                sys.stderr.flush()
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)
            import tensorflow as tf
        finally:
            if saved is not None:
                os.dup2(saved, fd)
                os.close(saved)
    return tf
