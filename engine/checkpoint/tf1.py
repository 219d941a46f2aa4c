"""Read official TF1 (V2-format) checkpoints: ``<prefix>.index`` + ``.data-*``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import InputError


def read_tf1(prefix: Path) -> dict[str, np.ndarray]:
    """All float tensors of a TF1 checkpoint, optimizer slots and global_step dropped."""
    from engine.tf_runtime import import_tf

    tf = import_tf()

    data = sorted(prefix.parent.glob(prefix.name + ".data-*"))
    if not data:
        raise InputError("TF1 checkpoint has an .index but no .data-* file", prefix)
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        shapes = reader.get_variable_to_shape_map()
        out = {}
        for name in shapes:
            if name.endswith(("/kernels", "/biases")):
                out[name] = np.asarray(reader.get_tensor(name), dtype=np.float32)
    except Exception as exc:  # TF raises DataLossError, OpError, ... on corrupt files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read TF1 checkpoint: {msg[:200]}", prefix) from None
    if not out:
        raise InputError("TF1 checkpoint holds no SqueezeDet tensors (*/kernels, */biases)", prefix)
    return out
