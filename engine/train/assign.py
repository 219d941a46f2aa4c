"""Ground-truth to anchor assignment, as the original SqueezeDet ``imdb.read_batch``.

Every ground-truth box is made the responsibility of exactly one anchor: the
anchor of largest IoU that no earlier box of the same image took.  When even the
best free anchor does not overlap the box (IoU 0), the free anchor nearest by
squared distance over (cx, cy, w, h) is taken instead, as the original does.

Boxes are ``cxcywh`` in network-input pixels.  The original builds them from
KITTI ``xyxy`` with its ``+1`` width convention (``w = x2 - x1 + 1``); so does
:func:`objects_to_boxes`, so targets match what the original trained on.

Delta targets follow the paper and the decoder in :mod:`engine.postprocess`:
``dx = (gx - ax) / aw``, ``dy = (gy - ay) / ah``, ``dw = log(gw / aw)``,
``dh = log(gh / ah)``.  (The original's ``read_batch`` divides dx, dy by the
*ground-truth* width/height instead, which its own decoder does not invert; we
keep target and decoder consistent.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.types import GroundTruthObject


@dataclass(frozen=True)
class Targets:
    """Dense training targets of one image (A = number of anchors, C = classes).

    input_mask: (A, 1) float32, 1 for anchors responsible for an object.
    box_delta:  (A, 4) float32 (dx, dy, dw, dh) on responsible anchors, else 0.
    box:        (A, 4) float32 ground-truth cxcywh on responsible anchors, else 0.
    labels:     (A, C) float32 one-hot class on responsible anchors, else 0.
    anchor_ids: (M,) int64 responsible anchor of each kept box (M <= N).
    """

    input_mask: np.ndarray
    box_delta: np.ndarray
    box: np.ndarray
    labels: np.ndarray
    anchor_ids: np.ndarray

    @property
    def num_objects(self) -> int:
        return int(self.input_mask.sum())


def objects_to_boxes(
    objects: Iterable[GroundTruthObject], class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the detector's classes and convert KITTI boxes to the original's cxcywh.

    The KITTI type is matched case-insensitively against ``class_names``
    ('Car' -> car, 'Pedestrian' -> pedestrian, 'Cyclist' -> cyclist); DontCare,
    Van, Truck... are dropped, as the original's ``_load_kitti_annotation``.
    Boxes with x2 < x1 or y2 < y1 are dropped (the original asserts on them).

    Returns (boxes (N, 4) float64 cxcywh with w = x2 - x1 + 1, class ids (N,) int64).
    """
    index = {name.lower(): i for i, name in enumerate(class_names)}
    boxes, ids = [], []
    for obj in objects:
        cls = index.get(obj.type.strip().lower())
        x1, y1, x2, y2 = (float(v) for v in obj.box_xyxy)
        if cls is None or x2 < x1 or y2 < y1:
            continue
        w, h = x2 - x1 + 1.0, y2 - y1 + 1.0
        boxes.append((x1 + 0.5 * w, y1 + 0.5 * h, w, h))
        ids.append(cls)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(ids, dtype=np.int64)


def batch_iou(anchors: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of every anchor (A, 4 cxcywh) with one box (4,): (A,) float64."""
    lr = np.minimum(anchors[:, 0] + 0.5 * anchors[:, 2], box[0] + 0.5 * box[2]) - np.maximum(
        anchors[:, 0] - 0.5 * anchors[:, 2], box[0] - 0.5 * box[2]
    )
    tb = np.minimum(anchors[:, 1] + 0.5 * anchors[:, 3], box[1] + 0.5 * box[3]) - np.maximum(
        anchors[:, 1] - 0.5 * anchors[:, 3], box[1] - 0.5 * box[3]
    )
    inter = np.maximum(lr, 0.0) * np.maximum(tb, 0.0)
    union = anchors[:, 2] * anchors[:, 3] + box[2] * box[3] - inter
    return inter / union


def _best_free_anchor(box: np.ndarray, anchors: np.ndarray, taken: set[int]) -> int:
    """The original's rule for one box: largest IoU among free anchors, else nearest.

    Walks anchors by decreasing IoU (ties: lower index first) and stops at the
    first zero overlap; then falls back to the free anchor of smallest squared
    (cx, cy, w, h) distance.  Returns -1 when every anchor is taken.
    """
    overlaps = batch_iou(anchors, box)
    best = int(np.argmax(overlaps))
    if overlaps[best] > 0 and best not in taken:  # the common case, without a sort
        return best
    for idx in np.argsort(-overlaps, kind="stable"):
        if overlaps[idx] <= 0:
            break
        if int(idx) not in taken:
            return int(idx)
    dist = np.sum(np.square(box[None, :] - anchors), axis=1)
    for idx in np.argsort(dist, kind="stable"):
        if int(idx) not in taken:
            return int(idx)
    return -1


def assign_anchors(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Responsible anchor of each box (N, 4 cxcywh) among anchors (A, 4): (N,) int64.

    Boxes are served in order, so an earlier box keeps its best anchor and a
    later box overlapping the same anchor gets its next best one.  -1 marks a
    box left without an anchor (only when N > A).
    """
    taken: set[int] = set()
    out = np.full(len(boxes), -1, dtype=np.int64)
    for i, box in enumerate(np.asarray(boxes, dtype=np.float64)):
        idx = _best_free_anchor(box, anchors, taken)
        if idx >= 0:
            taken.add(idx)
            out[i] = idx
    return out


def encode_deltas(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Regression targets of boxes (N, 4 cxcywh) against their anchors (N, 4): (N, 4)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    return np.stack(
        [
            (boxes[:, 0] - anchors[:, 0]) / anchors[:, 2],
            (boxes[:, 1] - anchors[:, 1]) / anchors[:, 3],
            np.log(boxes[:, 2] / anchors[:, 2]),
            np.log(boxes[:, 3] / anchors[:, 3]),
        ],
        axis=1,
    ).reshape(-1, 4)


def build_targets(
    boxes: np.ndarray, class_ids: np.ndarray, anchors: np.ndarray, num_classes: int
) -> Targets:
    """Dense targets of one image from its boxes (N, 4 cxcywh), class ids (N,) and anchors.

    Boxes must be in network-input pixels (after augmentation and scaling) with
    positive width and height.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    a = len(anchors)
    mask = np.zeros((a, 1), np.float32)
    delta = np.zeros((a, 4), np.float32)
    box = np.zeros((a, 4), np.float32)
    labels = np.zeros((a, num_classes), np.float32)
    ids = assign_anchors(boxes, anchors)
    keep = ids >= 0
    ids, boxes, class_ids = ids[keep], boxes[keep], class_ids[keep]
    mask[ids, 0] = 1.0
    delta[ids] = encode_deltas(boxes, anchors[ids])
    box[ids] = boxes
    labels[ids, class_ids] = 1.0
    return Targets(mask, delta, box, labels, ids)
