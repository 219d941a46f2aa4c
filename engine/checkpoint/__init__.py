"""Checkpoint import/export: every format becomes ``dict[str, np.ndarray]`` keyed by
official SqueezeDet tensor names (``fire2/squeeze1x1/kernels``, HWIO kernels)."""

from squeezelens.engine.checkpoint.loader import Checkpoint, load_checkpoint, read_sidecar
from squeezelens.engine.checkpoint.writers import save_npz, save_tf1

__all__ = ["Checkpoint", "load_checkpoint", "read_sidecar", "save_npz", "save_tf1"]
