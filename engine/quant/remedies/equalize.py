"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization"), float to float.

Between two convolutions joined by a ReLU (and max-pooling, which commutes with
positive per-channel scales), dividing channel ``c`` of the first layer's kernel and
bias by ``s_c > 0`` and multiplying the second layer's input channel ``c`` by ``s_c``
leaves the network's function unchanged: ``relu(z / s) * s = relu(z)``.  Choosing
``s_c = sqrt(r1_c / r2_c)``, with ``r1_c`` the largest magnitude of the first
kernel's output channel ``c`` and ``r2_c`` that of the second kernel's input
channel ``c``, makes both ``sqrt(r1_c r2_c)``: the ranges of a layer's channels
come closer together, which is what global, group and layer scales need.

SqueezeDet's junctions (:mod:`engine.model.topology`): conv1 -> (pool) ->
fire2/squeeze1x1; each squeeze -> its two expands (one scale per squeeze channel,
from both expands' input ranges together); each fire's concatenated expands ->
(pool) -> the next squeeze (the last fire's -> ConvDet).  A layer sits in two
junctions (its inputs and its outputs), so the junctions are equalized in turn
until no scale moves by more than :data:`TOLERANCE` (at most :data:`MAX_SWEEPS`).
A channel that is all zero on either side keeps scale 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from squeezelens.engine.model.topology import Junction, junctions

TOLERANCE = 1e-3  # largest |log s| of a sweep that ends the iteration
MAX_SWEEPS = 20  # later sweeps move scales by a few per cent (measured), at 20 ms each


def _producer_ranges(w: Mapping[str, np.ndarray], junction: Junction) -> np.ndarray:
    return np.concatenate(
        [np.abs(w[f"{p}/kernels"]).max(axis=(0, 1, 2)) for p in junction.producers]
    )


def _consumer_ranges(w: Mapping[str, np.ndarray], junction: Junction) -> np.ndarray:
    per_layer = [np.abs(w[f"{c}/kernels"]).max(axis=(0, 1, 3)) for c in junction.consumers]
    return np.max(per_layer, axis=0)


def _apply(w: dict[str, np.ndarray], junction: Junction, scale: np.ndarray) -> None:
    start = 0
    for producer in junction.producers:
        kernel = w[f"{producer}/kernels"]
        part = scale[start : start + kernel.shape[-1]]
        start += kernel.shape[-1]
        w[f"{producer}/kernels"] = kernel / part
        w[f"{producer}/biases"] = w[f"{producer}/biases"] / part
    for consumer in junction.consumers:
        w[f"{consumer}/kernels"] = w[f"{consumer}/kernels"] * scale[None, None, :, None]


def equalization_scales(weights: Mapping[str, np.ndarray], junction: Junction) -> np.ndarray:
    """``s_c = sqrt(r1_c / r2_c)`` of one junction (1 where either range is 0)."""
    r1 = _producer_ranges(weights, junction)
    r2 = _consumer_ranges(weights, junction)
    live = (r1 > 0) & (r2 > 0)
    return np.where(live, np.sqrt(np.where(live, r1, 1.0) / np.where(live, r2, 1.0)), 1.0)


def equalize(weights: Mapping[str, np.ndarray], variant: str) -> dict[str, np.ndarray]:
    """An equalized copy of SqueezeDet ``weights`` (official names; float32 results, computed
    in float64); entries that are not kernels or biases are passed through."""
    params = [name for name in weights if name.endswith(("/kernels", "/biases"))]
    w = {name: np.asarray(weights[name], np.float64) for name in params}
    links = junctions(variant)
    for _ in range(MAX_SWEEPS):
        moved = 0.0
        for junction in links:
            scale = equalization_scales(w, junction)
            moved = max(moved, float(np.max(np.abs(np.log(scale)))))
            _apply(w, junction, scale)
        if moved < TOLERANCE:
            break
    return {name: w[name].astype(np.float32) if name in w else v for name, v in weights.items()}
