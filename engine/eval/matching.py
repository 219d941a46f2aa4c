"""The devkit's per-image greedy matching, for all images and thresholds at once.

``computeStatistics`` of ``evaluate_object.cpp`` matches the ground truth of one
image in label-file order, so it is sequential over ground truth; here every
image (and, in pass 2, every threshold) is matched at once on padded arrays,
one ground-truth slot at a time.  See :mod:`engine.eval.devkit` for the rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CHUNK_BUDGET = 1 << 18  # padded (images x gt x det) cells per matching batch


@dataclass(frozen=True)
class Scene:
    """Ground truth and detections of all images, flattened (image order, then file order).

    gt_*: (G,) per object; det_*: (D,) per detection (score-descending within
    an image); pair_*: (P,) det/gt pairs of one image with IoU above the
    scene's pair threshold (the smallest class overlap, or lower for error
    analysis), DontCare boxes excluded.  det_dontcare: (D,) max intersection /
    own area with any DontCare box of its image.  gt_box / det_box: (G, 4) /
    (D, 4) float64 xyxy, detections as the devkit reads them back.
    """

    gt_image: np.ndarray
    gt_type: np.ndarray
    gt_truncation: np.ndarray
    gt_occlusion: np.ndarray
    gt_height: np.ndarray
    det_image: np.ndarray
    det_type: np.ndarray
    det_score: np.ndarray
    det_height: np.ndarray
    det_dontcare: np.ndarray
    pair_gt: np.ndarray
    pair_det: np.ndarray
    pair_iou: np.ndarray
    gt_box: np.ndarray
    det_box: np.ndarray


@dataclass(frozen=True)
class _Batch:
    """Padded matching problem of a group of images (slot s = one image).

    overlap: (S, G, C) IoU of candidate det c with ground truth g (0 = none),
    g in label-file order and c in detection order; ignored_gt: (S, G) int8
    (-1 padding); ignored_det: (S, C) int8; score: (S, C) float64 (-inf
    padding); counts_fp: (S, C) bool, a valid det outside every DontCare box;
    gt_index / det_index: (S, G) / (S, C) scene indices (-1 padding).
    """

    overlap: np.ndarray
    ignored_gt: np.ndarray
    ignored_det: np.ndarray
    score: np.ndarray
    counts_fp: np.ndarray
    gt_index: np.ndarray
    det_index: np.ndarray


def _local_rank(owner: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal (sorted) owner values."""
    return np.arange(len(owner)) - np.searchsorted(owner, owner, side="left")


def _chunks(sizes: np.ndarray) -> Iterator[np.ndarray]:
    """Split slot indices (S,) into groups whose padded size stays within budget.

    sizes: (S, 2) [n_gt, n_det] per slot.
    """
    order = np.lexsort((sizes[:, 0], sizes[:, 1]))
    start, g_max = 0, 0
    for k, s in enumerate(order):
        g_max = max(g_max, int(sizes[s, 0]))
        if k > start and (k + 1 - start) * g_max * int(sizes[s, 1]) > CHUNK_BUDGET:
            yield order[start:k]
            start, g_max = k, int(sizes[s, 0])
    if start < len(order):
        yield order[start:]


def batches(
    scene: Scene, ig_gt: np.ndarray, ig_det: np.ndarray, counts_fp: np.ndarray, min_ov: float
) -> list[_Batch]:
    """Group the candidate (gt, det) pairs of one class x difficulty into padded batches."""
    keep = (scene.pair_iou > min_ov) & (ig_gt[scene.pair_gt] != -1) & (ig_det[scene.pair_det] != -1)
    pg, pd, po = scene.pair_gt[keep], scene.pair_det[keep], scene.pair_iou[keep]
    gts, g_of_pair = np.unique(pg, return_inverse=True)
    dets, d_of_pair = np.unique(pd, return_inverse=True)
    g_img, d_img = scene.gt_image[gts], scene.det_image[dets]
    images = np.unique(g_img)
    g_slot, d_slot = np.searchsorted(images, g_img), np.searchsorted(images, d_img)
    g_local, d_local = _local_rank(g_img), _local_rank(d_img)
    sizes = np.stack(
        [np.bincount(g_slot, minlength=len(images)), np.bincount(d_slot, minlength=len(images))], 1
    )
    out = []
    for slots in _chunks(sizes):
        pos = np.full(len(images), -1)
        pos[slots] = np.arange(len(slots))
        n, g_n, c_n = len(slots), int(sizes[slots, 0].max()), int(sizes[slots, 1].max())
        gs, ds, ps = pos[g_slot] >= 0, pos[d_slot] >= 0, pos[g_slot[g_of_pair]] >= 0
        ov = np.zeros((n, g_n, c_n))
        ov[pos[g_slot[g_of_pair[ps]]], g_local[g_of_pair[ps]], d_local[d_of_pair[ps]]] = po[ps]
        igt = np.full((n, g_n), -1, dtype=np.int8)
        igt[pos[g_slot[gs]], g_local[gs]] = ig_gt[gts[gs]]
        g_index = np.full((n, g_n), -1, dtype=np.int64)
        g_index[pos[g_slot[gs]], g_local[gs]] = gts[gs]
        d_index = np.full((n, c_n), -1, dtype=np.int64)
        idet = np.full((n, c_n), -1, dtype=np.int8)
        score = np.full((n, c_n), -np.inf)
        cfp = np.zeros((n, c_n), dtype=bool)
        at = (pos[d_slot[ds]], d_local[ds])
        idet[at], score[at], cfp[at], d_index[at] = (
            ig_det[dets[ds]],
            scene.det_score[dets[ds]],
            counts_fp[dets[ds]],
            dets[ds],
        )
        out.append(_Batch(ov, igt, idet, score, cfp, g_index, d_index))
    return out


def _joined(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _pass_one(tp_scores: list, pairs: list) -> tuple[np.ndarray, ...]:
    """(TP scores, assigned ground truth, assigned detections) of pass 1."""
    gts, dets = [p[0] for p in pairs], [p[1] for p in pairs]
    return _joined(tp_scores, np.float64), _joined(gts, np.int64), _joined(dets, np.int64)


def match(
    b: _Batch, min_ov: float, thresholds: np.ndarray | None, tp_objects: bool = False
) -> tuple[np.ndarray, ...]:
    """``computeStatistics`` for every image of a batch and every threshold at once.

    thresholds None: pass 1 (highest-score candidate); returns (TP scores,
    assigned ground truth (K,), assigned detections (K,)): the scene indices of
    every pair pass 1 assigns (ignored objects and detections included).
    Otherwise pass 2 (largest-IoU candidate); returns per-threshold (T,)
    arrays tp, fn and the number of matched detections that would otherwise
    have been false positives; with ``tp_objects``, a fourth array: the scene
    indices of the objects that are true positives at the first threshold.
    """
    by_score = thresholds is None
    thr = np.array([-np.inf]) if by_score else thresholds
    active = b.score[None] >= thr[:, None, None]  # (T, S, C)
    assigned = np.zeros(active.shape, dtype=bool)
    tp, fn = np.zeros(len(thr), np.int64), np.zeros(len(thr), np.int64)
    tp_scores, valid_det, ignored_det = [], b.ignored_det[None] == 0, b.ignored_det[None] == 1
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    tp_gt: list[np.ndarray] = []
    for g in range(b.overlap.shape[1]):
        ov = b.overlap[None, :, g, :]
        cand = active & ~assigned & (ov > min_ov)
        if by_score:
            pick = np.argmax(np.where(cand, b.score[None], -np.inf), axis=2)
        else:
            best = np.argmax(np.where(cand & valid_det, ov, -1.0), axis=2)
            fallback = np.argmax(cand & ignored_det, axis=2)
            pick = np.where((cand & valid_det).any(axis=2), best, fallback)
        found = cand.any(axis=2)  # (T, S)
        picked_ignored = np.take_along_axis(
            np.broadcast_to(ignored_det, cand.shape), pick[..., None], 2
        )[..., 0]
        ig = b.ignored_gt[None, :, g]
        fn += (~found & (ig == 0)).sum(axis=1)
        is_tp = found & (ig == 0) & ~picked_ignored
        tp += is_tp.sum(axis=1)
        t_i, s_i = np.nonzero(found)
        assigned[t_i, s_i, pick[t_i, s_i]] = True
        if by_score:
            tp_scores.append(b.score[np.nonzero(is_tp[0])[0], pick[0][is_tp[0]]])
            pairs.append((b.gt_index[s_i, g], b.det_index[s_i, pick[0, s_i]]))
        elif tp_objects:
            tp_gt.append(b.gt_index[np.nonzero(is_tp[0])[0], g])
    if by_score:
        return _pass_one(tp_scores, pairs)
    matched = (assigned & b.counts_fp[None]).sum(axis=(1, 2))
    return (tp, fn, matched, _joined(tp_gt, np.int64)) if tp_objects else (tp, fn, matched)
