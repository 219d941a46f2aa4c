"""Detection error types (TIDE, Bolya et al. 2020) on top of the KITTI devkit's matching.

Per difficulty, every evaluated class runs the devkit's own ``cleanData`` and
pass 1 (:func:`engine.eval.devkit.class_curve`): a detection *assigned* by pass 1
is a true positive or ignored, an unassigned valid detection outside every
DontCare box is a **false positive**, and a valid object left unassigned is a
**false negative**.  Every false positive of class c is then exactly one of
(IoU with every labelled object of its image but DontCare, ``t_f`` = c's KITTI
overlap, 0.7 car / 0.5 pedestrian and cyclist, ``t_b`` = 0.1), tested in TIDE's
order:

* **Loc**: best IoU with an object of class c in ``[t_b, t_f]``;
* **Cls**: IoU > ``t_f`` with an object of another type (any labelled type:
  Van, Truck, ... too);
* **Dupe**: IoU > ``t_f`` with an object of class c (pass 1 gave that object a
  higher-scoring detection: an unassigned candidate means it was taken);
* **Bkg**: IoU < ``t_b`` with every object;
* **Both**: the rest: another type's object in ``[t_b, t_f]``.

A false-negative object is **Missed** unless a Cls or Loc error targets it
(TIDE's ``usable``).  Objects include the ones the difficulty ignores (too hard,
neighbour classes): a box that would match them is not a false positive, so
the oracle fix of a box near them is real.

Adaptation to KITTI (what differs from TIDE's COCO code, and why):

* matches need IoU strictly above ``t_f`` (the devkit's rule), so Loc takes
  ``IoU <= t_f`` and Cls/Dupe ``IoU > t_f``; Bkg is ``IoU < t_b``;
* "found" is the devkit's pass 1 (per object in label-file order, the
  highest-scoring free candidate) instead of TIDE's per-prediction greedy;
  an object is found when pass 1 of its own class assigns it a detection
  (objects of classes KITTI does not evaluate are never found);
* Loc keeps TIDE's test (the best same-class object, found or not); a Loc box
  on a found object is removed by its fix, as TIDE's BestGTMatch suppresses it;
* an object is not Missed when a Cls or Loc error targets it (TIDE's code:
  those are the errors whose fix can find it; a Both box is only removed);
* a silenced object (the official devkit's quirk: a valid object whose match
  is a detection shorter than the min height is neither found nor missed) is
  no error: the oracle cannot bring it back;
* the per-type fixes are independent (TIDE's default, not its progressive mode):
  on a collapsed model (AP near 0) only a fix that makes true positives (Loc,
  Cls) can raise AP; removing boxes or objects alone cannot.
* the oracle edits the detections and objects and the devkit scores them again
  (AP|R11 and AP|R40): **Cls** and **Loc** errors on an object not yet found
  are fixed for the highest-scoring error per object (the box takes the
  object's box and type: TIDE counts it a true positive of the object's class,
  whatever the IoU), every other Cls/Loc error is removed; **Both**, **Dupe**,
  **Bkg** boxes are removed; **Missed** objects are removed (TIDE lowers the
  positive count).  ΔAP = fixed AP - AP, per class x difficulty, with every
  class's errors of that type fixed at once; as in TIDE a negative ΔAP (the
  devkit's 41-point sampling: removing missed objects can leave fewer than 41
  and cap the curve) is reported as 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezelens.engine.eval.devkit import MIN_OVERLAP, PassOne, class_curve, pass_one
from squeezelens.engine.eval.matching import Scene
from squeezelens.engine.eval.results import ClassDifficultyAP

ERROR_TYPES: tuple[str, ...] = ("cls", "loc", "both", "dupe", "bkg", "missed")
FP_TYPES: tuple[str, ...] = ERROR_TYPES[:5]
ERROR_LABELS = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupe": "Dupe", "bkg": "Bkg",
                "missed": "Missed"}  # fmt: skip
BACKGROUND_IOU = 0.1  # t_b
NOT_FP = -1
CLS, LOC, BOTH, DUPE, BKG = range(5)


@dataclass(frozen=True, eq=False)
class ErrorTyping:
    """Every detection's and object's part at one difficulty (scene indices).

    det_error: (D,) int8 index into FP_TYPES, or -1 (not a false positive);
    det_status: (D,) int8 1 true positive, 0 ignored or not evaluated, -1 false positive;
    det_object: (D,) the object a detection is assigned to, or behind its error (Loc, Dupe:
        the best object of its class; Cls, Both: of another type; -1 none);
    det_iou: (D,) float64 IoU with det_object (Both/Bkg: the best IoU with any object);
    det_fixed: (D,) bool, a Cls/Loc error its oracle turns into a true positive;
    gt_found: (G,) bool, assigned by pass 1 of its own class;
    gt_valid: (G,) bool, counted by the devkit (a false negative when not found);
    gt_missed: (G,) bool, a false negative no Cls/Loc error explains.
    curves: class -> the devkit's curve at this difficulty (empty when not asked for).
    """

    difficulty: int
    det_error: np.ndarray
    det_status: np.ndarray
    det_object: np.ndarray
    det_iou: np.ndarray
    det_fixed: np.ndarray
    gt_found: np.ndarray
    gt_valid: np.ndarray
    gt_missed: np.ndarray
    curves: dict[str, ClassDifficultyAP]


def _group_max(keys: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per key in [0, n): (max value (n,), 0 where none; the position of the max in keys, -1)."""
    best, where = np.zeros(n), np.full(n, -1, dtype=np.int64)
    if len(keys):
        order = np.lexsort((-values, keys))
        first = order[np.unique(keys[order], return_index=True)[1]]
        best[keys[first]], where[keys[first]] = values[first], first
    return best, where


def _taken(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """values[at] where at >= 0, else -1."""
    out = np.full(len(at), -1, dtype=np.int64)
    out[at >= 0] = values[at[at >= 0]]
    return out


def _overlap_of_type(scene: Scene) -> np.ndarray:
    """(D,) t_f of each detection's class (0.5 for a class KITTI does not evaluate)."""
    kinds, inverse = np.unique(scene.det_type, return_inverse=True)
    return np.array([MIN_OVERLAP.get(str(k), 0.5) for k in kinds])[inverse.reshape(-1)]


def _passes(
    scene: Scene, classes: tuple[str, ...], d: int, protocol: str, with_curves: bool
) -> tuple:
    """Run the devkit per class: (curves, status (D,), found (G,), valid (G,), tp object (D,))."""
    n_det, n_gt = len(scene.det_score), len(scene.gt_type)
    status, tp_object = np.zeros(n_det, np.int8), np.full(n_det, -1, np.int64)
    found, valid, curves = np.zeros(n_gt, bool), np.zeros(n_gt, bool), {}
    for cls in classes:
        if with_curves:
            curves[cls], p1 = class_curve(scene, cls, d, protocol)
        else:
            p1 = pass_one(scene, cls, d, protocol)
        own = scene.gt_type[p1.assigned_gt] == cls
        found[p1.assigned_gt[own]] = True
        valid |= p1.ignored_gt == 0
        tp = (p1.ignored_det[p1.assigned_det] == 0) & (p1.ignored_gt[p1.assigned_gt] == 0)
        status[p1.assigned_det[tp]] = 1
        tp_object[p1.assigned_det] = p1.assigned_gt
        status[_false_positives(p1, n_det)] = -1
    return curves, status, found, valid, tp_object


def _false_positives(p1: PassOne, n_det: int) -> np.ndarray:
    unassigned = np.ones(n_det, bool)
    unassigned[p1.assigned_det] = False
    return p1.counts_fp & unassigned


def _classify(scene: Scene, fp: np.ndarray, t_b: float) -> tuple[np.ndarray, ...]:
    """(error (D,), object (D,), iou (D,)) of the false positives ``fp`` (D,) bool."""
    n = len(fp)
    keep = fp[scene.pair_det]
    pd, pg, iou = scene.pair_det[keep], scene.pair_gt[keep], scene.pair_iou[keep]
    same = scene.gt_type[pg] == scene.det_type[pd]
    s_best, s_at = _group_max(pd[same], iou[same], n)
    o_best, o_at = _group_max(pd[~same], iou[~same], n)
    s_obj, o_obj = _taken(pg[same], s_at), _taken(pg[~same], o_at)
    t_f = _overlap_of_type(scene)
    loc = (s_best >= t_b) & (s_best <= t_f)
    cls = ~loc & (o_best > t_f)
    dupe = ~loc & ~cls & (s_best > t_f)
    bkg = ~loc & ~cls & ~dupe & (np.maximum(s_best, o_best) < t_b)
    error = np.select([loc, cls, dupe, bkg], [LOC, CLS, DUPE, BKG], BOTH).astype(np.int8)
    error[~fp] = NOT_FP
    obj = np.select([loc | dupe, cls | (error == BOTH)], [s_obj, o_obj], -1)
    best_iou = np.select([loc | dupe, cls], [s_best, o_best], np.maximum(s_best, o_best))
    return error, np.where(fp, obj, -1), np.where(fp, best_iou, 0.0)


def _fixable(scene: Scene, error: np.ndarray, obj: np.ndarray, found: np.ndarray) -> np.ndarray:
    """TIDE's BestGTMatch: per object not yet found, its highest-scoring Cls/Loc error
    (the first in detection order on a tie) is fixed; (D,) bool."""
    cand = np.flatnonzero(((error == CLS) | (error == LOC)) & (obj >= 0))
    cand = cand[~found[obj[cand]]]
    fixed = np.zeros(len(error), bool)
    if len(cand):
        order = cand[np.lexsort((cand, -scene.det_score[cand], obj[cand]))]
        first = np.unique(obj[order], return_index=True)[1]
        fixed[order[first]] = True
    return fixed


def type_errors(
    scene: Scene,
    classes: tuple[str, ...],
    d: int,
    protocol: str,
    t_b: float = BACKGROUND_IOU,
    with_curves: bool = True,
) -> ErrorTyping:
    """The error type of every false positive and missed object at difficulty ``d``.

    scene: :func:`engine.eval.devkit.build_scene` with ``keep_iou`` <= t_b (every
    pair the typing needs); classes: the evaluated classes (lower case).
    with_curves: also score each class (``curves``; pass 1 alone otherwise, faster).
    """
    curves, status, found, valid, tp_object = _passes(scene, classes, d, protocol, with_curves)
    error, obj, iou = _classify(scene, status == -1, t_b)
    obj = np.where(status == -1, obj, tp_object)
    fixed = _fixable(scene, error, obj, found)
    usable = np.zeros(len(found), bool)
    targets = obj[((error == CLS) | (error == LOC)) & (obj >= 0)]
    usable[targets[~found[targets]]] = True
    missed = valid & ~found & ~usable
    return ErrorTyping(d, error, status, obj, iou, fixed, found, valid, missed, curves)
