"""Anchor grid of SqueezeDet, laid out exactly as the original configuration.

Order is (grid row, grid column, anchor): the ConvDet output reshaped to
``(-1, ...)`` lines up with it.  Centres are ``(i+1)*W/(gridW+1)``.
"""

from __future__ import annotations

import numpy as np

from squeezelens.engine.model.spec import ArchSpec


def anchor_grid(spec: ArchSpec) -> np.ndarray:
    """Anchors of a spec: (gridH*gridW*K, 4) float64, cxcywh in network-input pixels."""
    gw, gh = spec.grid_size
    w, h = spec.input_size
    shapes = np.asarray(spec.anchor_shapes, dtype=np.float64)  # (K, 2)
    k = len(shapes)
    cx = np.arange(1, gw + 1, dtype=np.float64) * float(w) / (gw + 1)
    cy = np.arange(1, gh + 1, dtype=np.float64) * float(h) / (gh + 1)
    grid = np.empty((gh, gw, k, 4), dtype=np.float64)
    grid[..., 0] = cx[None, :, None]
    grid[..., 1] = cy[:, None, None]
    grid[..., 2] = shapes[None, None, :, 0]
    grid[..., 3] = shapes[None, None, :, 1]
    return grid.reshape(-1, 4)
