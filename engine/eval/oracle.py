"""TIDE's oracle on a devkit scene: the detections and objects after fixing error types.

The fixes (see :mod:`engine.eval.tide`) remove boxes, give a box its object's box
and type, or remove missed objects.  They are applied to the flat
:class:`~engine.eval.matching.Scene` the devkit scores, so the fixed AP is the
devkit's own: a moved box gets its pairs, DontCare overlap and height again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.eval.devkit import MIN_HEIGHT, NEIGHBOUR, box_overlap, class_curve
from squeezelens.engine.eval.matching import Scene
from squeezelens.engine.eval.results import ClassDifficultyAP
from squeezelens.engine.eval.tide import ERROR_TYPES, FP_TYPES, ErrorTyping


def _moved_pairs(scene: Scene, dets: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, ...]:
    """New (pair_det, pair_gt, pair_iou, dontcare overlap) of detections moved to ``boxes``."""
    starts = np.searchsorted(scene.gt_image, scene.det_image[dets], side="left")
    ends = np.searchsorted(scene.gt_image, scene.det_image[dets], side="right")
    out_d, out_g, out_iou, dontcare = [], [], [], np.zeros(len(dets))
    for k, (det, lo, hi) in enumerate(zip(dets, starts, ends, strict=True)):
        objects = np.arange(lo, hi)
        care = scene.gt_type[objects] != "dontcare"
        iou = box_overlap(boxes[k : k + 1], scene.gt_box[objects[care]])[0]
        hit = iou > 0
        out_d.append(np.full(int(hit.sum()), det))
        out_g.append(objects[care][hit])
        out_iou.append(iou[hit])
        dc = box_overlap(boxes[k : k + 1], scene.gt_box[objects[~care]], own_area=True)
        dontcare[k] = dc.max() if dc.size else 0.0
    joined = (np.concatenate(a) if a else np.zeros(0) for a in (out_d, out_g, out_iou))
    pd, pg, piou = joined
    return pd.astype(np.int64), pg.astype(np.int64), piou, dontcare


def _renumber(keep: np.ndarray) -> np.ndarray:
    """Old index -> new index after dropping ~keep (-1 for dropped)."""
    return np.where(keep, np.cumsum(keep) - 1, -1)


def patch_scene(
    scene: Scene,
    keep_det: np.ndarray,
    keep_gt: np.ndarray,
    det_type: np.ndarray,
    moved: np.ndarray,
    moved_boxes: np.ndarray,
) -> Scene:
    """The scene with detections ``moved`` (K,) given ``moved_boxes`` (K, 4) xyxy, types
    ``det_type`` (D,), then only the detections ``keep_det`` (D,) and objects ``keep_gt`` (G,)."""
    fields = {k: getattr(scene, k) for k in Scene.__dataclass_fields__}
    fields["det_type"] = det_type
    if len(moved):
        pd, pg, piou, dontcare = _moved_pairs(scene, moved, moved_boxes)
        stay = ~np.isin(scene.pair_det, moved)
        fields["pair_det"] = np.concatenate([scene.pair_det[stay], pd])
        fields["pair_gt"] = np.concatenate([scene.pair_gt[stay], pg])
        fields["pair_iou"] = np.concatenate([scene.pair_iou[stay], piou])
        for name, values in (
            ("det_box", moved_boxes),
            ("det_dontcare", dontcare),
            ("det_height", np.abs(moved_boxes[:, 1] - moved_boxes[:, 3])),
        ):
            fields[name] = fields[name].copy()
            fields[name][moved] = values  # fmt: skip
    det_new, gt_new = _renumber(keep_det), _renumber(keep_gt)
    pairs = (det_new[fields["pair_det"]] >= 0) & (gt_new[fields["pair_gt"]] >= 0)
    for name in ("pair_det", "pair_gt", "pair_iou"):
        fields[name] = fields[name][pairs]
    fields["pair_det"], fields["pair_gt"] = det_new[fields["pair_det"]], gt_new[fields["pair_gt"]]
    for name in fields:
        if name.startswith("det_"):
            fields[name] = fields[name][keep_det]
        elif name.startswith("gt_"):
            fields[name] = fields[name][keep_gt]
    return Scene(**fields)


def check_kinds(kinds: Iterable[str]) -> frozenset[str]:
    kinds = frozenset(kinds)
    unknown = sorted(kinds - set(ERROR_TYPES))
    if unknown:
        raise InputError(f"unknown error type(s) {unknown} (use {', '.join(ERROR_TYPES)})")
    return kinds


@dataclass(frozen=True, eq=False)
class Fix:
    """What the oracle changes: detections removed (D,) bool, detections moved (K,) onto
    objects' boxes with those objects' types, objects removed (G,) bool."""

    removed: np.ndarray
    moved: np.ndarray
    removed_objects: np.ndarray

    @property
    def empty(self) -> bool:
        return not (self.removed.any() or len(self.moved) or self.removed_objects.any())


def plan_fix(scene: Scene, typing: ErrorTyping, kinds: Iterable[str]) -> Fix:
    """The oracle's changes that fix every error of ``kinds``."""
    kinds = check_kinds(kinds)
    codes = [FP_TYPES.index(k) for k in kinds if k in FP_TYPES]
    chosen = np.isin(typing.det_error, codes)
    snap = chosen & typing.det_fixed
    missed = typing.gt_missed if "missed" in kinds else np.zeros(len(scene.gt_type), bool)
    return Fix(chosen & ~snap, np.flatnonzero(snap), missed)


def fixed_scene(scene: Scene, typing: ErrorTyping, kinds: Iterable[str]) -> Scene | None:
    """The scene after the oracle fixes every error of ``kinds`` (None: nothing to fix)."""
    return _apply(scene, typing, plan_fix(scene, typing, kinds))


def _apply(scene: Scene, typing: ErrorTyping, fix: Fix) -> Scene | None:
    if fix.empty:
        return None
    # numpy str arrays are fixed width (the longest name in the array): widen the
    # detection types before an object's type is written, or "pedestrian" written
    # over "cyclist" would silently become "pedestr" (no class's detection)
    det_type = scene.det_type.astype(np.result_type(scene.det_type, scene.gt_type))
    det_type[fix.moved] = scene.gt_type[typing.det_object[fix.moved]]
    boxes = scene.gt_box[typing.det_object[fix.moved]].reshape(-1, 4)
    return patch_scene(scene, ~fix.removed, ~fix.removed_objects, det_type, fix.moved, boxes)


def affected_classes(
    scene: Scene, typing: ErrorTyping, fix: Fix, classes: Iterable[str], protocol: str
) -> set[str]:
    """The classes whose devkit evaluation a fix can change: a changed detection counts for
    its class before and after, and under the official protocol, when it is (or becomes)
    shorter than the min height, for every class (the devkit ignores short detections of
    any class); a removed object for its class and the class it neighbours."""
    changed = np.flatnonzero(fix.removed).tolist() + fix.moved.tolist()
    types = set(scene.det_type[changed].tolist())
    types |= set(scene.gt_type[typing.det_object[fix.moved]].tolist())
    heights = np.concatenate(
        [scene.det_height[changed], scene.gt_height[typing.det_object[fix.moved]]]
    )
    short = protocol == "official" and bool(
        (np.trunc(heights) < MIN_HEIGHT[typing.difficulty]).any()
    )
    gone = set(scene.gt_type[fix.removed_objects].tolist())
    return {c for c in classes if short or c in types or c in gone or NEIGHBOUR.get(c) in gone}


def fixed_curves(
    scene: Scene, typing: ErrorTyping, kinds: Iterable[str], protocol: str
) -> dict[str, ClassDifficultyAP]:
    """Every class's devkit curve at the typing's difficulty after fixing ``kinds`` (a class
    the fix cannot change keeps its curve)."""
    fix = plan_fix(scene, typing, kinds)
    curves = dict(typing.curves)
    if fix.empty:
        return curves
    patched = _apply(scene, typing, fix)
    for c in affected_classes(scene, typing, fix, typing.curves, protocol):
        curves[c] = class_curve(patched, c, typing.difficulty, protocol)[0]
    return curves
