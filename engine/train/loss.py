"""SqueezeDet's multi-task loss, term for term as the original ``_add_loss_graph``.

With A anchors per image, B images and N = number of responsible anchors in
the whole batch (``reduce_sum(input_mask)``):

- class:  sum over responsible anchors of
  ``-q log(p + eps) - (1 - q) log(1 - p + eps)`` over the C softmax
  probabilities (the original's form, both terms), times LOSS_COEF_CLASS, / N;
- conf:   ``mean_b sum_a (IoU - sigmoid(c))^2 * (m * 75 / N + (1 - m) * 100 / (A - N))``,
  where IoU is between the decoded (clipped) predicted box and its ground
  truth on responsible anchors, 0 elsewhere.  The original stores the IoU in a
  variable through ``assign``, which carries no gradient: here a
  ``stop_gradient`` does the same;
- bbox:   ``sum 5 * (m * (delta - delta_target))^2 / N``;
- decay:  ``WEIGHT_DECAY * sum l2_loss(kernel)`` over the conv kernels (no biases).

Two deliberate differences, both only where the original yields NaN: N is
clamped to at least 1 (a batch without objects trains the confidence towards 0),
and ``1 - p`` is floored at 0 (float32 softmax can round p above 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.postprocess import EXP_THRESH
from squeezelens.engine.tf_runtime import import_tf

EPSILON = 1e-16


@dataclass(frozen=True)
class LossConfig:
    """Coefficients of the KITTI SqueezeDet configuration."""

    coef_class: float = 1.0
    coef_conf_pos: float = 75.0
    coef_conf_neg: float = 100.0
    coef_bbox: float = 5.0
    weight_decay: float = 0.0001
    epsilon: float = EPSILON
    exp_thresh: float = EXP_THRESH


def split_heads(raw, num_classes: int, anchors_per_cell: int):
    """Raw ConvDet output (B, gh, gw, K*(C+5)) -> class logits (B, A, C), conf logits (B, A),
    deltas (B, A, 4), with A = gh * gw * K in the anchor grid's (row, col, anchor) order."""
    tf = import_tf()
    k, c = anchors_per_cell, num_classes
    a = int(np.prod(raw.shape[1:3])) * k
    logits = tf.reshape(raw[..., : k * c], [-1, a, c])
    conf = tf.reshape(raw[..., k * c : k * c + k], [-1, a])
    deltas = tf.reshape(raw[..., k * c + k :], [-1, a, 4])
    return logits, conf, deltas


def safe_exp(x, thresh: float):
    """exp(x) below thresh, linear with slope e^thresh above (the original's safe_exp)."""
    tf = import_tf()
    lin = x > thresh
    slope = float(np.exp(thresh))
    return tf.where(lin, slope * (x - thresh + 1.0), tf.exp(tf.where(lin, tf.zeros_like(x), x)))


def decode_boxes(deltas, anchors: np.ndarray, input_size: tuple[int, int], thresh: float):
    """Deltas (B, A, 4) -> clipped predicted boxes as xyxy (B, A, 4), via the original's +1 width.

    Mirrors the original's interpretation graph: decode, clip to [0, W-1] x
    [0, H-1], convert to cxcywh with ``w = xmax - xmin + 1``, then back to
    ``xyxy`` with ``cx -/+ w/2`` for the IoU.
    """
    tf = import_tf()
    anc = tf.constant(np.asarray(anchors, dtype=np.float32))
    w_in, h_in = (float(v) for v in input_size)
    dx, dy, dw, dh = tf.unstack(deltas, axis=-1)
    cx, cy = anc[:, 0] + dx * anc[:, 2], anc[:, 1] + dy * anc[:, 3]
    w, h = anc[:, 2] * safe_exp(dw, thresh), anc[:, 3] * safe_exp(dh, thresh)
    x1 = tf.minimum(tf.maximum(0.0, cx - w / 2), w_in - 1.0)
    y1 = tf.minimum(tf.maximum(0.0, cy - h / 2), h_in - 1.0)
    x2 = tf.maximum(tf.minimum(w_in - 1.0, cx + w / 2), 0.0)
    y2 = tf.maximum(tf.minimum(h_in - 1.0, cy + h / 2), 0.0)
    w, h = x2 - x1 + 1.0, y2 - y1 + 1.0
    cx, cy = x1 + 0.5 * w, y1 + 0.5 * h
    return tf.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def box_iou(pred_xyxy, gt_cxcywh, epsilon: float):
    """Element-wise IoU of (B, A, 4) xyxy predictions with (B, A, 4) cxcywh truths: (B, A)."""
    tf = import_tf()
    g = tf.concat(
        [gt_cxcywh[..., :2] - gt_cxcywh[..., 2:] / 2, gt_cxcywh[..., :2] + gt_cxcywh[..., 2:] / 2],
        -1,
    )
    iw = tf.maximum(
        0.0, tf.minimum(pred_xyxy[..., 2], g[..., 2]) - tf.maximum(pred_xyxy[..., 0], g[..., 0])
    )
    ih = tf.maximum(
        0.0, tf.minimum(pred_xyxy[..., 3], g[..., 3]) - tf.maximum(pred_xyxy[..., 1], g[..., 1])
    )
    inter = iw * ih
    area_p = (pred_xyxy[..., 2] - pred_xyxy[..., 0]) * (pred_xyxy[..., 3] - pred_xyxy[..., 1])
    area_g = (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
    return inter / (area_p + area_g - inter + epsilon)


def class_cross_entropy(logits, labels, eps: float):
    """The original's per-anchor class term: sum_c -q log(p + eps) - (1 - q) log(1 - p + eps).

    logits, labels: (B, A, C) -> (B, A, 1).  ``1 - p`` is floored at 0: a
    float32 softmax can round p above 1, and the log of a negative is NaN.
    """
    tf = import_tf()
    probs = tf.nn.softmax(logits, axis=-1)
    one_minus = tf.maximum(1.0 - probs, 0.0)
    xent = labels * -tf.math.log(probs + eps) + (1.0 - labels) * -tf.math.log(one_minus + eps)
    return tf.reduce_sum(xent, axis=-1, keepdims=True)


def detection_losses(
    raw,
    input_mask,
    box_delta,
    box,
    labels,
    anchors: np.ndarray,
    input_size: tuple[int, int],
    anchors_per_cell: int,
    config: LossConfig = LossConfig(),
) -> dict:
    """The three detection terms for a batch.

    raw: (B, gh, gw, K*(C+5)) ConvDet output; input_mask (B, A, 1); box_delta
    (B, A, 4); box (B, A, 4) cxcywh; labels (B, A, C) one-hot; anchors (A, 4).
    Returns scalar tensors {"class", "conf", "bbox", "mean_iou"}.
    """
    tf = import_tf()
    num_classes = labels.shape[-1]
    logits, conf_logits, deltas = split_heads(raw, num_classes, anchors_per_cell)
    a = float(len(anchors))
    n = tf.maximum(tf.reduce_sum(input_mask), 1.0)
    eps = config.epsilon
    class_loss = tf.reduce_sum(class_cross_entropy(logits, labels, eps) * input_mask) / n
    class_loss = class_loss * config.coef_class
    mask = input_mask[..., 0]
    ious = decode_boxes(deltas, anchors, input_size, config.exp_thresh)
    ious = tf.stop_gradient(box_iou(ious, box, eps) * mask)
    weight = mask * config.coef_conf_pos / n + (1.0 - mask) * config.coef_conf_neg / (a - n)
    conf_sq = tf.square(ious - tf.sigmoid(conf_logits)) * weight
    conf_loss = tf.reduce_mean(tf.reduce_sum(conf_sq, axis=1))
    bbox_loss = tf.reduce_sum(config.coef_bbox * tf.square(input_mask * (deltas - box_delta))) / n
    return {
        "class": class_loss,
        "conf": conf_loss,
        "bbox": bbox_loss,
        "mean_iou": tf.reduce_sum(ious) / n,
    }


def weight_decay(kernels: Iterable, coef: float):
    """``coef * sum(l2_loss(k))`` = coef/2 * sum of squared kernel entries."""
    tf = import_tf()
    return coef * tf.add_n([tf.nn.l2_loss(k) for k in kernels])


def total_loss(
    raw, targets: dict, kernels: Iterable, anchors: np.ndarray, input_size, anchors_per_cell: int,
    config: LossConfig = LossConfig(),
) -> dict:  # fmt: skip
    """All terms plus ``"decay"`` and ``"total"`` (class + conf + bbox + decay).

    targets: {"input_mask", "box_delta", "box", "labels"} batched as in
    :func:`detection_losses`.
    """
    terms = detection_losses(
        raw, targets["input_mask"], targets["box_delta"], targets["box"], targets["labels"],
        anchors, input_size, anchors_per_cell, config,
    )  # fmt: skip
    terms["decay"] = weight_decay(kernels, config.weight_decay)
    terms["total"] = terms["class"] + terms["conf"] + terms["bbox"] + terms["decay"]
    return terms
