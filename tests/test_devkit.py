"""The numpy KITTI devkit against hand-computed answers and a loop-by-loop oracle.

The oracle (``ref_*`` below) follows ``evaluate_object.cpp`` statement by
statement with plain Python loops, one image and one threshold at a time, so
it shares no code with the vectorised implementation it checks.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezelens.engine.errors import InputError
from squeezelens.engine.eval import evaluate_detections, get_thresholds
from squeezelens.engine.eval.kitti_io import format_kitti_lines
from squeezelens.engine.types import Detections, GroundTruthObject, ImageRecord

CLASSES = ("car", "pedestrian", "cyclist")
DIFFS = ("easy", "moderate", "hard")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "kitti"

# ----------------------------------------------------------------------------- oracle

REF_MIN_HEIGHT = (40, 25, 25)
REF_MAX_OCC = (0, 1, 2)
REF_MAX_TRUNC = (0.15, 0.3, 0.5)
REF_MIN_OVERLAP = {"car": 0.7, "pedestrian": 0.5, "cyclist": 0.5}


def ref_overlap(a, b, criterion=-1):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    a_area = (a[2] - a[0]) * (a[3] - a[1])
    b_area = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (a_area + b_area - inter) if criterion == -1 else inter / a_area


def ref_thresholds(v, n_gt):
    v = sorted(v, reverse=True)
    t, current = [], 0.0
    for i in range(len(v)):
        l_recall = (i + 1) / n_gt
        r_recall = (i + 2) / n_gt if i < len(v) - 1 else l_recall
        if (r_recall - current) < (current - l_recall) and i < len(v) - 1:
            continue
        t.append(v[i])
        current += 1.0 / 40.0
    return t


def ref_clean(cls, gts, dets, d, protocol):
    """gts: [(type, trunc, occ, box)]; dets: [(type, box, score)]."""
    ignored_gt, dc, ignored_det, n_gt = [], [], [], 0
    for typ, trunc, occ, box in gts:
        height = box[3] - box[1]
        if typ.lower() == cls:
            valid = 1
        elif (cls, typ.lower()) in (("pedestrian", "person_sitting"), ("car", "van")):
            valid = 0
        else:
            valid = -1
        small = (
            height <= REF_MIN_HEIGHT[d] if protocol == "official" else height < REF_MIN_HEIGHT[d]
        )
        ignore = occ > REF_MAX_OCC[d] or trunc > REF_MAX_TRUNC[d] or small
        if valid == 1 and not ignore:
            ignored_gt.append(0)
            n_gt += 1
        elif valid == 0 or (ignore and valid == 1):
            ignored_gt.append(1)
        else:
            ignored_gt.append(-1)
        if typ.lower() == "dontcare":
            dc.append(box)
    for typ, box, _ in dets:
        valid = 1 if typ.lower() == cls else -1
        height = int(abs(box[1] - box[3]))
        if protocol == "official" and height < REF_MIN_HEIGHT[d]:
            ignored_det.append(1)
        else:
            ignored_det.append(0 if valid == 1 else -1)
    return ignored_gt, dc, ignored_det, n_gt


def ref_match_one(cls, gt_box, dets, ignored_det, assigned, low, compute_fp):
    """Inner loop of computeStatistics: the detection a ground truth gets (or -1)."""
    det_idx, valid_detection, max_overlap, assigned_ignored = -1, -1e7, 0.0, False
    for j, (_, box, score) in enumerate(dets):
        if ignored_det[j] == -1 or assigned[j] or low[j]:
            continue
        overlap = ref_overlap(box, gt_box)
        ok = overlap > REF_MIN_OVERLAP[cls]
        if not compute_fp and ok and score > valid_detection:
            det_idx, valid_detection = j, score
        elif (
            compute_fp
            and ok
            and (overlap > max_overlap or assigned_ignored)
            and ignored_det[j] == 0
        ):
            det_idx, valid_detection, max_overlap, assigned_ignored = j, 1, overlap, False
        elif compute_fp and ok and valid_detection == -1e7 and ignored_det[j] == 1:
            det_idx, valid_detection, assigned_ignored = j, 1, True
    return det_idx


def ref_stats(cls, gts, dets, dc, ignored_gt, ignored_det, compute_fp, thresh=0.0):
    tp = fp = fn = 0
    v = []
    assigned = [False] * len(dets)
    low = [compute_fp and s < thresh for _, _, s in dets]
    for i, (_, _, _, gt_box) in enumerate(gts):
        if ignored_gt[i] == -1:
            continue
        j = ref_match_one(cls, gt_box, dets, ignored_det, assigned, low, compute_fp)
        if j == -1 and ignored_gt[i] == 0:
            fn += 1
        elif j != -1 and (ignored_gt[i] == 1 or ignored_det[j] == 1):
            assigned[j] = True
        elif j != -1:
            tp += 1
            v.append(dets[j][2])
            assigned[j] = True
    if compute_fp:
        for j in range(len(dets)):
            if not (assigned[j] or ignored_det[j] in (-1, 1) or low[j]):
                fp += 1
        nstuff = 0
        for dc_box in dc:
            for j, (_, box, _) in enumerate(dets):
                if assigned[j] or ignored_det[j] in (-1, 1) or low[j]:
                    continue
                if ref_overlap(box, dc_box, 0) > REF_MIN_OVERLAP[cls]:
                    assigned[j] = True
                    nstuff += 1
        fp -= nstuff
    return tp, fp, fn, v


def ref_eval_class(cls, images, d, protocol):
    """images: [(gts, dets)]; returns (precision[41], n_gt, thresholds)."""
    n_gt, v, cleaned = 0, [], []
    for gts, dets in images:
        igt, dc, idet, n = ref_clean(cls, gts, dets, d, protocol)
        n_gt += n
        cleaned.append((igt, dc, idet))
        v += ref_stats(cls, gts, dets, dc, igt, idet, False)[3]
    thresholds = ref_thresholds(v, n_gt)
    precision = [0.0] * 41
    for t, thr in enumerate(thresholds):
        tp = fp = 0
        for (gts, dets), (igt, dc, idet) in zip(images, cleaned, strict=True):
            s = ref_stats(cls, gts, dets, dc, igt, idet, True, thr)
            tp, fp = tp + s[0], fp + s[1]
        precision[t] = tp / (tp + fp) if tp + fp else 0.0
    for t in range(len(thresholds)):
        precision[t] = max(precision[t:])
    return precision, n_gt, thresholds


def ref_read_result_lines(lines):
    """The devkit's loadDetections: fscanf("%s %lf ...") of each 16-field line, file order."""
    out = []
    for line in lines:
        f = line.split()
        out.append((f[0], tuple(float(v) for v in f[4:8]), float(f[15])))
    return out


def ref_images(records, detections, protocol="official"):
    """[(gts, dets)] per image; dets as the devkit reads them from the protocol's written file."""
    out = []
    for r in records:
        gts = [(o.type, o.truncated, o.occluded, o.box_xyxy) for o in r.objects]
        det = detections.get(r.stem, Detections.empty())
        out.append((gts, ref_read_result_lines(format_kitti_lines(det, protocol))))
    return out


# ----------------------------------------------------------------------------- helpers


def obj(typ, box, trunc=0.0, occ=0):
    return GroundTruthObject(typ, float(trunc), int(occ), -10.0, tuple(float(v) for v in box))


def record(stem, objects):
    return ImageRecord(stem, f"/nonexistent/{stem}.png", tuple(objects), True)


def dets(rows):
    """rows: [(class, box, score)] -> Detections."""
    if not rows:
        return Detections.empty()
    boxes = [r[1] for r in rows]
    return Detections(
        np.array(boxes),
        np.array([r[2] for r in rows]),
        np.array([CLASSES.index(r[0]) for r in rows]),
    )


def car_grid(n, per_image=10, height=60.0):
    """n well-separated easy cars over ceil(n / per_image) images: (records, gt boxes per stem)."""
    records, boxes = [], {}
    for k in range(0, n, per_image):
        stem = f"{k:06d}"
        bs = [
            (100.0 * i, 10.0, 100.0 * i + 80.0, 10.0 + height) for i in range(min(per_image, n - k))
        ]
        records.append(record(stem, [obj("Car", b) for b in bs]))
        boxes[stem] = bs
    return records, boxes


def perfect(boxes, cls="car", score=lambda k: 0.5):
    out, k = {}, 0
    for stem, bs in boxes.items():
        rows = []
        for b in bs:
            rows.append((cls, b, score(k)))
            k += 1
        out[stem] = rows
    return out


def evaluate(records, rows, **kw):
    return evaluate_detections(records, {s: dets(r) for s, r in rows.items()}, **kw)


def hand_ap(precision):
    """The devkit's two APs from a 41-point precision list (R11: 0,4,..,40; R40: 1..40)."""
    return sum(precision[k] for k in range(0, 41, 4)) / 11.0, sum(precision[1:41]) / 40.0


# ----------------------------------------------------------------------------- known answers


def test_perfect_detections_with_enough_objects_give_ap_one():
    records, boxes = car_grid(50)
    res = evaluate(records, perfect(boxes, score=lambda k: 1.0 - k / 100.0))
    for d in DIFFS:
        r = res.ap["car"][d]
        assert (r.ap_r11, r.ap_r40, r.n_gt, r.capped) == (1.0, 1.0, 50, False)
        assert r.n_points == 41
    assert res.map["r11"]["easy"] == pytest.approx(
        1.0 / 3.0
    )  # pedestrians/cyclists: no objects, AP 0


def test_false_positive_at_top_score():
    records, boxes = car_grid(50)
    rows = perfect(boxes, score=lambda k: 0.8 - k / 100.0)
    rows["000000"].append(("car", (5.0, 200.0, 85.0, 260.0), 0.99))  # overlaps nothing
    res = evaluate(records, rows)
    # every kept threshold sees all TPs above it plus the one FP; the highest
    # precision to the right of any point is the last one, 50 / 51
    assert res.ap["car"]["easy"].ap_r11 == pytest.approx(50 / 51, abs=1e-12)
    assert res.ap["car"]["easy"].ap_r40 == pytest.approx(50 / 51, abs=1e-12)
    first = res.ap["car"]["easy"]
    assert (first.tp[0], first.fp[0]) == (1, 1)  # the top threshold: one TP, the FP


def test_dontcare_absorbs_unmatched_detection_by_its_own_area():
    records, boxes = car_grid(50)
    dontcare = obj("DontCare", (0.0, 150.0, 400.0, 400.0), trunc=-1, occ=-1)
    records[0] = record("000000", [*records[0].objects, dontcare])
    rows = perfect(boxes)
    rows["000000"].append(("car", (5.0, 200.0, 85.0, 260.0), 0.99))  # inside the region, IoU ~0.05
    assert evaluate(records, rows).ap["car"]["easy"].ap_r40 == 1.0
    rows["000000"][-1] = ("car", (300.0, 200.0, 500.0, 260.0), 0.99)  # half outside: 0.5 < 0.7
    assert evaluate(records, rows).ap["car"]["easy"].ap_r40 == pytest.approx(50 / 51)


def test_van_is_ignored_for_car_but_truck_is_not():
    records, boxes = car_grid(50)
    extra = (5.0, 200.0, 85.0, 260.0)
    rows = perfect(boxes)
    rows["000000"].append(("car", extra, 0.99))
    for typ, expected in (("Van", 1.0), ("Truck", 50 / 51)):
        recs = [record("000000", [*records[0].objects, obj(typ, extra)]), *records[1:]]
        assert evaluate(recs, rows).ap["car"]["moderate"].ap_r40 == pytest.approx(expected)


def test_person_sitting_is_ignored_for_pedestrian():
    boxes = [(100.0 * i, 0.0, 100.0 * i + 40.0, 100.0) for i in range(45)]
    recs = [
        record(
            "a", [obj("Pedestrian", b) for b in boxes] + [obj("Person_sitting", (0, 300, 50, 400))]
        )
    ]
    rows = {"a": [("pedestrian", b, 0.5) for b in boxes] + [("pedestrian", (0, 300, 50, 400), 0.9)]}
    assert evaluate(recs, rows).ap["pedestrian"]["easy"].ap_r40 == 1.0


def test_too_small_detection_ignored_only_under_official_protocol():
    records, boxes = car_grid(50)
    rows = perfect(boxes)
    rows["000000"].append(("car", (5.0, 200.0, 85.0, 230.0), 0.99))  # 30 px high, no match
    official = evaluate(records, rows, protocol="official")
    squeezedet = evaluate(records, rows, protocol="squeezedet")
    assert official.ap["car"]["easy"].ap_r40 == 1.0  # 30 < 40: ignored
    assert official.ap["car"]["moderate"].ap_r40 == pytest.approx(50 / 51)  # 30 >= 25: a FP
    assert squeezedet.ap["car"]["easy"].ap_r40 == pytest.approx(50 / 51)


def test_ground_truth_at_exactly_min_height():
    records, boxes = car_grid(50, height=40.0)
    official = evaluate(records, perfect(boxes), protocol="official")
    squeezedet = evaluate(records, perfect(boxes), protocol="squeezedet")
    assert official.ap["car"]["easy"].n_gt == 0  # height <= 40 is too small in the devkit
    assert official.ap["car"]["easy"].ap_r40 == 0.0
    assert squeezedet.ap["car"]["easy"].n_gt == 50  # SqueezeDet's copy uses height < 40
    assert squeezedet.ap["car"]["easy"].ap_r40 == 1.0


@pytest.mark.parametrize("n", [1, 3, 10, 29, 40])
def test_capped_ap_with_few_objects(n):
    records, boxes = car_grid(n)
    r = evaluate(records, perfect(boxes, score=lambda k: 0.9 - k / 1000)).ap["car"]["easy"]
    # devkit rule: with n <= 40 objects every TP score is kept as a threshold, so
    # curve points 0..n-1 have precision 1 and points n..40 have precision 0
    precision = [1.0 if k < n else 0.0 for k in range(41)]
    assert (r.ap_r11, r.ap_r40) == pytest.approx(hand_ap(precision), abs=1e-12)
    assert r.capped and r.n_gt == n and r.n_points == n


def test_capped_ap_with_a_miss():
    records, boxes = car_grid(10)
    rows = perfect(boxes, score=lambda k: 0.9 - k / 100)
    rows["000000"].pop()  # the lowest-scored car is missed: 9 thresholds, recall 0.9 at the end
    r = evaluate(records, rows).ap["car"]["easy"]
    precision = [1.0 if k < 9 else 0.0 for k in range(41)]
    assert (r.ap_r11, r.ap_r40) == pytest.approx(hand_ap(precision))
    assert r.recall[8] == pytest.approx(0.9)


def test_overlap_must_be_strictly_greater_than_min():
    records, boxes = car_grid(50)
    rows = perfect(boxes)
    x1, y1, x2, y2 = boxes["000000"][0]
    rows["000000"][0] = ("car", (x1, y1, x2, y1 + 0.7 * (y2 - y1)), 0.5)  # IoU exactly 0.7
    r = evaluate(records, rows).ap["car"]["easy"]
    assert r.ap_r40 < 1.0
    assert (r.tp[r.n_points - 1], r.fp[r.n_points - 1], r.fn[r.n_points - 1]) == (49, 1, 1)


def test_pass_one_takes_highest_score_pass_two_largest_overlap():
    g1, g2, g3 = (0.0, 0.0, 100.0, 200.0), (50.0, 0.0, 150.0, 200.0), (500.0, 0.0, 600.0, 200.0)
    recs = [record("a", [obj("Pedestrian", g) for g in (g1, g2, g3)])]
    a = (25.0, 0.0, 125.0, 200.0)  # IoU 0.6 with g1 and with g2
    rows = {"a": [("pedestrian", a, 0.9), ("pedestrian", g1, 0.8), ("pedestrian", g3, 0.1)]}
    r = evaluate(recs, rows).ap["pedestrian"]["easy"]
    # pass 1: g1 takes A (highest score), g2 nothing, g3 takes C -> thresholds [0.9, 0.1]
    assert list(r.thresholds[:2]) == pytest.approx([0.9, 0.1]) and r.n_points == 2
    # pass 2 at 0.1: g1 takes B (largest IoU), so A is free for g2: 3 TP, no FP
    assert (r.tp[1], r.fp[1], r.fn[1]) == (3, 0, 0)
    assert (r.ap_r11, r.ap_r40) == pytest.approx(hand_ap([1.0, 1.0] + [0.0] * 39))


def test_official_quirk_short_detection_of_any_class_silences_ground_truth():
    # cleanData marks *every* detection shorter than the min height as ignored
    # (1), whatever its class, so it can swallow a ground truth of another class
    cars = [obj("Car", (0.0, 0.0, 100.0, 30.0)), obj("Car", (200.0, 0.0, 300.0, 30.0))]
    rows = {
        "a": [
            ("pedestrian", (0.0, 0.0, 100.0, 24.0), 0.9),  # IoU 0.8 with the first car
            ("car", (200.0, 0.0, 300.0, 30.0), 0.5),
        ]
    }
    official = evaluate([record("a", cars)], rows, protocol="official").ap["car"]["moderate"]
    squeezedet = evaluate([record("a", cars)], rows, protocol="squeezedet").ap["car"]["moderate"]
    assert official.n_gt == squeezedet.n_gt == 2
    assert (official.tp[0], official.fn[0], official.recall[0]) == (1, 0, 1.0)
    assert (squeezedet.tp[0], squeezedet.fn[0], squeezedet.recall[0]) == (1, 1, 0.5)


def test_get_thresholds_matches_hand_rule():
    # n_gt = 80, 80 TPs: kept scores are those whose recall reaches the next 1/40 step
    scores = np.linspace(1.0, 0.01, 80)
    kept = get_thresholds(scores, 80)
    assert len(kept) == 41
    assert kept[0] == scores[0] and kept[-1] == scores[-1]
    assert list(kept) == ref_thresholds(list(scores), 80)


def test_empty_inputs_and_errors():
    records, boxes = car_grid(5)
    res = evaluate_detections(records, {})
    assert res.ap["car"]["easy"].ap_r40 == 0.0
    assert any("no detections entry" in w for w in res.warnings)
    with pytest.raises(InputError, match="protocol"):
        evaluate_detections(records, {}, protocol="coco")
    with pytest.raises(InputError, match="classes"):
        evaluate_detections(records, {}, classes=("truck",))
    with pytest.raises(InputError, match="no images"):
        evaluate_detections([], {})
    with pytest.raises(InputError, match="labels"):
        evaluate_detections([ImageRecord("x", "/x.png")], {})


def test_result_outputs(tmp_path):
    records, boxes = car_grid(12)
    res = evaluate(records, perfect(boxes))
    data = json.loads(json.dumps(res.to_json_dict()))
    assert set(data) == {"ap", "map", "counts", "warnings"}
    assert set(data["ap"]["car"]["easy"]) == {"r11", "r40", "n_gt", "capped"}
    assert data["ap"]["car"]["easy"]["capped"] is True and data["ap"]["car"]["easy"]["n_gt"] == 12
    nine = [data["ap"][c][d]["r40"] for c in CLASSES for d in DIFFS]
    assert data["map"]["r40"]["all"] == pytest.approx(sum(nine) / 9)
    assert data["map"]["r11"]["hard"] == pytest.approx(
        sum(data["ap"][c]["hard"]["r11"] for c in CLASSES) / 3
    )
    assert data["counts"] == {
        "images": 2,
        "detections": 12,
        "gt_objects": 12,
        "dontcare_regions": 0,
    }
    rows = list(csv.DictReader(res.write_pr_csv(tmp_path / "pr.csv").open()))
    assert len(rows) == 9 * 41
    assert list(rows[0]) == ["class", "difficulty", "point", "threshold", "recall", "precision"]
    car_easy = [r for r in rows if r["class"] == "car" and r["difficulty"] == "easy"]
    assert [float(r["precision"]) for r in car_easy[:12]] == [1.0] * 12
    assert car_easy[12]["threshold"] == "" and float(car_easy[12]["precision"]) == 0.0
    table = res.format_table()
    assert "mAP" in table and "R40" in table and "car" in table and "capped" in table


# ----------------------------------------------------------------------------- oracle comparison

TYPES = ("Car", "Car", "Van", "Pedestrian", "Person_sitting", "Cyclist", "DontCare", "Truck")


@st.composite
def scenes(draw):
    """A few images of random objects and detections near (and away from) them."""
    records, detections = [], {}
    coord = st.integers(0, 60).map(lambda v: v * 5.0)
    size = st.sampled_from([20.0, 24.0, 25.0, 30.0, 40.0, 41.0, 60.0, 120.0])
    for i in range(draw(st.integers(1, 3))):
        objects = []
        for _ in range(draw(st.integers(0, 6))):
            x, y, w, h = draw(coord), draw(coord), draw(size), draw(size)
            trunc = draw(st.sampled_from([0.0, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6]))
            objects.append(
                obj(
                    draw(st.sampled_from(TYPES)),
                    (x, y, x + w, y + h),
                    trunc,
                    draw(st.integers(0, 3)),
                )
            )
        rows = []
        for _ in range(draw(st.integers(0, 7))):
            if objects and draw(st.booleans()):
                bx = draw(st.sampled_from(objects)).box_xyxy
                jit = [draw(st.sampled_from([-6.0, -2.0, 0.0, 0.0, 3.0, 8.0])) for _ in range(4)]
                box = tuple(b + j for b, j in zip(bx, jit, strict=True))
            else:
                x, y = draw(coord), draw(coord)
                box = (x, y, x + draw(size), y + draw(size))
            rows.append(
                (
                    draw(st.sampled_from(CLASSES)),
                    box,
                    draw(st.sampled_from([0.1, 0.3, 0.5, 0.5, 0.9])),
                )
            )
        records.append(record(f"{i:06d}", objects))
        detections[f"{i:06d}"] = dets(rows)
    return records, detections


def assert_matches_oracle(records, detections, protocol):
    res = evaluate_detections(records, detections, protocol=protocol)
    images = ref_images(records, detections, protocol)
    for cls in CLASSES:
        for d, name in enumerate(DIFFS):
            precision, n_gt, thresholds = ref_eval_class(cls, images, d, protocol)
            r = res.ap[cls][name]
            assert r.n_gt == n_gt, (cls, name)
            assert r.n_points == len(thresholds)
            np.testing.assert_array_equal(r.thresholds[: len(thresholds)], thresholds)
            np.testing.assert_array_equal(r.precision, precision)
            assert (r.ap_r11, r.ap_r40) == pytest.approx(hand_ap(precision), abs=1e-12)


@pytest.mark.parametrize("protocol", ["official", "squeezedet"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes())
def test_matches_loop_oracle_on_random_scenes(protocol, scene):
    records, detections = scene
    assert_matches_oracle(records, detections, protocol)


def noisy_detections(records, rng, jitter: float = 4.0) -> dict[str, Detections]:
    """Detections made from labels: 85% of the objects found with jittered boxes (10% of
    them with a random class), plus up to 3 random boxes per image."""
    detections = {}
    for r in records:
        rows = []
        for o in r.objects:
            cls = {"van": "car", "person_sitting": "pedestrian"}.get(o.type.lower(), o.type.lower())
            if cls in CLASSES and rng.random() < 0.85:
                if rng.random() < 0.1:
                    cls = CLASSES[rng.integers(3)]
                box = np.asarray(o.box_xyxy) + rng.normal(0, jitter, 4)
                rows.append((cls, tuple(box), float(rng.random())))
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 1100), rng.uniform(100, 300)
            box = (x, y, x + rng.uniform(10, 150), y + rng.uniform(10, 100))
            rows.append((CLASSES[rng.integers(3)], box, float(rng.random())))
        detections[r.stem] = dets(rows)
    return detections


def test_matches_loop_oracle_on_real_kitti_with_noisy_detections():
    if not SHARED.is_dir():
        pytest.skip(f"shared KITTI data not found at {SHARED}")
    from squeezelens.engine.data import open_dataset

    ds = open_dataset(SHARED, "trainval")
    detections = noisy_detections(ds.records, np.random.default_rng(0))
    for protocol in ("official", "squeezedet"):
        assert_matches_oracle(ds.records, detections, protocol)


def test_ground_truth_as_detections_on_real_kitti():
    if not SHARED.is_dir():
        pytest.skip(f"shared KITTI data not found at {SHARED}")
    from squeezelens.engine.data import open_dataset

    ds = open_dataset(SHARED, "trainval")
    detections = {
        r.stem: dets(
            [(o.type.lower(), o.box_xyxy, 1.0) for o in r.objects if o.type.lower() in CLASSES]
        )
        for r in ds
    }
    res = evaluate_detections(ds.records, detections)
    for cls in CLASSES:
        for d in DIFFS:
            r = res.ap[cls][d]
            points = min(r.n_gt, 41)  # one curve point per object until 41
            expected = hand_ap([1.0 if k < points else 0.0 for k in range(41)])
            assert (r.ap_r11, r.ap_r40) == pytest.approx(expected, abs=1e-12), (cls, d)
            assert r.capped == (r.n_gt < 41)
    assert res.ap["car"]["moderate"].n_gt >= 41 and res.ap["car"]["moderate"].ap_r40 == 1.0
