"""Writing detections in the KITTI result format and reading them back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InputError
from engine.eval import evaluate_detections, read_kitti_detections, write_kitti_detections
from engine.eval.kitti_io import format_kitti_lines, kitti_class_name, read_kitti_detection_file
from engine.types import Detections, GroundTruthObject, ImageRecord

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


def test_rescoring_written_files_gives_identical_ap(tmp_path):
    rng = np.random.default_rng(3)
    records, dets = [], {}
    for i in range(30):
        boxes = rng.uniform(0, 400, (6, 2))
        boxes = np.hstack([boxes, boxes + rng.uniform(20, 120, (6, 2))])
        objects = tuple(GroundTruthObject("Car", 0.0, 0, -10.0, tuple(b)) for b in boxes)
        records.append(ImageRecord(f"{i:06d}", "x.png", objects, True))
        noisy = boxes + rng.normal(0, 3, boxes.shape)
        dets[f"{i:06d}"] = Detections(noisy, rng.random(6), rng.integers(0, 3, 6))
    write_kitti_detections(tmp_path, dets)
    first = evaluate_detections(records, dets)
    again = evaluate_detections(records, read_kitti_detections(tmp_path))
    assert first.to_json_dict() == again.to_json_dict()
    assert first.ap["car"]["hard"].ap_r40 > 0
