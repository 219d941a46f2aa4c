"""Lazy, quiet TensorFlow import shared by every module that needs it."""

from __future__ import annotations

import os


def import_tf():
    """Import TensorFlow with its C++ logging silenced; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf
