"""Per-image reasons for lost and new boxes: known answers on a hand-made image."""

from __future__ import annotations

import numpy as np
import pytest

from squeezelens.engine.box_reasons import LOST_KINDS, NEW_KINDS, explain_changes
from squeezelens.engine.compare import compare_detections
from squeezelens.engine.types import Detections
from tests.test_devkit import CLASSES, obj

CAR_A = (0.0, 0.0, 100.0, 60.0)  # float finds it; quantized box shifted: mislocalized
CAR_B = (200.0, 0.0, 300.0, 60.0)  # float finds it; quantized has nothing: missed
CAR_C = (400.0, 0.0, 500.0, 60.0)  # quantized calls it a pedestrian: misclassified
CAR_D = (600.0, 0.0, 700.0, 60.0)  # two float boxes, one quantized box holds it: duplicate
DONTCARE = (800.0, 0.0, 1000.0, 100.0)
OBJECTS = (obj("Car", CAR_A), obj("Car", CAR_B), obj("Car", CAR_C), obj("Car", CAR_D),
           obj("DontCare", DONTCARE))  # fmt: skip


def dets(rows):
    return Detections(
        np.array([r[1] for r in rows], float).reshape(-1, 4),
        np.array([r[2] for r in rows], float),
        np.array([CLASSES.index(r[0]) for r in rows]),
    )


FLOAT = dets([
    ("car", CAR_A, 0.99),
    ("car", CAR_B, 0.98),
    ("car", (410.0, 0.0, 510.0, 60.0), 0.97),
    ("car", CAR_D, 0.96),
    ("car", (608.0, 0.0, 708.0, 60.0), 0.95),  # a float duplicate on D
    ("car", (850.0, 10.0, 900.0, 80.0), 0.94),  # inside DontCare
    ("cyclist", (0.0, 200.0, 50.0, 300.0), 0.93),  # background
])  # fmt: skip


def quant_dets():
    return dets([
        ("car", (60.0, 0.0, 160.0, 60.0), 0.9),  # IoU 40/160 with A: Loc
        ("pedestrian", (375.0, 0.0, 475.0, 60.0), 0.89),  # IoU 0.6 with C, 0.48 with its float box
        ("car", (606.0, 0.0, 706.0, 60.0), 0.88),  # holds D, twin of the float duplicate
        ("car", (0.0, 400.0, 80.0, 460.0), 0.87),  # background
        ("car", (210.0, 300.0, 260.0, 380.0), 0.5),  # background too
    ])  # fmt: skip


def test_lost_boxes_say_why():
    quant = quant_dets()
    comp = compare_detections(FLOAT, quant)
    assert comp.lost == (0, 1, 2, 3, 5, 6)
    r = explain_changes(FLOAT, quant, OBJECTS, comp)
    by_box = {x.box: x for x in r.lost}
    assert r.reference == "labels" and r.difficulty == "hard"
    a = by_box[0]
    assert (a.kind, a.object_index, a.other_box) == ("mislocalized", 0, 0)
    assert a.iou == pytest.approx(40 / 160) and a.text() == "mislocalized, IoU 0.25"
    assert (by_box[1].kind, by_box[1].object_index) == ("missed", 1)
    c = by_box[2]
    assert (c.kind, c.other_class, c.other_box, c.object_index) == (
        "misclassified",
        "pedestrian",
        1,
        2,
    )
    assert c.iou == pytest.approx(75 / 125) and c.text() == "misclassified as pedestrian, IoU 0.60"
    d = by_box[3]
    assert (d.kind, d.other_box, d.object_index) == ("duplicate", 2, 3)
    assert d.text() == "out-scored by a duplicate"
    assert by_box[5].kind == "ignored"
    assert (by_box[6].kind, by_box[6].error) == ("false_positive", "bkg")
    assert by_box[6].text() == "was a false positive (bkg)"
    assert {x.kind for x in r.lost} <= set(LOST_KINDS)


def test_new_boxes_say_what_they_are():
    quant = quant_dets()
    r = explain_changes(FLOAT, quant, OBJECTS)
    by_box = {x.box: x for x in r.new}
    assert sorted(by_box) == [0, 1, 3, 4]
    assert (by_box[0].kind, by_box[0].object_index) == ("mislocalized", 0)
    assert (by_box[1].kind, by_box[1].error) == ("misclassified", "cls")
    assert by_box[3].kind == by_box[4].kind == "background"
    assert by_box[3].text() == "background"
    assert {x.kind for x in r.new} <= set(NEW_KINDS)
    assert r.of_new(3) is by_box[3] and r.of_new(2) is None and r.of_lost(1).kind == "missed"


def test_a_box_below_the_foreground_overlap_of_another_class_is_both():
    quant = dets([("pedestrian", (440.0, 0.0, 540.0, 60.0), 0.9)])  # IoU 60/140 with C
    floats = dets([("car", CAR_C, 0.9)])
    r = explain_changes(floats, quant, OBJECTS)
    assert (r.lost[0].kind, r.lost[0].other_class) == ("misclassified", "pedestrian")
    assert r.lost[0].iou == pytest.approx(60 / 140)
    assert (r.new[0].kind, r.new[0].text()) == ("both", "both, IoU 0.43")


def test_without_labels_the_float_boxes_are_the_objects():
    quant = quant_dets()
    r = explain_changes(FLOAT, quant)
    by_box = {x.box: x for x in r.lost}
    assert r.reference == "float boxes"
    assert (by_box[0].kind, by_box[0].object_index) == ("mislocalized", 0)
    assert by_box[1].kind == "missed"
    assert by_box[5].kind == by_box[6].kind == "missed"  # no DontCare, no false positives now
    assert by_box[3].kind == "duplicate"
    new = {x.box: x.kind for x in r.new}
    assert new[3] == "background" and new[0] == "mislocalized"


def test_identical_detections_have_no_reasons():
    # (how fast reasons are is measured by benchmarks/bench_errors.py and bench_gui_reasons.py)
    r = explain_changes(FLOAT, FLOAT, OBJECTS)
    assert r.lost == () and r.new == ()
    assert explain_changes(FLOAT, quant_dets(), OBJECTS).lost  # the same call does find losses
