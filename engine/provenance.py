"""Provenance recorded in every output file: versions, checkpoint hash, config, calibration set."""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

import numpy as np

DISTRIBUTIONS = (
    "squeezelens",
    "numpy",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "ai-edge-litert",
    "opencv-python-headless",
)


def versions() -> dict[str, str]:
    """Versions of SqueezeLens and the libraries that shape its numbers (installed ones only)."""
    out = {"python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def checkpoint_record(detector) -> dict:
    """{"path", "sha256"} of the detector's checkpoint (nulls for in-memory weights)."""
    info = getattr(detector, "checkpoint", None)
    return {"path": getattr(info, "path", None), "sha256": getattr(info, "sha256", None)}


def weights_sha256(weights: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of a weights dict: each tensor's name, shape and float32 bytes, by name."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name], dtype=np.float32)
        digest.update(f"{name}{a.shape}".encode())
        digest.update(a.data)
    return digest.hexdigest()


def file_list_sha256(paths: Iterable[str | os.PathLike]) -> str:
    """SHA-256 of a set of files: their absolute paths and sizes, in sorted order.

    Identifies a calibration set cheaply (no file is read); another folder, an
    added or removed image, or a changed size gives another hash.
    """
    digest = hashlib.sha256()
    for path in sorted(str(Path(p).resolve()) for p in paths):
        size = os.stat(path).st_size if os.path.exists(path) else -1
        digest.update(f"{path}\t{size}\n".encode())
    return digest.hexdigest()


def calibration_record(paths: Iterable[str | os.PathLike], source: str | None = None) -> dict:
    """{"count", "sha256", "source"} of a calibration image set (see :func:`file_list_sha256`)."""
    paths = list(paths)
    return {"count": len(paths), "sha256": file_list_sha256(paths), "source": source}


def model_sha256(detector) -> str:
    """The checkpoint's sha256, or :func:`weights_sha256` of the float weights (no checkpoint
    file): what identifies a detector's weights in cache keys."""
    if detector.checkpoint is not None and detector.checkpoint.sha256:
        return detector.checkpoint.sha256
    return weights_sha256(detector.float_weights)


def images_sha256(images: Iterable[np.ndarray]) -> str:
    """sha256 over decoded images' shapes, dtypes and pixels, in order (the cache key of a
    calibration set: the INT8 conversion's and the remedies')."""
    h = hashlib.sha256()
    for im in images:
        a = np.ascontiguousarray(im)
        h.update(f"{a.shape}{a.dtype.str};".encode())
        h.update(a.data)
    return h.hexdigest()
