"""SqueezeDet post-processing, identical to the original (numpy).

Pipeline for one image (ConvDet output ``(gridH, gridW, K*(C+5))``):
class softmax x sigmoid confidence -> delta decoding with the original safe
exponential -> clip to the network input -> carry as centre/size with the
original's ``+1`` width -> rescale to original pixels -> the 64 best anchors
over all classes -> per-class NMS at IoU 0.4 in which every higher-scoring box
suppresses the lower ones it overlaps, even a box that was itself suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.types import Detections

EXP_THRESH = 1.0
TOP_N = 64
NMS_THRESH = 0.4
PROB_THRESH = 0.005  # used instead of top-N when top_n <= 0 or top_n >= the anchor count


@dataclass(frozen=True)
class ConvDetSplit:
    """The three heads of a ConvDet output, per anchor (A = gridH*gridW*K).

    class_probs: (A, C) softmax probabilities; confidence: (A,) sigmoid;
    deltas: (A, 4) raw (dx, dy, dw, dh).
    """

    class_probs: np.ndarray
    confidence: np.ndarray
    deltas: np.ndarray


def split_convdet(raw: np.ndarray, num_classes: int, anchors_per_cell: int) -> ConvDetSplit:
    """Split a raw ConvDet output (gridH, gridW, K*(C+5)) into its three heads."""
    k, c = anchors_per_cell, num_classes
    raw = np.asarray(raw, dtype=np.float64)
    logits = raw[..., : k * c].reshape(-1, c)
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    probs = e / e.sum(axis=1, keepdims=True)
    with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives the right limit, 0
        conf = 1.0 / (1.0 + np.exp(-raw[..., k * c : k * c + k].reshape(-1)))
    deltas = raw[..., k * c + k :].reshape(-1, 4)
    return ConvDetSplit(probs, conf, deltas)


def safe_exp(x: np.ndarray, thresh: float = EXP_THRESH) -> np.ndarray:
    """exp(x) below thresh, continued linearly (with slope e^thresh) above it."""
    slope = np.exp(thresh)
    return np.where(x > thresh, slope * (x - thresh + 1.0), np.exp(np.minimum(x, thresh)))


def decode_boxes(
    deltas: np.ndarray, anchors: np.ndarray, input_size: tuple[int, int]
) -> np.ndarray:
    """Decode deltas against anchors (A, 4 cxcywh) into clipped boxes, cxcywh with +1 width.

    Returns (A, 4) float64 [cx, cy, w, h] in network-input pixels, where
    w = xmax - xmin + 1 after clipping to [0, W-1] x [0, H-1], as the original.
    """
    w_in, h_in = input_size
    cx = anchors[:, 0] + deltas[:, 0] * anchors[:, 2]
    cy = anchors[:, 1] + deltas[:, 1] * anchors[:, 3]
    w = anchors[:, 2] * safe_exp(deltas[:, 2])
    h = anchors[:, 3] * safe_exp(deltas[:, 3])
    xmin = np.minimum(np.maximum(0.0, cx - w / 2), w_in - 1.0)
    ymin = np.minimum(np.maximum(0.0, cy - h / 2), h_in - 1.0)
    xmax = np.maximum(np.minimum(w_in - 1.0, cx + w / 2), 0.0)
    ymax = np.maximum(np.minimum(h_in - 1.0, cy + h / 2), 0.0)
    width = xmax - xmin + 1.0
    height = ymax - ymin + 1.0
    return np.stack([xmin + 0.5 * width, ymin + 0.5 * height, width, height], axis=1)


def center_iou(boxes: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) cxcywh boxes, as the original's batch_iou: (N, N)."""
    x1, x2 = boxes[:, 0] - 0.5 * boxes[:, 2], boxes[:, 0] + 0.5 * boxes[:, 2]
    y1, y2 = boxes[:, 1] - 0.5 * boxes[:, 3], boxes[:, 1] + 0.5 * boxes[:, 3]
    lr = np.maximum(np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :]), 0)
    tb = np.maximum(np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :]), 0)
    inter = lr * tb
    area = boxes[:, 2] * boxes[:, 3]
    return inter / (area[:, None] + area[None, :] - inter)


def original_nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_THRESH
) -> np.ndarray:
    """The original SqueezeDet NMS: keep mask (N,) bool over boxes (N, 4 cxcywh).

    Boxes are visited by descending score; each one suppresses every
    lower-scoring box with IoU > threshold, whether or not it was itself
    suppressed (the original does not skip suppressed boxes).
    """
    n = len(scores)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    order = np.argsort(scores, kind="stable")[::-1]
    ious = center_iou(boxes[order])
    suppressed = np.triu(ious > threshold, k=1).any(axis=0)
    keep[order[suppressed]] = False
    return keep


def filter_predictions(
    boxes: np.ndarray,
    probs: np.ndarray,
    classes: np.ndarray,
    num_classes: int,
    top_n: int = TOP_N,
    nms_threshold: float = NMS_THRESH,
    prob_threshold: float = PROB_THRESH,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-N over all classes, then per-class NMS; returns kept (boxes, probs, classes).

    As the original's ``filter_prediction``: when ``top_n`` is not in (0, len(probs)),
    the boxes with probability strictly above ``prob_threshold`` are kept instead.
    """
    if 0 < top_n < len(probs):
        order = np.argsort(probs, kind="stable")[::-1][:top_n]
    else:
        order = np.flatnonzero(probs > prob_threshold)
    boxes, probs, classes = boxes[order], probs[order], classes[order]
    kept = []
    for c in range(num_classes):
        idx = np.flatnonzero(classes == c)
        kept.append(idx[original_nms(boxes[idx], probs[idx], nms_threshold)])
    sel = np.concatenate(kept) if kept else np.zeros(0, dtype=int)
    return boxes[sel], probs[sel], classes[sel]


def postprocess(
    raw: np.ndarray,
    anchors: np.ndarray,
    input_size: tuple[int, int],
    scale_xy: tuple[float, float],
    class_names: tuple[str, ...],
    anchors_per_cell: int,
) -> Detections:
    """Raw ConvDet output of one image -> Detections in original image pixels (xyxy).

    scale_xy: (network W / image W, network H / image H), as the original's scales.
    Returned boxes are [xmin, ymin, xmax + 1, ymax + 1] (the original's convention).
    """
    heads = split_convdet(raw, len(class_names), anchors_per_cell)
    boxes = decode_boxes(heads.deltas, anchors, input_size)
    boxes[:, 0::2] /= scale_xy[0]
    boxes[:, 1::2] /= scale_xy[1]
    final = heads.class_probs * heads.confidence[:, None]
    probs, classes = final.max(axis=1), final.argmax(axis=1)
    boxes, probs, classes = filter_predictions(boxes, probs, classes, len(class_names))
    xyxy = np.concatenate(
        [boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1
    )
    return Detections(xyxy, probs, classes, class_names)
