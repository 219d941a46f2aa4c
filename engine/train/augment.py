"""Training-time data augmentation, as the original SqueezeDet ``imdb.read_batch``.

Per image, on the mean-subtracted float image (so padding is the mean colour):

1. drift: pick ``dx`` in ``[-DRIFT_X, min(DRIFT_X + 1, max_dx))`` and ``dy``
   likewise, where ``max_dx = min(cx - w/2 + 1)`` over the boxes keeps every box
   inside on the left/top.  A positive shift crops ``dx`` columns on the left, a
   negative one pads ``-dx`` zero columns; the image size changes accordingly
   and box centres move by ``-dx, -dy``.
2. flip with probability 0.5: ``cx -> W' - 1 - cx`` (``W'`` the drifted width).
3. resize to the network input; box centres and sizes scale with the image.

Randomness comes from a caller-supplied :class:`numpy.random.Generator`, so a
batch is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DRIFT_X = 150
DRIFT_Y = 100


@dataclass(frozen=True)
class AugmentConfig:
    """drift_x/drift_y: maximal translation in original-image pixels; flip: allow h-flips."""

    drift_x: int = DRIFT_X
    drift_y: int = DRIFT_Y
    flip: bool = True


DEFAULT_AUGMENTATION = AugmentConfig()


def _draw_drift(boxes: np.ndarray, drift: int, axis: int, rng: np.random.Generator) -> int:
    """The original's bounded random shift along one axis (0 = x, 1 = y)."""
    if drift <= 0:
        return 0
    high = drift + 1
    if len(boxes):
        max_drift = float(np.min(boxes[:, axis] - boxes[:, axis + 2] / 2.0 + 1.0))
        high = int(max(0.0, min(high, max_drift)))  # numpy's randint truncated a float bound
    return int(rng.integers(-drift, high))


def drift_image(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift image content left/up by (dx, dy): crop for positive, zero-pad for negative.

    image: (H, W, 3) float32 -> (H - dy, W - dx, 3) float32.
    """
    h, w = image.shape[:2]
    out = np.zeros((h - dy, w - dx, image.shape[2]), dtype=image.dtype)
    src_x, dst_x = max(dx, 0), max(-dx, 0)
    src_y, dst_y = max(dy, 0), max(-dy, 0)
    out[dst_y:, dst_x:] = image[src_y:, src_x:]
    return out


def augment(
    image: np.ndarray,
    boxes: np.ndarray,
    input_size: tuple[int, int],
    rng: np.random.Generator | None,
    config: AugmentConfig = DEFAULT_AUGMENTATION,
) -> tuple[np.ndarray, np.ndarray]:
    """Drift, flip and resize one training image with its boxes.

    image: (H, W, 3) float32, mean-subtracted BGR.
    boxes: (N, 4) cxcywh in image pixels (the original's +1 widths).
    input_size: (W, H) of the network input.
    rng: None disables the random steps (plain resize, as for evaluation).
    Returns (image (h, w, 3) float32, boxes (N, 4) float64 cxcywh in input pixels).
    """
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    if rng is not None:
        dy = _draw_drift(boxes, config.drift_y, 1, rng)
        dx = _draw_drift(boxes, config.drift_x, 0, rng)
        if dx or dy:
            image = drift_image(image, dx, dy)
            boxes[:, 0] -= dx
            boxes[:, 1] -= dy
        if config.flip and rng.integers(2) > 0.5:
            image = image[:, ::-1]
            boxes[:, 0] = image.shape[1] - 1 - boxes[:, 0]
    h, w = image.shape[:2]
    out = cv2.resize(np.ascontiguousarray(image), tuple(int(v) for v in input_size))
    boxes[:, 0::2] *= input_size[0] / w
    boxes[:, 1::2] *= input_size[1] / h
    return out.astype(np.float32, copy=False), boxes


def prepare_image(image_bgr: np.ndarray, bgr_means: tuple[float, float, float]) -> np.ndarray:
    """uint8 BGR (H, W, 3) -> float32 minus the per-channel means (as the Detector does)."""
    return image_bgr.astype(np.float32) - np.asarray(bgr_means, dtype=np.float32)
