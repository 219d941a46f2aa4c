"""Provenance recorded in every output file: versions, checkpoint hash, config."""

from __future__ import annotations

import platform
from importlib import metadata


def versions() -> dict[str, str]:
    """Versions of SqueezeLens and the libraries that shape its numbers."""
    out = {"python": platform.python_version()}
    for dist in (
        "squeezelens",
        "numpy",
        "tensorflow-cpu",
        "tensorflow",
        "keras",
        "opencv-python-headless",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def checkpoint_record(detector) -> dict:
    """{"path", "sha256"} of the detector's checkpoint (nulls for in-memory weights)."""
    info = getattr(detector, "checkpoint", None)
    return {"path": getattr(info, "path", None), "sha256": getattr(info, "sha256", None)}
