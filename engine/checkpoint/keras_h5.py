"""Read HDF5 weight files of Keras re-implementations of SqueezeDet.

Layers are found by name (``conv1``, ``fire2/squeeze1x1`` or ``fire2_squeeze1x1``,
``conv12``); the weight kind by its dataset name (``kernel:0`` / ``bias:0``) or,
in Keras 3 ``.weights.h5`` files, by position under ``vars`` (0 kernel, 1 bias).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from squeezelens.engine.errors import InputError

_LAYER_RE = re.compile(r"(conv1|conv12|fire\d+[/_](?:squeeze1x1|expand1x1|expand3x3))(?![0-9])")


def _kind(dataset_path: str) -> str | None:
    parts = dataset_path.split("/")
    last = parts[-1].lower()
    if "kernel" in last:
        return "kernels"
    if "bias" in last:
        return "biases"
    if len(parts) >= 2 and parts[-2] == "vars" and last in ("0", "1"):
        return "kernels" if last == "0" else "biases"
    return None


def _official(dataset_path: str) -> str | None:
    if dataset_path.startswith("optimizer"):
        return None
    kind = _kind(dataset_path)
    matches = _LAYER_RE.findall(dataset_path)
    if kind is None or not matches:
        return None
    return f"{matches[-1].replace('_', '/')}/{kind}"


def read_keras_h5(path: Path) -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    official = _official(name)
                    if official and official not in out:
                        out[official] = np.asarray(obj[()], dtype=np.float32)

            root.visititems(visit)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read HDF5 weights ({exc})", path) from None
    if not out:
        raise InputError(
            "HDF5 file holds no SqueezeDet layers (conv1, fire2..fire11, conv12)", path
        )
    return out
