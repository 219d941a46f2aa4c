"""KITTI label parsing, dataset layouts and robust image reading."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from squeezelens.engine.data import (
    available_splits,
    list_images,
    open_dataset,
    parse_label_file,
    parse_label_line,
    read_image_bgr,
)
from squeezelens.engine.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "kitti"
CAR = "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59"
DONTCARE = "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10"


def write_png(path: Path, image: np.ndarray, ext: str = ".png") -> Path:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    buf.tofile(str(path))
    return path


def make_kitti(root: Path, stems=("000000", "000001", "000002"), ext=".png") -> Path:
    """A tiny KITTI root: training/{image_2,label_2} and ImageSets."""
    (root / "training" / "label_2").mkdir(parents=True)
    for i, stem in enumerate(stems):
        write_png(
            root / "training" / "image_2" / f"{stem}{ext}", np.full((4, 6, 3), i, np.uint8), ext
        )
        (root / "training" / "label_2" / f"{stem}.txt").write_text(f"{CAR}\n{DONTCARE}\n")
    sets = root / "ImageSets"
    sets.mkdir(parents=True)
    (sets / "trainval.txt").write_text("\n".join(stems) + "\n")
    (sets / "train.txt").write_text(stems[0] + "\n")
    (sets / "val.txt").write_text("\n".join(stems[1:]) + "\n\n")
    return root


# ----------------------------------------------------------------------------- labels


def test_parse_all_fields():
    o = parse_label_line(CAR)
    assert o.type == "Car" and o.truncated == 0.0 and o.occluded == 0 and o.alpha == -1.58
    assert o.box_xyxy == (587.01, 173.33, 614.12, 200.12)
    assert o.dimensions_hwl == (1.65, 1.67, 3.64)
    assert o.location_xyz == (-0.65, 1.71, 46.70)
    assert o.rotation_y == -1.59 and o.score is None
    assert parse_label_line(CAR + " 0.87").score == 0.87
    assert parse_label_line(DONTCARE).occluded == -1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70", "got 14"),
        (CAR + " 0.5 0.5", "got 17"),
        (CAR.replace("587.01", "abc"), "field 5 (x1) is not a number: 'abc'"),
        (CAR.replace("46.70", "nan"), "field 14 (z) is not a number"),
        (CAR.replace("Car 0.00 0 ", "Car 0.00 0.5 "), "occluded"),
    ],
)
def test_malformed_label_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "000007.txt"
    path.write_text(f"{CAR}\n\n{line}\n")
    with pytest.raises(InputError, match="line 3") as info:
        parse_label_file(path)
    assert message in str(info.value) and "000007.txt" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_non_text_label_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        parse_label_file(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00Car")
    with pytest.raises(InputError, match="UTF-8"):
        parse_label_file(tmp_path / "bin.txt")


finite = st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: round(v, 2))


@given(
    typ=st.sampled_from(["Car", "Van", "Pedestrian", "Cyclist", "DontCare"]),
    occ=st.integers(-1, 3),
    nums=st.lists(finite, min_size=13, max_size=13),
    score=st.none() | st.floats(0, 1),
)
def test_label_line_round_trip(typ, occ, nums, score):
    fields = [typ, repr(nums[0]), str(occ), *(repr(v) for v in nums[1:])]
    if score is not None:
        fields.append(repr(score))
    o = parse_label_line("  ".join(fields))
    assert (o.type, o.truncated, o.occluded, o.alpha) == (typ, nums[0], occ, nums[1])
    assert o.box_xyxy == tuple(nums[2:6]) and o.rotation_y == nums[12] and o.score == score


# ----------------------------------------------------------------------------- datasets


def test_open_kitti_root_and_its_variants(tmp_path):
    root = make_kitti(tmp_path / "kitti")
    ds = open_dataset(root, "val")
    assert ds.stems == ("000001", "000002") and len(ds) == 2 and ds.has_labels
    assert ds[0].objects[0].type == "Car" and ds[0].objects[1].type == "DontCare"
    assert Path(ds[1].path).name == "000002.png" and [r.stem for r in ds] == list(ds.stems)
    for variant in (root / "training", root / "training" / "image_2"):
        assert open_dataset(variant, "val").stems == ds.stems
    assert open_dataset(root, "train").stems == ("000000",)
    assert len(open_dataset(root, "trainval")) == 3 == len(open_dataset(root, "all"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.split = "train"


def test_jpg_images_are_accepted(tmp_path):
    ds = open_dataset(make_kitti(tmp_path / "k", ext=".jpg"), "val")
    assert [Path(r.path).suffix for r in ds] == [".jpg", ".jpg"]


def test_plain_image_folder_has_no_labels(tmp_path):
    write_png(tmp_path / "b.png", np.zeros((3, 3, 3), np.uint8))
    write_png(tmp_path / "a.jpg", np.zeros((3, 3, 3), np.uint8), ".jpg")
    (tmp_path / "notes.txt").write_text("x")
    ds = open_dataset(tmp_path)
    assert ds.stems == ("a", "b") and not ds.has_labels and ds.split == "images"
    assert all(r.objects == () for r in ds)


def test_dataset_errors(tmp_path):
    with pytest.raises(InputError, match="not found") as info:
        open_dataset(tmp_path / "missing")
    assert "missing" in str(info.value)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        open_dataset(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        open_dataset(tmp_path / "empty")
    root = make_kitti(tmp_path / "kitti")
    with pytest.raises(InputError, match="split file"):
        open_dataset(root, "test")
    with pytest.raises(InputError, match="invalid split"):
        open_dataset(root, "../val")


def test_available_splits_are_the_ones_open_dataset_opens(tmp_path):
    root = make_kitti(tmp_path / "kitti")
    (root / "ImageSets" / "test.txt").write_text("000000\n")
    (root / "ImageSets" / "all.txt").write_text("000000\n")  # "all" is every image anyway
    (root / "ImageSets" / ".hidden.txt").write_text("000000\n")
    expected = ["train", "val", "trainval", "test", "all"]
    assert available_splits(root) == expected
    for variant in (root / "training", root / "training" / "image_2"):
        assert available_splits(variant) == expected
    for split in expected:
        assert len(open_dataset(root, split)) > 0
    (root / "ImageSets" / "train.txt").unlink()
    assert available_splits(root) == ["val", "trainval", "test", "all"]
    write_png(tmp_path / "plain" / "a.png", np.zeros((3, 3, 3), np.uint8))
    assert available_splits(tmp_path / "plain") == []  # no KITTI layout: no splits
    bare = tmp_path / "bare"
    write_png(bare / "training" / "image_2" / "000000.png", np.zeros((3, 3, 3), np.uint8))
    assert available_splits(bare) == ["all"]
    with pytest.raises(InputError, match="not found"):
        available_splits(tmp_path / "missing")


def test_split_naming_a_missing_image(tmp_path):
    root = make_kitti(tmp_path / "kitti")
    (root / "ImageSets" / "val.txt").write_text("000001\n\n000099\n")
    with pytest.raises(InputError, match="line 3: image '000099' not found") as info:
        open_dataset(root, "val")
    assert "val.txt" in str(info.value)


def test_missing_or_malformed_label_file(tmp_path):
    root = make_kitti(tmp_path / "kitti")
    (root / "training" / "label_2" / "000002.txt").unlink()
    with pytest.raises(InputError, match="label file not found") as info:
        open_dataset(root, "val")
    assert "000002.txt" in str(info.value)
    (root / "training" / "label_2" / "000002.txt").write_text(CAR + "\nCar 1 2 3\n")
    with pytest.raises(InputError, match="line 2: expected 15 fields"):
        open_dataset(root, "val")


def test_real_kitti_split():
    if not SHARED.is_dir():
        pytest.skip(f"shared KITTI data not found at {SHARED}")
    ds = open_dataset(SHARED, "val")
    trainval = open_dataset(SHARED, "trainval")
    assert len(ds) == 50 and len(trainval) == 101 and ds.has_labels
    assert set(ds.stems) <= set(trainval.stems)
    assert sum(len(r.objects) for r in trainval) == sum(
        1
        for p in (SHARED / "training" / "label_2").glob("*.txt")
        for line in p.read_text().splitlines()
        if line.strip()
    )
    image = read_image_bgr(ds[0].path)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


# ----------------------------------------------------------------------------- images


def test_read_color_gray_bgra_and_16bit(tmp_path):
    color = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image_bgr(write_png(tmp_path / "c.png", color)), color)
    gray = color[:, :, 0]
    out = read_image_bgr(write_png(tmp_path / "g.png", gray))
    assert out.shape == (5, 7, 3) and all((out[:, :, k] == gray).all() for k in range(3))
    bgra = np.dstack([color, np.full((5, 7), 9, np.uint8)])
    np.testing.assert_array_equal(read_image_bgr(write_png(tmp_path / "a.png", bgra)), color)
    deep = color.astype(np.uint16) * 257
    np.testing.assert_array_equal(read_image_bgr(write_png(tmp_path / "d.png", deep)), color)
    assert read_image_bgr(write_png(tmp_path / "j.jpg", color, ".jpg")).shape == (5, 7, 3)


def test_read_odd_path(tmp_path):
    path = write_png(tmp_path / "dossier été" / "image #1 ü.png", np.zeros((2, 3, 3), np.uint8))
    assert read_image_bgr(str(path)).shape == (2, 3, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"this is not an image", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a readable"),
    ],
)
def test_unreadable_images_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_image_bgr(path)
    assert "bad.png" in str(info.value)


def test_truncated_image_file(tmp_path):
    path = write_png(tmp_path / "t.png", np.zeros((50, 50, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(InputError, match="t.png"):
        read_image_bgr(path)


def test_missing_image_and_folder_as_image(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_image_bgr(tmp_path / "none.png")
    with pytest.raises(InputError, match="not a file"):
        read_image_bgr(tmp_path)


def test_list_images(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.jpeg", "d.bmp", "e.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "z.png").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "c.jpeg", "d.bmp"]  # not recursive, sorted
    both = list_images([tmp_path / "sub" / "z.png", tmp_path, tmp_path / "a.jpg"])
    assert len(both) == 5 and both == sorted(both, key=str)
    with pytest.raises(InputError, match="not an image"):
        list_images(tmp_path / "e.txt")
    with pytest.raises(InputError, match="no such file"):
        list_images([tmp_path / "nothing"])
    assert list_images(tmp_path / "sub") == [tmp_path / "sub" / "z.png"]
