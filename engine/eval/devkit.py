"""The official KITTI 2D object evaluation (``evaluate_object.cpp``), in numpy.

Reproduced rule for rule from the devkit's ``cleanData``, ``computeStatistics``,
``getThresholds`` and ``eval_class``:

* Difficulty d keeps ground truth with occlusion <= (0, 1, 2)[d], truncation
  <= (0.15, 0.30, 0.50)[d] and box height above (40, 25, 25)[d] px; other objects of
  the class, and the neighbouring classes (Van for Car, Person_sitting for
  Pedestrian), are "ignored": a detection matched to them is neither TP nor FP.
* A detection matches with IoU strictly above 0.7 (car) or 0.5 (pedestrian,
  cyclist); boxes are used as given, areas are ``(x2 - x1) * (y2 - y1)``.
* Pass 1 (collecting TP scores) gives each ground truth, in label-file order,
  its unassigned candidate with the highest score; pass 2 (counting TP/FP/FN at
  each threshold) gives it the candidate with the largest IoU among non-ignored
  detections, or else the first too-small (ignored) one.
* Unmatched detections whose intersection over their own area with a DontCare
  box exceeds the class overlap are not false positives.
* ``getThresholds`` keeps at most 41 TP scores spaced by recall 1/40; curve
  point k is the k-th kept threshold, so with <= 40 valid objects the curve is
  compressed and AP is capped below 1 (reported as ``capped``).

Protocols: "official" is the current devkit (ground truth ignored when height
<= min height; detections shorter than the min height, of any class, are
ignored).  "squeezedet" is the copy shipped with SqueezeDet (height < min
height; no detection is ignored for its height), fed by SqueezeDet's writer,
which rounds boxes to 2 decimals and scores to 3.  Either way detections are
scored as the devkit reads them back from the written result files.

The per-image greedy matching (:mod:`engine.eval.matching`) is sequential
over ground truth, so it is run for all images (and all thresholds) at once on
padded arrays, one ground-truth slot at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.eval.kitti_io import written_values
from squeezelens.engine.eval.matching import Scene, match
from squeezelens.engine.eval.matching import batches as match_batches
from squeezelens.engine.eval.results import (
    DIFFICULTIES,
    N_SAMPLE_PTS,
    ClassDifficultyAP,
    EvalResult,
    input_warnings,
)
from squeezelens.engine.types import Detections, ImageRecord

PROTOCOLS: tuple[str, ...] = ("official", "squeezedet")
MIN_HEIGHT: tuple[float, ...] = (40.0, 25.0, 25.0)
MAX_OCCLUSION: tuple[int, ...] = (0, 1, 2)
MAX_TRUNCATION: tuple[float, ...] = (0.15, 0.3, 0.5)
MIN_OVERLAP: Mapping[str, float] = {"car": 0.7, "pedestrian": 0.5, "cyclist": 0.5}
NEIGHBOUR: Mapping[str, str] = {"car": "van", "pedestrian": "person_sitting"}


def box_overlap(det: np.ndarray, gt: np.ndarray, own_area: bool = False) -> np.ndarray:
    """The devkit's ``boxoverlap``: IoU, or intersection over the det's own area.

    det: (N, 4) float64 xyxy; gt: (M, 4) float64 xyxy.  Returns (N, M) float64,
    0 where the intersection is empty, with the devkit's operation order.
    """
    w = np.minimum(det[:, None, 2], gt[None, :, 2]) - np.maximum(det[:, None, 0], gt[None, :, 0])
    h = np.minimum(det[:, None, 3], gt[None, :, 3]) - np.maximum(det[:, None, 1], gt[None, :, 1])
    inter = w * h
    det_area = ((det[:, 2] - det[:, 0]) * (det[:, 3] - det[:, 1]))[:, None]
    if own_area:
        denom = np.broadcast_to(det_area, inter.shape)
    else:
        gt_area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None, :]
        denom = (det_area + gt_area) - inter
    out = np.zeros(inter.shape, dtype=np.float64)
    ok = (w > 0) & (h > 0)
    np.divide(inter, denom, out=out, where=ok)
    return out


def get_thresholds(scores: np.ndarray, n_gt: int) -> np.ndarray:
    """``getThresholds``: the TP scores at which recall steps by ~1/40.

    scores: (K,) TP scores from pass 1; returns (<= 41,) float64, descending.
    """
    v = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    kept: list[float] = []
    current = 0.0
    last = len(v) - 1
    for i in range(len(v)):
        left = (i + 1) / n_gt
        right = (i + 2) / n_gt if i < last else left
        if (right - current) < (current - left) and i < last:
            continue
        kept.append(float(v[i]))
        current += 1.0 / (N_SAMPLE_PTS - 1.0)
    return np.asarray(kept[:N_SAMPLE_PTS], dtype=np.float64)


def _image_arrays(record: ImageRecord, dets: Detections, protocol: str) -> tuple:
    """(gt boxes (G,4), gt types, det boxes (D,4), det scores (D,), det types) of one image.

    Detection boxes and scores are float64, as the devkit reads them back from the
    protocol's result files (rounded to their written text).
    """
    objects = record.objects
    gt_box = np.array([o.box_xyxy for o in objects], dtype=np.float64).reshape(-1, 4)
    gt_type = [o.type.lower() for o in objects]
    names = [n.lower() for n in dets.class_names]
    if len(dets) and (dets.labels.min() < 0 or dets.labels.max() >= len(names)):
        raise InputError(f"detections of image {record.stem!r} have labels outside the class names")
    det_type = [names[k] for k in dets.labels]
    det_box, det_score = written_values(dets, protocol)
    return gt_box, gt_type, det_box, det_score, det_type


def build_scene(
    records: Sequence[ImageRecord],
    detections: Mapping[str, Detections],
    keep_iou: float,
    protocol: str,
) -> Scene:
    """All images' ground truth and detections as flat arrays, with the det/gt pairs whose
    IoU exceeds ``keep_iou`` (the devkit needs the smallest class overlap; error analysis
    keeps every overlapping pair with ``keep_iou=0``)."""
    cols: dict[str, list] = {k: [] for k in Scene.__dataclass_fields__}
    n_gt = n_det = 0
    for i, record in enumerate(records):
        dets = detections.get(record.stem) or Detections.empty()
        gt_box, gt_type, det_box, det_score, det_type = _image_arrays(record, dets, protocol)
        dontcare = np.array([t == "dontcare" for t in gt_type], dtype=bool)
        iou = box_overlap(det_box, gt_box)
        iou[:, dontcare] = 0.0
        d_idx, g_idx = np.nonzero(iou > keep_iou)
        dc = box_overlap(det_box, gt_box[dontcare], own_area=True)
        cols["det_dontcare"].append(dc.max(axis=1) if dc.shape[1] else np.zeros(len(det_box)))
        cols["pair_gt"].append(g_idx + n_gt)
        cols["pair_det"].append(d_idx + n_det)
        cols["pair_iou"].append(iou[d_idx, g_idx])
        cols["gt_image"].append(np.full(len(gt_type), i))
        cols["gt_type"].append(np.asarray(gt_type, dtype=str))
        cols["gt_truncation"].append([o.truncated for o in record.objects])
        cols["gt_occlusion"].append([o.occluded for o in record.objects])
        cols["gt_height"].append(gt_box[:, 3] - gt_box[:, 1])
        cols["det_image"].append(np.full(len(det_type), i))
        cols["det_type"].append(np.asarray(det_type, dtype=str))
        cols["det_score"].append(det_score)
        cols["det_height"].append(np.abs(det_box[:, 1] - det_box[:, 3]))
        cols["gt_box"].append(gt_box)
        cols["det_box"].append(det_box.reshape(-1, 4))
        n_gt, n_det = n_gt + len(gt_type), n_det + len(det_type)
    return _as_scene(cols)


def _as_scene(cols: dict[str, list]) -> Scene:
    """The per-image columns of build_scene joined into one Scene."""
    arrays = {
        k: np.concatenate([np.asarray(a) for a in v]) if v else np.zeros(0) for k, v in cols.items()
    }
    for k in ("gt_image", "det_image", "pair_gt", "pair_det", "gt_occlusion"):
        arrays[k] = arrays[k].astype(np.int64)
    for k in ("gt_type", "det_type"):
        arrays[k] = arrays[k].astype(str)
    return Scene(**arrays)


def _ignored(scene: Scene, cls: str, d: int, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """``cleanData``: ignored_gt (G,) and ignored_det (D,), each -1/0/1 as int8."""
    own = scene.gt_type == cls
    neighbour = scene.gt_type == NEIGHBOUR.get(cls, "\0")
    too_small = (
        scene.gt_height <= MIN_HEIGHT[d]
        if protocol == "official"
        else scene.gt_height < MIN_HEIGHT[d]
    )
    hard = (
        (scene.gt_occlusion > MAX_OCCLUSION[d])
        | (scene.gt_truncation > MAX_TRUNCATION[d])
        | too_small
    )
    ignored_gt = np.where(own & ~hard, 0, np.where(neighbour | own, 1, -1)).astype(np.int8)
    ignored_det = np.where(scene.det_type == cls, 0, -1).astype(np.int8)
    if protocol == "official":  # the C++ truncates |y1 - y2| to int32; any class
        ignored_det[np.trunc(scene.det_height) < MIN_HEIGHT[d]] = 1
    return ignored_gt, ignored_det


def _cleaned(scene: Scene, cls: str, d: int, protocol: str) -> tuple[np.ndarray, ...]:
    """(ignored_gt, ignored_det, counts_fp): ``cleanData`` and the detections that count as
    false positives unless assigned (valid, outside every DontCare box)."""
    ig_gt, ig_det = _ignored(scene, cls, d, protocol)
    return ig_gt, ig_det, (ig_det == 0) & ~(scene.det_dontcare > MIN_OVERLAP[cls])


@dataclass(frozen=True, eq=False)
class PassOne:
    """What the devkit's pass 1 decides for one class x difficulty (scene indices).

    ignored_gt / ignored_det: ``cleanData``'s -1/0/1 per object / detection;
    counts_fp: (D,) a valid detection outside every DontCare box (a false
    positive unless assigned); assigned_gt / assigned_det: (K,) the pairs pass 1
    assigns, greedy by score (ignored objects and detections included);
    tp_scores: the scores of its true positives; batches: the matching problem.
    """

    ignored_gt: np.ndarray
    ignored_det: np.ndarray
    counts_fp: np.ndarray
    assigned_gt: np.ndarray
    assigned_det: np.ndarray
    tp_scores: np.ndarray
    batches: list


def pass_one(scene: Scene, cls: str, d: int, protocol: str) -> PassOne:
    """``cleanData`` and ``computeStatistics``' pass 1 (greedy by score) for one class x difficulty."""
    min_ov = MIN_OVERLAP[cls]
    ig_gt, ig_det, counts_fp = _cleaned(scene, cls, d, protocol)
    batches = match_batches(scene, ig_gt, ig_det, counts_fp, min_ov)
    found = [match(b, min_ov, None) for b in batches]
    joined = [np.concatenate([f[k] for f in found]) if found else np.zeros(0, dtype)
              for k, dtype in ((0, np.float64), (1, np.int64), (2, np.int64))]  # fmt: skip
    return PassOne(ig_gt, ig_det, counts_fp, joined[1], joined[2], joined[0], batches)


@dataclass(frozen=True, eq=False)
class PassTwo:
    """What ``computeStatistics``' pass 2 counts for one class x difficulty at one score
    threshold (detections below it left out, as the devkit's per-threshold pass does).

    tp_objects: scene indices of the valid objects it counts as true positives;
    valid: how many objects it scores; false_positives: its FP count.
    """

    tp_objects: np.ndarray
    valid: int
    false_positives: int


def pass_two(scene: Scene, cls: str, d: int, protocol: str, threshold: float) -> PassTwo:
    """``cleanData`` and pass 2 (largest IoU first) at ``threshold`` for one class x difficulty:
    the true positives, scored objects and false positives of the curve point at that
    threshold (per image, when ``scene`` holds one image)."""
    min_ov = MIN_OVERLAP[cls]
    ig_gt, ig_det, counts_fp = _cleaned(scene, cls, d, protocol)
    thr = np.array([threshold], dtype=np.float64)
    fp = int((counts_fp & (scene.det_score >= threshold)).sum())
    tp_objects = []
    for b in match_batches(scene, ig_gt, ig_det, counts_fp, min_ov):
        _, _, matched, objects = match(b, min_ov, thr, tp_objects=True)
        fp -= int(matched[0])
        tp_objects.append(objects)
    found = np.concatenate(tp_objects) if tp_objects else np.zeros(0, np.int64)
    return PassTwo(found, int((ig_gt == 0).sum()), fp)


def class_curve(scene: Scene, cls: str, d: int, protocol: str) -> tuple[ClassDifficultyAP, PassOne]:
    """``eval_class`` for one class and difficulty, and its pass-1 assignment."""
    min_ov = MIN_OVERLAP[cls]
    p1 = pass_one(scene, cls, d, protocol)
    n_gt = int((p1.ignored_gt == 0).sum())
    thresholds = get_thresholds(p1.tp_scores, n_gt)
    t = len(thresholds)
    tp, fn, fp = np.zeros(t, np.int64), np.zeros(t, np.int64), np.zeros(t, np.int64)
    batched_gt = sum(int((b.ignored_gt == 0).sum()) for b in p1.batches)
    fn += n_gt - batched_gt  # valid ground truth without any candidate
    fp_scores = np.sort(scene.det_score[p1.counts_fp])
    fp += len(fp_scores) - np.searchsorted(fp_scores, thresholds, side="left")
    for b in p1.batches:
        b_tp, b_fn, b_matched = match(b, min_ov, thresholds)
        tp, fn, fp = tp + b_tp, fn + b_fn, fp - b_matched
    return _summarise(cls, d, n_gt, thresholds, tp, fp, fn), p1


def _summarise(
    cls: str, d: int, n_gt: int, thr: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> ClassDifficultyAP:
    """Precision/recall at the kept thresholds, monotone precision, R11 and R40 APs."""
    t, full = len(thr), N_SAMPLE_PTS
    precision, recall, thresholds = np.zeros(full), np.full(full, np.nan), np.full(full, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision[:t] = np.nan_to_num(tp / (tp + fp), nan=0.0)
        recall[:t] = tp / (tp + fn)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    thresholds[:t] = thr
    ap_r11 = sum(float(p) for p in precision[0::4]) / 11.0
    ap_r40 = sum(float(p) for p in precision[1:]) / 40.0
    pad = np.zeros(full - t, np.int64)
    return ClassDifficultyAP(
        cls, DIFFICULTIES[d], ap_r11, ap_r40, n_gt, n_gt < full, t, thresholds, recall, precision,
        np.concatenate([tp, pad]), np.concatenate([fp, pad]), np.concatenate([fn, pad]),
    )  # fmt: skip


def check_inputs(
    records: Sequence[ImageRecord], protocol: str, classes: Sequence[str]
) -> tuple[str, ...]:
    if protocol not in PROTOCOLS:
        raise InputError(
            f"unknown evaluation protocol {protocol!r} (use one of {', '.join(PROTOCOLS)})"
        )
    classes = tuple(dict.fromkeys(str(c).lower() for c in classes))
    unknown = [c for c in classes if c not in MIN_OVERLAP]
    if unknown or not classes:
        raise InputError(
            f"cannot evaluate classes {unknown or list(classes)}; KITTI evaluates car, pedestrian, cyclist"
        )
    if not records:
        raise InputError("no images to evaluate")
    for r in records:
        if not r.has_labels:
            raise InputError(
                "image has no ground-truth labels; evaluation needs KITTI label_2 files", r.path
            )
    if len({r.stem for r in records}) != len(records):
        raise InputError("the same image stem appears twice among the evaluated images")
    return classes


def evaluate_detections(
    records: Sequence[ImageRecord],
    detections: Mapping[str, Detections],
    protocol: str = "official",
    classes: Sequence[str] = ("car", "pedestrian", "cyclist"),
) -> EvalResult:
    """Score detections against KITTI ground truth exactly as ``evaluate_object.cpp``.

    records: the evaluated images with their label_2 objects (file order).
    detections: stem -> Detections (boxes (N, 4) float32 xyxy, scores (N,));
        an image without an entry detects nothing.  Boxes and scores are scored
        as the devkit reads them from the protocol's result files
        (:func:`engine.eval.kitti_io.written_values`: the "squeezedet" writer
        rounds boxes to 2 and scores to 3 decimals, so rounding can tie scores).
        Detection order within an image (score-descending) decides ties, as
        file order does in the devkit.
    protocol: "official" or "squeezedet" (see the module docstring).
    classes: subset of ("car", "pedestrian", "cyclist").

    Raises InputError for an unknown protocol or class, no images, or an image
    without labels.
    """
    classes = check_inputs(records, protocol, classes)
    scene = build_scene(records, detections, min(MIN_OVERLAP[c] for c in classes), protocol)
    curves = [
        class_curve(scene, c, d, protocol)[0] for c in classes for d in range(len(DIFFICULTIES))
    ]
    return scene_result(records, detections, scene, protocol, classes, curves)


def scene_result(
    records: Sequence[ImageRecord],
    detections: Mapping[str, Detections],
    scene: Scene,
    protocol: str,
    classes: tuple[str, ...],
    curves: Sequence[ClassDifficultyAP],
) -> EvalResult:
    """The EvalResult of a scene's curves (every class x difficulty), counts and warnings."""
    curves = list(curves)
    ap = {c: {cv.difficulty: cv for cv in curves if cv.cls == c} for c in classes}
    dontcare = int((scene.gt_type == "dontcare").sum())
    counts = {
        "images": len(records),
        "detections": len(scene.det_score),
        "gt_objects": len(scene.gt_type) - dontcare,
        "dontcare_regions": dontcare,
    }
    return EvalResult(
        protocol, classes, ap, counts, tuple(input_warnings(records, detections, curves))
    )
