"""Tests of the synthetic KITTI scene generator (engine.synth) and its CLI.

Controlled scenes are built with ``render_objects`` on a flat background, so
the expected truncation/occlusion follows from geometry the test chooses
(an object centred on the border, an object hidden behind another) and
from masks rendered one object at a time, not from the generator's own
numbers.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezelens.cli.main import main
from squeezelens.engine.errors import InputError
from squeezelens.engine.synth import (
    Camera,
    ObjectSpec,
    format_label,
    generate_scene,
    parse_label,
    render_objects,
    scene_seed,
    write_kitti_tree,
)
from squeezelens.engine.synth.labels import write_labels

W, H = 1242, 375
KINDS = {"Car", "Pedestrian", "Cyclist", "DontCare"}
CAM = Camera.kitti_like(W, H)
SEEDS = range(40)


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, list]]:
    """A few dozen default-size scenes, generated once for the whole module."""
    return [generate_scene(s) for s in SEEDS]


def flat_background() -> np.ndarray:
    return np.full((H, W, 3), 128, np.uint8)


def spec(kind: str, x: float, z: float, rotation: float = -np.pi / 2, seed: int = 1) -> ObjectSpec:
    dims = {"Car": (1.5, 1.7, 4.2), "Pedestrian": (1.75, 0.6, 0.8), "Cyclist": (1.72, 0.6, 1.75)}[
        kind
    ]
    return ObjectSpec(kind, (x, CAM.mount_height, z), rotation, dims, seed)


def at_column(u: float, z: float) -> float:
    """Camera x that projects to image column ``u`` at depth ``z``."""
    return (u - CAM.cx) * z / CAM.focal


# --- determinism -------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_labels():
    img1, labels1 = generate_scene(12345)
    img2, labels2 = generate_scene(12345)
    assert img1.shape == (H, W, 3) and img1.dtype == np.uint8
    assert img1.tobytes() == img2.tobytes()
    assert labels1 == labels2


def test_different_seeds_give_different_scenes(scenes):
    images = [img for img, _ in scenes[:6]]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.mean(images[i] != images[j]) > 0.2
    label_sets = {tuple(format_label(o) for o in labels) for _, labels in scenes[:6]}
    assert len(label_sets) == 6


def test_scene_seeds_are_distinct_and_stable():
    seeds = {scene_seed(3, i) for i in range(1000)}
    assert len(seeds) == 1000
    assert scene_seed(3, 7) == scene_seed(3, 7) != scene_seed(4, 7)


def test_other_sizes_work():
    img, labels = generate_scene(5, width=621, height=188)
    assert img.shape == (188, 621, 3)
    for o in labels:
        x1, y1, x2, y2 = o.box_xyxy
        assert 0 <= x1 <= x2 <= 620 and 0 <= y1 <= y2 <= 187


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed_is_an_input_error(bad):
    with pytest.raises(InputError):
        generate_scene(bad)


# --- labels of generated scenes ---------------------------------------------


def test_boxes_are_inside_the_image_and_non_degenerate(scenes):
    n = 0
    for _, labels in scenes:
        for o in labels:
            assert o.type in KINDS
            x1, y1, x2, y2 = o.box_xyxy
            assert 0 <= x1 < x2 <= W - 1 and 0 <= y1 < y2 <= H - 1
            if o.type != "DontCare":
                assert y2 - y1 >= 12 and x2 - x1 >= 4
                n += 1
    assert n > 100


def test_truncation_is_positive_exactly_for_objects_cut_by_the_border(scenes):
    cut = 0
    for _, labels in scenes:
        for o in labels:
            if o.type == "DontCare":
                continue
            x1, y1, x2, y2 = o.box_xyxy
            touches = x1 <= 0 or y1 <= 0 or x2 >= W - 1 or y2 >= H - 1
            assert 0.0 <= o.truncated < 1.0
            if o.truncated > 0:
                assert touches, o
                cut += 1
            if not touches:
                assert o.truncated == 0.0, o
    assert cut > 5, "the scenes should contain objects cut by the image border"


def test_dont_care_uses_kitti_placeholders(scenes):
    dont_cares = [o for _, labels in scenes for o in labels if o.type == "DontCare"]
    assert dont_cares
    for o in dont_cares:
        line = format_label(o).split()
        assert line[:4] == ["DontCare", "-1", "-1", "-10"]
        assert [float(v) for v in line[8:]] == [-1, -1, -1, -1000, -1000, -1000, -10]


def test_3d_fields_are_plausible(scenes):
    for _, labels in scenes:
        for o in labels:
            if o.type == "DontCare":
                continue
            h, w, length = o.dimensions_hwl
            x, y, z = o.location_xyz
            assert 1.0 < h < 2.4 and 0.4 < w < 2.1 and 0.4 < length < 6.0
            assert 1.3 < y < 1.8 and 2.0 < z < 100.0
            assert -np.pi <= o.rotation_y <= np.pi and -np.pi <= o.alpha <= np.pi
            assert o.occluded in (0, 1, 2)


def test_class_mix_keeps_every_class_well_represented(scenes):
    counts = {"Car": 0, "Pedestrian": 0, "Cyclist": 0}
    per_scene = []
    for _, labels in scenes:
        per_scene.append(len(labels))
        for o in labels:
            if o.type in counts:
                counts[o.type] += 1
    total = sum(counts.values())
    for kind, n in counts.items():
        assert 0.2 < n / total < 0.5, (kind, counts)
    assert counts["Car"] >= 0.8 * max(counts["Pedestrian"], counts["Cyclist"]), counts
    assert 2 <= np.mean(per_scene) <= 12 and max(per_scene) <= 12


def test_car_box_heights_span_kitti_like_range(scenes):
    heights = [
        o.box_xyxy[3] - o.box_xyxy[1] for _, labels in scenes for o in labels if o.type == "Car"
    ]
    assert min(heights) < 30 and max(heights) > 120


# --- controlled scenes through render_objects --------------------------------


def test_pixel_size_scales_with_inverse_distance():
    _, _, near = render_objects(flat_background(), [spec("Pedestrian", 0.0, 8.0)], CAM)
    _, _, far = render_objects(flat_background(), [spec("Pedestrian", 0.0, 32.0)], CAM)
    h_near, h_far = near[0].label.height, far[0].label.height
    assert 3.0 < h_near / h_far < 5.0
    expected = CAM.focal * 1.75 / 8.0
    assert 0.8 * expected < h_near < 1.1 * expected


def test_box_fits_the_drawn_pixels():
    image, ids, rendered = render_objects(
        flat_background(), [spec("Car", 1.0, 15.0, rotation=0.4)], CAM
    )
    ys, xs = np.nonzero(ids == 0)
    assert rendered[0].label.box_xyxy == (xs.min(), ys.min(), xs.max(), ys.max())
    assert np.any(image[ids == 0] != 128)


def test_truncation_of_an_object_centred_on_the_left_border():
    z = 15.0
    centred = spec("Car", 0.0, z, rotation=0.0)
    cut = spec("Car", at_column(0.0, z), z, rotation=0.0, seed=2)
    _, _, (r_in,) = render_objects(flat_background(), [centred], CAM)
    _, _, (r_cut,) = render_objects(flat_background(), [cut], CAM)
    assert r_in.label.truncated == 0.0
    assert 0.3 < r_cut.label.truncated < 0.7
    assert r_cut.label.box_xyxy[0] == 0.0 and r_cut.full_box[0] < 0


def test_object_entirely_outside_the_image_is_not_labelled():
    z = 10.0
    outside = spec("Pedestrian", at_column(-200.0, z), z)
    _, _, (r,) = render_objects(flat_background(), [outside], CAM)
    assert r.label is None


def test_occlusion_matches_masks_rendered_separately():
    far = spec("Car", 0.0, 20.0)
    near = spec("Pedestrian", 0.4, 9.0, seed=3)
    _, ids_far, _ = render_objects(flat_background(), [far], CAM)
    _, ids_near, _ = render_objects(flat_background(), [near], CAM)
    far_mask, near_mask = ids_far == 0, ids_near == 0
    hidden = np.count_nonzero(far_mask & near_mask) / np.count_nonzero(far_mask)
    assert 0.05 < hidden < 0.5, "test geometry should give partial occlusion"
    # The near object is listed first: drawing order must follow depth, not list order.
    image, ids, (r_near, r_far) = render_objects(flat_background(), [near, far], CAM)
    assert r_far.label.occluded == 1 and r_near.label.occluded == 0
    assert np.all(ids[near_mask] == 0)
    assert np.count_nonzero(ids == 1) == np.count_nonzero(far_mask & ~near_mask)
    image2, _, _ = render_objects(flat_background(), [far, near], CAM)
    assert np.array_equal(image, image2)


def test_heavily_and_fully_occluded_objects():
    near = ObjectSpec(
        "Car", (0.0, CAM.mount_height, 8.0), 0.0, (2.1, 1.9, 5.0), 1
    )  # a van, side on
    hidden_ped = spec("Pedestrian", 0.0, 25.0, seed=5)
    _, ids_alone, _ = render_objects(flat_background(), [hidden_ped], CAM)
    _, ids_car, _ = render_objects(flat_background(), [near], CAM)
    assert np.all(ids_car[ids_alone == 0] == 0), "test geometry: the car must cover the pedestrian"
    _, _, (r_car, r_ped) = render_objects(flat_background(), [near, hidden_ped], CAM)
    assert r_car.label.occluded == 0
    assert r_ped.label is None and r_ped.visible_pixels == 0


def test_far_tiny_object_is_dont_care():
    _, _, (r,) = render_objects(flat_background(), [spec("Car", 0.0, 150.0)], CAM)
    assert r.label.type == "DontCare" and r.label.height < 12
    assert r.label.truncated == -1 and r.label.occluded == -1 and r.label.alpha == -10


def test_alpha_and_location_follow_the_placement():
    s = spec("Cyclist", 3.0, 12.0, rotation=0.3)
    _, _, (r,) = render_objects(flat_background(), [s], CAM)
    label = r.label
    assert label.location_xyz == (3.0, round(CAM.mount_height, 2), 12.0)
    assert label.rotation_y == 0.3
    assert label.alpha == pytest.approx(0.3 - np.arctan2(3.0, 12.0), abs=0.006)


# --- label files -----------------------------------------------------------


def test_label_file_round_trip(tmp_path, scenes):
    labels = [o for _, ls in scenes[:10] for o in ls]
    assert {o.type for o in labels} == KINDS
    path = tmp_path / "000000.txt"
    write_labels(path, labels)
    lines = path.read_text().splitlines()
    assert len(lines) == len(labels)
    for line, obj in zip(lines, labels):
        fields = line.split(" ")
        assert len(fields) == 15
        assert fields[0] == obj.type
        values = [float(f) for f in fields[1:]]
        expected = [
            obj.truncated,
            obj.occluded,
            obj.alpha,
            *obj.box_xyxy,
            *obj.dimensions_hwl,
            *obj.location_xyz,
            obj.rotation_y,
        ]
        assert values == pytest.approx(expected, abs=0.005)
        for f in fields[4:8]:
            assert len(f.split(".")[1]) == 2  # %.2f like KITTI
        assert parse_label(line) == obj


# --- the KITTI tree and the CLI ----------------------------------------------


def read_split(root: Path, name: str) -> list[str]:
    return (root / "ImageSets" / f"{name}.txt").read_text().split()


def test_write_kitti_tree_layout_and_regeneration(tmp_path):
    calls = []
    out = write_kitti_tree(
        tmp_path / "kitti", 5, seed=9, val_fraction=0.4, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (5, 5) and len(calls) == 5
    train, val, trainval = (read_split(out, n) for n in ("train", "val", "trainval"))
    assert trainval == [f"{i:06d}" for i in range(5)]
    assert sorted(train + val) == trainval and not set(train) & set(val) and len(val) == 2
    image = cv2.imread(str(out / "training" / "image_2" / "000003.png"))
    expected, labels = generate_scene(scene_seed(9, 3))
    assert np.array_equal(image, expected)
    text = (out / "training" / "label_2" / "000003.txt").read_text()
    assert text == "".join(format_label(o) + "\n" for o in labels)
    again = write_kitti_tree(tmp_path / "kitti", 3, seed=9, image_format="jpg")
    assert sorted(p.name for p in (again / "training" / "image_2").iterdir()) == [
        "000000.jpg",
        "000001.jpg",
        "000002.jpg",
    ]
    assert len(list((again / "training" / "label_2").iterdir())) == 3


def test_split_is_deterministic_by_seed(tmp_path):
    a = write_kitti_tree(tmp_path / "a", 6, seed=1, image_format="jpg")
    b = write_kitti_tree(tmp_path / "b", 6, seed=1, image_format="jpg")
    assert read_split(a, "val") == read_split(b, "val") and len(read_split(a, "val")) == 3


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError):
        write_kitti_tree(tmp_path, 1, seed=0)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 0},
        {"count": -3},
        {"val_fraction": 1.5},
        {"image_format": "bmp"},
        {"seed": -1},
        {"jpeg_quality": 0},
    ],
)
def test_write_kitti_tree_rejects_bad_values(tmp_path, kwargs):
    args = {"count": 1, "seed": 0, **kwargs}
    with pytest.raises(InputError):
        write_kitti_tree(tmp_path / "out", **args)


def test_cli_writes_a_valid_tree(tmp_path, capsys):
    out = tmp_path / "sample"
    rc = main(
        ["sample-data", "--out", str(out), "--count", "3", "--seed", "4", "--val-fraction", "0.34"]
    )
    assert rc == 0
    assert "3/3" in capsys.readouterr().out
    assert len(read_split(out, "trainval")) == 3 and len(read_split(out, "val")) == 1
    for i in range(3):
        img = cv2.imread(str(out / "training" / "image_2" / f"{i:06d}.png"))
        assert img.shape == (H, W, 3)
        for line in (out / "training" / "label_2" / f"{i:06d}.txt").read_text().splitlines():
            assert len(line.split()) == 15


@pytest.mark.parametrize(
    "extra",
    [
        ["--count", "0"],
        ["--count", "-2"],
        ["--count", "2", "--val-fraction", "2"],
        ["--count", "2", "--seed", "-5"],
    ],
)
def test_cli_bad_values_exit_2(tmp_path, capsys, extra):
    rc = main(["sample-data", "--out", str(tmp_path / "x"), *extra])
    assert rc == 2
    assert "error" in capsys.readouterr().err


def test_cli_refuses_foreign_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["sample-data", "--out", str(tmp_path), "--count", "1"]) == 2
    assert (tmp_path / "keep.txt").exists()
