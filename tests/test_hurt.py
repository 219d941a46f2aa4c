"""Per-image true positives lost (engine.eval.hurt) against hand answers and the devkit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from squeezelens.engine.compare import compare_detections
from squeezelens.engine.eval import evaluate_detections
from squeezelens.engine.eval.hurt import image_hurt, score_image
from tests.test_devkit import CLASSES, DIFFS, dets, obj, record, scenes

CAR_A, CAR_B = (100.0, 100.0, 200.0, 160.0), (300.0, 100.0, 400.0, 160.0)


def shifted(box, dx):
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_a_lost_car_and_a_spurious_box():
    rec = record("000001", [obj("Car", CAR_A), obj("Car", CAR_B)])
    ref = dets([("car", CAR_A, 0.9), ("car", CAR_B, 0.8)])
    # B found at IoU 0.6 (< 0.7 for cars: a miss and a false positive), plus a spurious box
    other = dets([("car", CAR_A, 0.9), ("car", shifted(CAR_B, 25.0), 0.8),
                  ("car", (600.0, 100.0, 700.0, 160.0), 0.7)])  # fmt: skip
    hurt = image_hurt(rec, ref, other)
    assert (hurt.gt, hurt.tp_ref, hurt.tp_other, hurt.tp_lost) == (2, 2, 1, 1)
    assert hurt.recall_drop == pytest.approx(0.5)
    assert (hurt.fp_ref, hurt.fp_other, hurt.fp_gained) == (0, 2, 2)


def test_a_spurious_box_alone_loses_no_true_positive():
    """'Most changes' counts it like a missed car; true positives lost does not."""
    rec = record("000001", [obj("Car", CAR_A)])
    ref = dets([("car", CAR_A, 0.9)])
    other = dets([("car", CAR_A, 0.9), ("cyclist", (600.0, 100.0, 640.0, 160.0), 0.6)])
    assert compare_detections(ref, other).change_count == 1
    hurt = image_hurt(rec, ref, other)
    assert (hurt.tp_lost, hurt.fp_gained, hurt.recall_drop) == (0, 1, 0.0)


def test_iou_of_the_class_and_the_threshold():
    rec = record("000001", [obj("Pedestrian", (100.0, 100.0, 140.0, 200.0))])
    near = dets([("pedestrian", (108.0, 100.0, 148.0, 200.0), 0.5)])  # IoU 0.67: > 0.5
    assert score_image(rec, near).tp == frozenset({0})
    assert score_image(rec, near, threshold=0.6).tp == frozenset()  # below the threshold
    car = record("000002", [obj("Car", (100.0, 100.0, 140.0, 200.0))])
    assert score_image(car, dets([("car", (108.0, 100.0, 148.0, 200.0), 0.5)])).tp == frozenset()


def test_found_objects_and_unlabelled_difficulty():
    rec = record("000001", [obj("Car", CAR_A), obj("Car", CAR_B, occ=3)])  # B is never scored
    ref = dets([])
    other = dets([("car", CAR_A, 0.9), ("car", CAR_B, 0.9)])
    hurt = image_hurt(rec, ref, other)
    assert (hurt.gt, hurt.tp_lost, hurt.tp_found, hurt.recall_drop) == (1, 0, 1, -1.0)
    assert hurt.fp_gained == 0  # the box on the unscored car is neither TP nor FP


@pytest.mark.parametrize("protocol", ["official", "squeezedet"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes())
def test_per_image_counts_add_up_to_the_devkit_curve(protocol, scene):
    """At each threshold of the devkit's curve, the per-image TP and FP of every image add
    up to the curve's TP and FP: the same matching, image by image."""
    records, detections = scene
    result = evaluate_detections(records, detections, protocol=protocol)
    for cls in CLASSES:
        for name in DIFFS:
            curve = result.ap[cls][name]
            for k in range(curve.n_points):
                t = curve.thresholds[k]
                scores = [score_image(r, detections[r.stem], t, protocol, name, (cls,))
                          for r in records]  # fmt: skip
                assert sum(len(s.tp) for s in scores) == curve.tp[k], (cls, name, k)
                assert sum(s.fp for s in scores) == curve.fp[k], (cls, name, k)
            assert sum(s.gt for s in (score_image(r, detections[r.stem], 0.0, protocol, name,
                       (cls,)) for r in records)) == curve.n_gt  # fmt: skip


def test_empty_detections_and_objects():
    rec = record("000001", [])
    empty = dets([])
    hurt = image_hurt(rec, empty, empty)
    assert (hurt.gt, hurt.tp_lost, hurt.fp_gained, hurt.recall_drop) == (0, 0, 0, 0.0)
    assert np.isfinite(hurt.recall_drop)
