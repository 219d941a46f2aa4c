"""Known-answer tests for anchors, delta decoding, the original NMS and top-N."""

from __future__ import annotations

import numpy as np
import pytest

from squeezelens.engine.anchors import anchor_grid
from squeezelens.engine.boxes import convert, iou_matrix
from squeezelens.engine.model.spec import ArchSpec
from squeezelens.engine.postprocess import (
    PROB_THRESH,
    center_iou,
    decode_boxes,
    filter_predictions,
    original_nms,
    postprocess,
    safe_exp,
    split_convdet,
    top_order,
)


def test_anchor_grid_layout_matches_original_formula():
    spec = ArchSpec()
    a = anchor_grid(spec)
    gw, gh = spec.grid_size
    assert (gw, gh) == (78, 24)
    assert a.shape == (78 * 24 * 9, 4)
    # order is (row, column, anchor): index of row j, column i, anchor k
    j, i, k = 5, 17, 4
    row = a[(j * gw + i) * 9 + k]
    assert row[0] == pytest.approx((i + 1) * 1248 / (gw + 1))
    assert row[1] == pytest.approx((j + 1) * 384 / (gh + 1))
    assert tuple(row[2:]) == spec.anchor_shapes[k]


def test_squeezedet_plus_grid_is_76x22():
    assert ArchSpec(variant="squeezedet+").grid_size == (76, 22)


def test_safe_exp_is_exponential_below_and_linear_above_threshold():
    x = np.array([-2.0, 0.0, 1.0, 2.0, 5.0])
    y = safe_exp(x, 1.0)
    assert y[:3] == pytest.approx(np.exp(x[:3]))
    assert y[3] == pytest.approx(np.e * 2.0)  # e * (2 - 1 + 1)
    assert y[4] == pytest.approx(np.e * 5.0)


def test_decode_clips_and_uses_plus_one_width():
    anchors = np.array([[50.0, 40.0, 20.0, 10.0], [5.0, 5.0, 40.0, 40.0]])
    deltas = np.array([[0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = decode_boxes(deltas, anchors, (100, 80))
    # first: cx = 50 + 0.5*20 = 60; xmin = 50, xmax = 70 -> width 21, centre 50 + 10.5
    assert out[0] == pytest.approx([60.5, 40.5, 21.0, 11.0])
    # second: xmin clipped from -15 to 0, xmax = 25 -> width 26, centre 13
    assert out[1] == pytest.approx([13.0, 13.0, 26.0, 26.0])


def test_split_convdet_channel_order():
    k, c = 2, 3
    raw = np.zeros((1, 1, k * (c + 5)))
    raw[0, 0, 1] = 10.0  # anchor 0, class 1 logit
    raw[0, 0, k * c + 1] = 20.0  # anchor 1 confidence
    raw[0, 0, k * c + k + 4 + 2] = 0.7  # anchor 1, dw
    s = split_convdet(raw, c, k)
    assert s.class_probs[0].argmax() == 1
    assert s.confidence[1] == pytest.approx(1.0, abs=1e-6) and s.confidence[0] == pytest.approx(0.5)
    assert s.deltas[1, 2] == pytest.approx(0.7)


def _cxcywh(xyxy):
    return convert(np.asarray(xyxy, float), "xyxy", "cxcywh")


def test_nms_suppressed_box_still_suppresses():
    # A (0.9) overlaps B (0.8) strongly; B overlaps C (0.7) strongly; A and C barely touch.
    boxes = _cxcywh([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]])
    ious = center_iou(boxes)
    assert ious[0, 1] > 0.4 and ious[1, 2] > 0.4 and ious[0, 2] < 0.4
    keep = original_nms(boxes, np.array([0.9, 0.8, 0.7]), 0.4)
    # greedy NMS would keep C; the original lets suppressed B suppress C too
    assert keep.tolist() == [True, False, False]


def test_nms_threshold_is_strict():
    boxes = _cxcywh([[0, 0, 10, 10], [0, 0, 10, 10]])
    iou = center_iou(boxes)[0, 1]
    assert original_nms(boxes, np.array([0.9, 0.8]), iou).tolist() == [True, True]
    assert original_nms(boxes, np.array([0.9, 0.8]), iou - 1e-9).tolist() == [True, False]


def test_filter_predictions_takes_top_n_over_all_classes_then_nms_per_class():
    rng = np.random.default_rng(0)
    n = 100
    boxes = np.column_stack(
        [rng.uniform(0, 1000, n), rng.uniform(0, 300, n), np.full(n, 5.0), np.full(n, 5.0)]
    )
    probs = rng.uniform(0, 1, n)
    classes = rng.integers(0, 3, n)
    b, p, c = filter_predictions(boxes, probs, classes, 3, top_n=10)
    assert len(p) == 10  # tiny, far-apart boxes: NMS removes nothing
    assert set(np.round(p, 12)) == set(np.round(np.sort(probs)[-10:], 12))
    # an overlapping pair of different classes is not suppressed (NMS is per class)
    two = np.array([[10, 10, 8, 8], [10, 10, 8, 8]], float)
    _, p2, _ = filter_predictions(two, np.array([0.9, 0.8]), np.array([0, 1]), 3)
    assert len(p2) == 2


@pytest.mark.parametrize("top_n", [0, -1, 5, 6, 100])
def test_filter_predictions_without_top_n_keeps_probs_above_prob_thresh(top_n):
    boxes = np.column_stack([np.arange(5) * 100.0, np.zeros(5), np.full(5, 5.0), np.full(5, 5.0)])
    probs = np.array([0.9, 0.004, PROB_THRESH, 0.006, 0.3])
    classes = np.array([0, 1, 2, 0, 1])
    _, p, c = filter_predictions(boxes, probs, classes, 3, top_n=top_n)
    assert PROB_THRESH == 0.005
    assert sorted(p.tolist()) == [0.006, 0.3, 0.9]  # strictly above 0.005, as the original
    assert sorted(c.tolist()) == [0, 0, 1]
    _, p, _ = filter_predictions(boxes, probs, classes, 3, top_n=4)  # top-N: no threshold
    assert sorted(p.tolist()) == [PROB_THRESH, 0.006, 0.3, 0.9]


@pytest.mark.parametrize("seed", range(4))
def test_top_order_is_the_full_stable_sort_with_ties_and_nans(seed):
    rng = np.random.default_rng(seed)
    probs = np.round(rng.random(500) * 8) / 8  # many ties, also at the cut
    if seed % 2:
        probs[rng.integers(0, 500, 5)] = np.nan
    for top_n in (1, 3, 64, 499):
        want = np.argsort(probs, kind="stable")[::-1][:top_n]
        assert top_order(probs, top_n).tolist() == want.tolist()


def _decode_all_reference(raw, anchors, input_size, scale_xy, class_names, k):
    """The straightforward pipeline: decode every anchor, then top-N and NMS."""
    heads = split_convdet(raw, len(class_names), k)
    boxes = decode_boxes(heads.deltas, anchors, input_size)
    boxes[:, 0::2] /= scale_xy[0]
    boxes[:, 1::2] /= scale_xy[1]
    final = heads.class_probs * heads.confidence[:, None]
    b, p, c = filter_predictions(boxes, final.max(axis=1), final.argmax(axis=1), len(class_names))
    return np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1), p, c


@pytest.mark.parametrize(
    "classes", [("car",), ("car", "pedestrian", "cyclist"), tuple("abcdefghij")]
)
@pytest.mark.parametrize("coarse", [False, True])
def test_postprocess_decoding_only_the_top_n_is_bit_identical(classes, coarse, monkeypatch):
    import squeezelens.engine.postprocess as pp

    spec = ArchSpec(class_names=classes).with_input_size((256, 96))
    gw, gh = spec.grid_size
    k = spec.anchors_per_cell
    rng = np.random.default_rng(len(classes))
    raw = rng.standard_normal((gh, gw, k * (len(classes) + 5))) * 3
    if coarse:  # a coarse grid of values (as low-bit weights give): ties everywhere
        raw = np.round(raw)
    raw = raw.astype(np.float32)
    anchors = anchor_grid(spec)
    monkeypatch.setattr(pp, "Detections", lambda *a: a)  # compare the float64 values
    boxes, probs, labels, _ = postprocess(raw, anchors, spec.input_size, (0.7, 0.6), classes, k)
    ref = _decode_all_reference(raw, anchors, spec.input_size, (0.7, 0.6), classes, k)
    for got, want in zip((boxes, probs, labels), ref):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_postprocess_rescales_to_original_pixels():
    spec = ArchSpec(anchor_shapes=((20.0, 10.0),), class_names=("car",)).with_input_size(
        (64, 32), scale_anchors=False
    )
    gw, gh = spec.grid_size
    raw = np.full((gh, gw, 1 * (1 + 5)), -20.0)
    raw[..., 0] = 0.0  # the only class
    raw[1, 2, 1] = 10.0  # one confident anchor at row 1, column 2
    raw[..., 2:] = 0.0  # zero deltas
    raw[..., 1] = -20.0
    raw[1, 2, 1] = 10.0
    anchors = anchor_grid(spec)
    dets = postprocess(raw, anchors, spec.input_size, (0.5, 0.25), spec.class_names, 1)
    top = dets.boxes_xyxy[0]
    cx, cy = (2 + 1) * 64 / (gw + 1), (1 + 1) * 32 / (gh + 1)
    # xmin = cx - 10, xmax + 1 = cx + 10 + 1, then divided by the scales
    assert top == pytest.approx(
        np.array([(cx - 10) / 0.5, (cy - 5) / 0.25, (cx + 11) / 0.5, (cy + 6) / 0.25]), abs=1e-3
    )
    assert dets.scores[0] == pytest.approx(1 / (1 + np.exp(-10.0)), rel=1e-5)


def test_box_conversions_round_trip_through_xyxy():
    b = np.array([[10.0, 20.0, 50.0, 80.0]])
    for fmt in ("xywh", "cxcywh"):
        assert convert(convert(b, "xyxy", fmt), fmt, "xyxy") == pytest.approx(b)
    assert convert(b, "xyxy", "xywh")[0].tolist() == [10, 20, 40, 60]
    with pytest.raises(ValueError):
        convert(b, "xyxy", "yolo")


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    assert iou_matrix(a, b)[0] == pytest.approx([1.0, 50 / 150, 0.0])
