"""The detector on the shared real checkpoint: golden detections of the original code."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from squeezelens.engine.data.images import read_image_bgr
from tests.conftest import REAL_CKPT, REAL_KITTI, REFERENCE, need_shared

pytestmark = pytest.mark.slow


def _golden():
    need_shared(REFERENCE)
    return json.loads((REFERENCE / "golden_detections.json").read_text())


@pytest.mark.parametrize("index", [0, 1, 2])
def test_matches_golden_detections_of_the_original(real_detector, index):
    gold = _golden()[index]
    dets = real_detector.detect(read_image_bgr(REAL_KITTI / "training" / "image_2" / gold["image"]))
    want = sorted(gold["detections"], key=lambda d: -d["score"])
    got = dets.to_records()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g["class"] == w["class"]
        assert g["score"] == pytest.approx(w["score"], abs=1e-3)
        assert np.allclose(g["box"], w["box"], atol=1e-3)


def _car_recall(detector, stems, threshold=0.4):
    from squeezelens.engine.boxes import iou_matrix
    from squeezelens.engine.data.kitti import parse_label_file

    found = total = 0
    for stem in stems:
        objs = parse_label_file(REAL_KITTI / "training" / "label_2" / f"{stem}.txt")
        cars = np.array(
            [o.box_xyxy for o in objs if o.type == "Car" and o.height >= 40 and o.occluded == 0]
        )
        if not len(cars):
            continue
        dets = detector.detect(
            REAL_KITTI / "training" / "image_2" / f"{stem}.png", threshold=threshold
        )
        boxes = dets.boxes_xyxy[dets.labels == 0]
        total += len(cars)
        if len(boxes):
            found += int((iou_matrix(cars, boxes).max(axis=1) > 0.5).sum())
    return found / max(total, 1), total


def test_finds_the_clearly_visible_cars(real_detector):
    need_shared(REAL_KITTI)
    recall, total = _car_recall(real_detector, [f"{i:06d}" for i in range(12)])
    assert total >= 5
    assert recall >= 0.8


def test_without_sidecar_boxes_come_out_about_a_third_too_large(real_detector, tmp_path):
    need_shared(REAL_CKPT.parent)
    from squeezelens.engine.detector import Detector

    for f in REAL_CKPT.parent.glob("model.ckpt-87000.[di]*"):
        shutil.copy(f, tmp_path / f.name)
    plain = Detector.from_checkpoint(tmp_path / "model.ckpt-87000")
    assert plain.spec.input_size == (1248, 384)
    image = read_image_bgr(REAL_KITTI / "training" / "image_2" / "000008.png")
    a = real_detector.detect(image, threshold=0.5)
    b = plain.detect(image, threshold=0.5)
    from squeezelens.engine.boxes import iou_matrix

    # pair each confident sidecar box with the plain box of the same centre region
    centre = lambda d: (d.boxes_xyxy[:, :2] + d.boxes_xyxy[:, 2:]) / 2  # noqa: E731
    dist = np.linalg.norm(centre(a)[:, None] - centre(b)[None], axis=2)
    ratios = []
    for i, j in enumerate(dist.argmin(axis=1)):
        if (
            dist[i, j] < 30
            and iou_matrix(a.boxes_xyxy[i : i + 1], b.boxes_xyxy[j : j + 1])[0, 0] > 0.3
        ):
            wa = a.boxes_xyxy[i, 2] - a.boxes_xyxy[i, 0]
            wb = b.boxes_xyxy[j, 2] - b.boxes_xyxy[j, 0]
            ratios.append(wb / wa)
    assert len(ratios) >= 2
    assert 1.15 < float(np.median(ratios)) < 1.5


def test_float_results_are_cached_and_quantized_weights_swap_in_place(real_detector):
    need_shared(REAL_KITTI)
    path = REAL_KITTI / "training" / "image_2" / "000010.png"
    first = real_detector.detect(path)
    n_traces = real_detector._forward_float.experimental_get_tracing_count()
    again = real_detector.detect(read_image_bgr(path))
    assert np.array_equal(first.boxes_xyxy, again.boxes_xyxy)
    assert real_detector._forward_float.experimental_get_tracing_count() == n_traces


def test_weight_swap_copies_into_the_variables_and_back(tiny_detector):
    """One call writes every kernel and bias; the variables never alias numpy memory
    (changing the arrays afterwards changes nothing), and float weights stay intact."""
    from squeezelens.engine.quant import QuantConfig

    det = tiny_detector
    variables = [v for layer in det._layers.values() for v in (layer.kernel, layer.bias)]
    float_copy = {name: value.copy() for name, value in det.float_weights.items()}
    x = np.random.default_rng(3).uniform(-50, 50, (1, *det.spec.input_size[::-1], 3))
    x = x.astype(np.float32)
    float_out = det.forward(x)
    config = QuantConfig(bits=4, rounding="stochastic", seed=7)
    try:
        quant = det.quantized_weights(config)
        kept = {name: value.copy() for name, value in quant.items()}
        quant_out = det.forward(x, config)
        for name, var in zip(det._param_names, variables, strict=True):
            assert np.array_equal(var.numpy(), kept[name]), name
        for name, value in quant.items():
            if value is not det.float_weights[name]:
                value[...] = 123.0  # the swap copied: the model must not see this
        assert np.array_equal(det.forward(x, config), quant_out)
        det._assign(kept)
        assert np.array_equal(det.forward(x, config), quant_out)
    finally:
        det._assign(det.float_weights)
        det._loaded_key = None
    assert all(np.array_equal(det.float_weights[k], v) for k, v in float_copy.items())
    assert np.array_equal(det.forward(x), float_out)
    assert all(det.float_weights[k].ctypes.data % 64 == 0 for k in det.float_weights)
