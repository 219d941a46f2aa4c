"""SqueezeDet post-processing, identical to the original (numpy).

Pipeline for one image (ConvDet output ``(gridH, gridW, K*(C+5))``):
class softmax x sigmoid confidence -> delta decoding with the original safe
exponential -> clip to the network input -> carry as centre/size with the
original's ``+1`` width -> rescale to original pixels -> the 64 best anchors
over all classes (only those are decoded: decoding is per anchor) -> per-class NMS at IoU 0.4 in which every higher-scoring box
suppresses the lower ones it overlaps, even a box that was itself suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezelens.engine.types import Detections

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


def top_order(
    probs: np.ndarray, top_n: int = TOP_N, prob_threshold: float = PROB_THRESH
) -> np.ndarray:
    """Indices of the boxes the original keeps before NMS, by descending probability.

    The ``top_n`` best as ``np.argsort(probs, kind="stable")[::-1][:top_n]`` orders them
    (ties: the higher index first), found by a partial sort; when ``top_n`` is not in
    (0, len(probs)), every index with probability strictly above ``prob_threshold``.
    """
    n = len(probs)
    if not 0 < top_n < n:
        return np.flatnonzero(probs > prob_threshold)
    v = probs[np.argpartition(probs, n - top_n)[n - top_n]]  # the top_n-th largest value
    if np.isnan(v):  # NaNs sort as the largest values: keep the full sort's exact order
        return np.argsort(probs, kind="stable")[::-1][:top_n]
    above = np.flatnonzero(~(probs <= v))  # > v, NaNs included (they sort above v)
    ties = np.flatnonzero(probs == v)
    cand = np.concatenate([above, ties[len(ties) - (top_n - len(above)) :]])
    cand.sort()
    return cand[np.argsort(probs[cand], kind="stable")[::-1]]


def _nms_per_class(
    boxes: np.ndarray,
    probs: np.ndarray,
    classes: np.ndarray,
    num_classes: int,
    nms_threshold: float,
) -> np.ndarray:
    """Indices kept by the original per-class NMS, class by class."""
    kept = []
    for c in range(num_classes):
        idx = np.flatnonzero(classes == c)
        if len(idx):
            kept.append(idx[original_nms(boxes[idx], probs[idx], nms_threshold)])
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.intp)


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
    order = top_order(probs, top_n, prob_threshold)
    boxes, probs, classes = boxes[order], probs[order], classes[order]
    sel = _nms_per_class(boxes, probs, classes, num_classes, nms_threshold)
    return boxes[sel], probs[sel], classes[sel]


def _scores(raw: np.ndarray, k: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """(best class probability x confidence (A,) float64, its class (A,)) for every anchor.

    The same float64 arithmetic as :func:`split_convdet` followed by the product's
    ``max``/``argmax`` over classes, bit for bit, laid out class-major so that each step is
    one pass over the anchors instead of a slow reduction over a few classes per anchor.
    """
    lg = raw[..., : k * c].reshape(-1, c).T.astype(np.float64, order="C")  # (C, A) logits
    m = lg[0].copy()
    for j in range(1, c):
        np.maximum(m, lg[j], out=m)
    lg -= m
    np.exp(lg, out=lg)
    if c < 8:  # numpy sums fewer than 8 values per row left to right
        total = lg[0].copy()
        for j in range(1, c):
            total += lg[j]
    else:  # pairwise summation: the row-major layout split_convdet sums
        total = np.ascontiguousarray(lg.T).sum(axis=1)
    lg /= total  # class softmax
    conf = raw[..., k * c : k * c + k].reshape(-1).astype(np.float64)
    with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives the right limit, 0
        np.exp(np.negative(conf, out=conf), out=conf)
    conf += 1.0
    np.divide(1.0, conf, out=conf)  # sigmoid confidence
    lg *= conf
    best, classes = lg[0].copy(), np.zeros(lg.shape[1], dtype=np.intp)
    for j in range(1, c):
        classes[lg[j] > best] = j  # strictly greater: the first class wins ties, as argmax
        np.maximum(best, lg[j], out=best)
    if np.isnan(best).any():  # argmax picks the first NaN: leave it to numpy
        return lg.max(axis=0), lg.argmax(axis=0)
    return best, classes


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

    Decoding, clipping and rescaling work anchor by anchor, so only the anchors the
    top-N selection keeps are decoded: the result is the same as decoding all of them.
    """
    k, c = anchors_per_cell, len(class_names)
    raw = np.asarray(raw)
    probs_all, classes_all = _scores(raw, k, c)
    order = top_order(probs_all, TOP_N, PROB_THRESH)
    probs, classes = probs_all[order], classes_all[order]
    deltas = raw[..., k * c + k :].reshape(-1, 4)[order].astype(np.float64)
    boxes = decode_boxes(deltas, np.asarray(anchors)[order], input_size)
    boxes[:, 0::2] /= scale_xy[0]
    boxes[:, 1::2] /= scale_xy[1]
    sel = _nms_per_class(boxes, probs, classes, c, NMS_THRESH)
    boxes, probs, classes = boxes[sel], probs[sel], classes[sel]
    xyxy = np.concatenate(
        [boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1
    )
    return Detections(xyxy, probs, classes, class_names)
