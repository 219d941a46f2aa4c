"""Writing detections in the KITTI result format and reading them back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelens.engine.errors import InputError
from squeezelens.engine.eval import (
    evaluate_detections,
    read_kitti_detections,
    write_kitti_detections,
)
from squeezelens.engine.eval.kitti_io import (
    format_kitti_lines,
    kitti_class_name,
    read_kitti_detection_file,
    written_values,
)
from squeezelens.engine.types import Detections, GroundTruthObject, ImageRecord

SHARED = Path(__file__).resolve().parents[2] / "shared" / "kitti"


def test_line_format():
    dets = Detections(np.array([[1.5, 2.25, 30.0, 40.125]]), np.array([0.75]), np.array([2]))
    (line,) = format_kitti_lines(dets)
    fields = line.split()
    assert len(fields) == 16
    assert fields[0] == "Cyclist" and fields[1:4] == ["-1", "-1", "-10"]
    assert [float(v) for v in fields[4:8]] == [1.5, 2.25, 30.0, 40.125]
    assert fields[8:15] == ["-1", "-1", "-1", "-1000", "-1000", "-1000", "-10"]
    assert float(fields[15]) == 0.75
    assert [
        kitti_class_name(n) for n in ("car", "PEDESTRIAN", "person_sitting", "dontcare", "bus")
    ] == [
        "Car",
        "Pedestrian",
        "Person_sitting",
        "DontCare",
        "Bus",
    ]


coords = st.floats(-50, 1300, allow_nan=False, width=32)


@st.composite
def detections(draw):
    n = draw(st.integers(0, 8))
    boxes = np.array([[draw(coords) for _ in range(4)] for _ in range(n)]).reshape(-1, 4)
    scores = np.array([draw(st.floats(0, 1, width=32)) for _ in range(n)])
    labels = np.array([draw(st.integers(0, 2)) for _ in range(n)])
    return Detections(boxes, scores, labels)


@settings(max_examples=60, deadline=None)
@given(dets=detections())
def test_round_trip_is_exact(tmp_path_factory, dets):
    folder = tmp_path_factory.mktemp("res")
    write_kitti_detections(folder, {"000042": dets})
    back = read_kitti_detections(folder)["000042"]
    np.testing.assert_array_equal(back.boxes_xyxy, dets.boxes_xyxy)
    np.testing.assert_array_equal(back.scores, dets.scores)
    np.testing.assert_array_equal(back.labels, dets.labels)
    assert back.class_names == dets.class_names


def test_empty_files_for_listed_stems_and_data_subfolder(tmp_path):
    one = Detections(np.array([[0, 0, 10, 10]]), np.array([0.5]), np.array([0]))
    paths = write_kitti_detections(tmp_path / "r" / "data", {"a": one}, stems=["a", "b"])
    assert [p.name for p in paths] == ["a.txt", "b.txt"] and paths[1].read_text() == ""
    back = read_kitti_detections(tmp_path / "r")  # the devkit's results/<name>/data layout
    assert set(back) == {"a", "b"} and len(back["a"]) == 1 and len(back["b"]) == 0


def test_other_types_are_skipped_and_case_is_ignored(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text(
        "CAR -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.5\n"
        "\n"
        "Van -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.9\n"
        "pedestrian -1 -1 -10 5 6 7 8 -1 -1 -1 -1000 -1000 -1000 -10 0.25\n"
    )
    d = read_kitti_detection_file(path)
    assert d.labels.tolist() == [0, 1] and d.scores.tolist() == [0.5, 0.25]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "Car -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10",
            "line 2: a detection needs 16 fields",
        ),
        ("Car -1 -1 -10 1 2 3 4 -1 -1", "line 2: expected 15 fields"),
        ("Car -1 -1 -10 1 2 3 x -1 -1 -1 -1000 -1000 -1000 -10 0.5", "line 2: field 8 (y2)"),
    ],
)
def test_malformed_detection_files(tmp_path, line, message):
    path = tmp_path / "000001.txt"
    path.write_text("Car -1 -1 -10 1 2 3 4 -1 -1 -1 -1000 -1000 -1000 -10 0.5\n" + line + "\n")
    with pytest.raises(InputError, match=re.escape(message)) as info:
        read_kitti_detections(tmp_path)
    assert "000001.txt" in str(info.value)


def test_missing_folder_or_file(tmp_path):
    with pytest.raises(InputError, match="folder not found"):
        read_kitti_detections(tmp_path / "nope")
    with pytest.raises(InputError, match="000003.txt"):
        read_kitti_detections(tmp_path, stems=["000003"])


def _noisy_car_scenes(seed: int, images: int, score_scale: float = 1.0):
    """(records, detections): 6 random cars per image, detected with 3 px noise, random scores
    (times ``score_scale``) and random classes."""
    rng = np.random.default_rng(seed)
    records, dets = [], {}
    for i in range(images):
        boxes = rng.uniform(0, 400, (6, 2))
        boxes = np.hstack([boxes, boxes + rng.uniform(20, 120, (6, 2))])
        objects = tuple(GroundTruthObject("Car", 0.0, 0, -10.0, tuple(b)) for b in boxes)
        records.append(ImageRecord(f"{i:06d}", "x.png", objects, True))
        noisy = boxes + rng.normal(0, 3, boxes.shape)
        dets[f"{i:06d}"] = Detections(noisy, rng.random(6) * score_scale, rng.integers(0, 3, 6))
    return records, dets


def test_rescoring_written_files_gives_identical_ap(tmp_path):
    records, dets = _noisy_car_scenes(seed=3, images=30)
    write_kitti_detections(tmp_path, dets)
    first = evaluate_detections(records, dets)
    again = evaluate_detections(records, read_kitti_detections(tmp_path))
    assert first.to_json_dict() == again.to_json_dict()
    assert first.ap["car"]["hard"].ap_r40 > 0


# --- the SqueezeDet writer: 2-decimal boxes, 3-decimal scores, scored as rounded -----------


def test_squeezedet_line_format_grouped_by_class():
    boxes = np.array([[1.5, 2.25, 30.0, 40.125], [5, 6, 7, 8], [9, 10, 11, 12.375]])
    d = Detections(boxes, np.array([0.9, 0.8, 0.0625]), np.array([1, 0, 1]))
    assert format_kitti_lines(d, "squeezedet") == [
        "car -1 -1 0.0 5.00 6.00 7.00 8.00 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.800",
        "pedestrian -1 -1 0.0 1.50 2.25 30.00 40.12 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.900",
        "pedestrian -1 -1 0.0 9.00 10.00 11.00 12.38 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.062",
    ]  # exact binary ties round to even, as Python's format (the original writer) does
    boxes, scores = written_values(d, "squeezedet")
    assert boxes[0].tolist() == [1.5, 2.25, 30.0, 40.12] and boxes[2, 3] == 12.38
    assert scores.tolist() == [0.9, 0.8, 0.062]
    with pytest.raises(InputError, match="unknown KITTI writer"):
        format_kitti_lines(d, "coco")


@settings(max_examples=60, deadline=None)
@given(dets=detections(), protocol=st.sampled_from(["official", "squeezedet"]))
def test_written_values_are_what_the_devkit_reads(dets, protocol):
    """The evaluated doubles equal fscanf("%lf") of the written text, line by line."""
    boxes, scores = written_values(dets, protocol)
    lines = format_kitti_lines(dets, protocol)
    read = {}
    for line in lines:
        f = line.split()
        read.setdefault(f[0].lower(), []).append([float(v) for v in (*f[4:8], f[15])])
    for label, name in enumerate(dets.class_names):
        mine = np.column_stack([boxes, scores])[dets.labels == label]
        assert mine.tolist() == read.get(name.lower(), [])


def _tie_scene():
    """Two easy cars; a TP at 0.0625, an FP at 0.0621 (both written 0.062), a TP at 0.05."""
    cars = [(0.0, 0.0, 100.0, 60.0), (200.0, 0.0, 300.0, 60.0)]
    objects = tuple(GroundTruthObject("Car", 0.0, 0, -10.0, b) for b in cars)
    records = [ImageRecord("000000", "x.png", objects, True)]
    boxes = np.array([cars[0], (500.0, 0.0, 600.0, 60.0), cars[1]])
    dets = {"000000": Detections(boxes, np.array([0.0625, 0.0621, 0.05]), np.zeros(3))}
    return records, dets


def test_rounding_ties_are_scored_as_the_devkit_sees_them(tmp_path):
    records, dets = _tie_scene()
    official = evaluate_detections(records, dets, protocol="official").ap["car"]["easy"]
    assert official.precision[:2].tolist() == [1.0, pytest.approx(2 / 3)]
    squeezedet = evaluate_detections(records, dets, protocol="squeezedet").ap["car"]["easy"]
    # written 0.062 / 0.062 / 0.050: the FP ties the first TP, so the first point is 1/2,
    # then 2/3 (monotone from the right: 2/3, 2/3); round-half-up (0.063) would give 1.0
    assert squeezedet.thresholds[:2].tolist() == [0.062, 0.05]
    assert squeezedet.precision[:2].tolist() == [pytest.approx(2 / 3)] * 2
    write_kitti_detections(tmp_path, dets, protocol="squeezedet")
    again = evaluate_detections(records, read_kitti_detections(tmp_path), protocol="squeezedet")
    assert again.ap["car"]["easy"].precision.tolist() == squeezedet.precision.tolist()


def test_rescoring_squeezedet_files_gives_identical_ap(tmp_path):
    records, dets = _noisy_car_scenes(seed=5, images=20, score_scale=0.01)
    write_kitti_detections(tmp_path, dets, protocol="squeezedet")
    first = evaluate_detections(records, dets, protocol="squeezedet")
    again = evaluate_detections(records, read_kitti_detections(tmp_path), protocol="squeezedet")
    assert first.to_json_dict() == again.to_json_dict()
