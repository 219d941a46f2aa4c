"""The bundled sample: generated KITTI-format scenes and the project's own default model.

``squeezelens gui``, ``detect`` and ``evaluate`` fall back to these when no
checkpoint or folder is given (and say so).
"""

from __future__ import annotations

from pathlib import Path

import squeezelens.sample_data as sample_data

SAMPLE_ROOT = Path(sample_data.__file__).resolve().parent
DEFAULT_CHECKPOINT = SAMPLE_ROOT / "model" / "squeezedet_synth.npz"
DEFAULT_KITTI_ROOT = SAMPLE_ROOT / "kitti"


def default_checkpoint() -> Path | None:
    """The bundled default checkpoint, or None when this install has none."""
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None


def default_kitti_root() -> Path | None:
    """The bundled sample KITTI folder, or None when this install has none."""
    return DEFAULT_KITTI_ROOT if (DEFAULT_KITTI_ROOT / "training").is_dir() else None
