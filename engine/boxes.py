"""Box formats, converted through one hub format: ``xyxy``.

Formats:
- ``xyxy``:   [x1, y1, x2, y2]
- ``xywh``:   [x1, y1, w, h]
- ``cxcywh``: [cx, cy, w, h] with w = x2 - x1 (the hub's plain geometry).

SqueezeDet's own "+1" convention (a decoded box carried as width = xmax - xmin + 1)
is handled explicitly in :mod:`engine.postprocess`, not hidden here.
"""

from __future__ import annotations

import numpy as np

FORMATS = ("xyxy", "xywh", "cxcywh")


def _to_xyxy(b: np.ndarray, src: str) -> np.ndarray:
    if src == "xyxy":
        return b.copy()
    if src == "xywh":
        return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)
    if src == "cxcywh":
        half = b[..., 2:] / 2
        return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)
    raise ValueError(f"unknown box format {src!r}; use one of {FORMATS}")


def _from_xyxy(b: np.ndarray, dst: str) -> np.ndarray:
    if dst == "xyxy":
        return b
    if dst == "xywh":
        return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)
    if dst == "cxcywh":
        return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)
    raise ValueError(f"unknown box format {dst!r}; use one of {FORMATS}")


def convert(boxes: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert boxes (..., 4) between named formats, through xyxy."""
    b = np.asarray(boxes, dtype=np.float64 if np.asarray(boxes).dtype == np.float64 else np.float32)
    return _from_xyxy(_to_xyxy(b, src), dst)


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), xyxy: (N, M) float64."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out
