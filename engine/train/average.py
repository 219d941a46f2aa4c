"""Weight averaging of training snapshots (stochastic weight averaging, SWA).

Why: late in a run, at a small constant learning rate, SGD's weights wander
around a wide minimum, and the detector's AP measured on a few dozen objects
swings by several points from one snapshot to the next.  The plain mean of a
few evenly spaced snapshots sits nearer the middle of that minimum
(Izmailov et al., 2018): it scores as well as the best single snapshot without
picking one by its score on the evaluation split.  SqueezeDet has no batch
normalisation, so the mean needs no statistics recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec


@dataclass(frozen=True)
class AveragedWeights:
    """weights: official names -> float32 arrays (HWIO kernels); sources: the snapshots."""

    weights: dict[str, np.ndarray]
    spec: ArchSpec
    sources: tuple[str, ...]


def average_checkpoints(paths: list[str | Path]) -> AveragedWeights:
    """The element-wise mean (in float64, stored float32) of checkpoints of one model.

    Every checkpoint must have the same architecture (variant, input size, classes,
    anchors) and the same tensors; otherwise an :class:`InputError` names the first
    one that differs from the first checkpoint.
    """
    from squeezelens.engine.checkpoint import load_checkpoint

    if len(paths) < 2:
        raise InputError("averaging needs at least two checkpoints")
    first = load_checkpoint(paths[0])
    sums = {k: v.astype(np.float64) for k, v in first.weights.items()}
    for path in paths[1:]:
        ckpt = load_checkpoint(path)
        if ckpt.spec.to_dict() != first.spec.to_dict():
            raise InputError(f"another architecture than {first.path}", ckpt.path)
        if set(ckpt.weights) != set(sums):
            raise InputError(f"other tensors than {first.path}", ckpt.path)
        for name, value in ckpt.weights.items():  # same spec: the loader checked shapes
            sums[name] += value
    n = len(paths)
    weights = {k: (v / n).astype(np.float32) for k, v in sums.items()}
    return AveragedWeights(weights, first.spec, tuple(str(p) for p in paths))
