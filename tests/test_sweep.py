"""Sweeps (engine.sweep): one CSV row per point, resume after a kill, folder refusal,
seed expansion, summaries and the CLI's sweep plot (cli.plots.render_sweep).

The dataset is a tiny KITTI folder written to tmp_path (noise images with a few
labelled Car / Pedestrian / Cyclist boxes); the detector is the random-weight
``tiny_detector``.  Its mAP is meaningless, so the tests check bookkeeping
(which points ran, how often the model was called, what the files hold), not scores.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.sweep import (
    CSV_NAME,
    META_NAME,
    SweepPoint,
    read_rows,
    run_sweep,
    summarize,
    sweep_points,
)

IMAGE_SIZE = (320, 120)  # (W, H) of the generated frames
BOXES = (  # (class, x1, y1, x2, y2): tall enough for every KITTI difficulty
    ("Car", 20, 40, 120, 100),
    ("Pedestrian", 150, 30, 175, 95),
    ("Cyclist", 200, 35, 250, 100),
)


def label_line(kind: str, x1: float, y1: float, x2: float, y2: float) -> str:
    """One KITTI label_2 line (15 fields) of an unoccluded, untruncated object."""
    return f"{kind} 0.00 0 -1.57 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 1.50 1.60 3.90 1.00 1.50 20.00 -1.57"


def write_tiny_kitti(
    root: Path, n_images: int = 4, splits: dict[str, list[int]] | None = None, seed: int = 0
) -> Path:
    """A KITTI object tree: training/image_2 PNGs, training/label_2 and ImageSets/<split>.txt.

    splits: split name -> image indices (default: every image in val).
    """
    rng = np.random.default_rng(seed)
    images, labels, sets = (
        root / "training" / "image_2",
        root / "training" / "label_2",
        root / "ImageSets",
    )
    for folder in (images, labels, sets):
        folder.mkdir(parents=True, exist_ok=True)
    w, h = IMAGE_SIZE
    for i in range(n_images):
        stem = f"{i:06d}"
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        lines = []
        for kind, x1, y1, x2, y2 in BOXES[: 1 + i % len(BOXES)]:
            dx = int(rng.integers(0, 40))
            cv2.rectangle(image, (x1 + dx, y1), (x2 + dx, y2), (40, 40, 200), -1)
            lines.append(label_line(kind, x1 + dx, y1, x2 + dx, y2))
        assert cv2.imwrite(str(images / f"{stem}.png"), image)
        (labels / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    for name, idx in (splits or {"val": list(range(n_images))}).items():
        (sets / f"{name}.txt").write_text("".join(f"{i:06d}\n" for i in idx))
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from squeezelens.engine.data.kitti import open_dataset

    root = write_tiny_kitti(tmp_path_factory.mktemp("kitti"))
    return open_dataset(root, "val")


def meta_of(detector, dataset, **changes) -> dict:
    """The metadata the sweep command records (what run_sweep compares)."""
    meta = {
        "checkpoint_sha256": "0" * 64,
        "kitti_root": str(dataset.root),
        "split": dataset.split,
        "protocol": "official",
        "input_size": list(detector.spec.input_size),
    }
    meta.update(changes)
    return meta


class CountingForward:
    """Wraps detector.forward and counts its calls per quantization key."""

    def __init__(self, detector) -> None:
        self.original = detector.forward
        self.calls: list[str] = []

    def __call__(self, batch, quant=None):
        self.calls.append(SweepPoint(quant).key)
        return self.original(batch, quant)


@pytest.fixture()
def counter(tiny_detector, monkeypatch) -> CountingForward:
    wrapped = CountingForward(tiny_detector)
    monkeypatch.setattr(tiny_detector, "forward", wrapped)
    return wrapped


def csv_rows(out: Path) -> list[dict]:
    """Every data row of sweep.csv parsed independently of engine.sweep."""
    with open(out / CSV_NAME, newline="") as f:
        return list(csv.DictReader(f))


POINTS_CONFIGS = [QuantConfig(bits=4), QuantConfig(bits=6), QuantConfig(bits=8)]


# --- sweep_points ------------------------------------------------------------------------


def test_stochastic_points_repeat_over_seeds_and_deterministic_ones_do_not() -> None:
    configs = [QuantConfig(bits=4), QuantConfig(bits=4, rounding="stochastic", seed=7)]
    points = sweep_points(configs, repeats=3)
    assert points[0].quant is None and points[0].key == "float"
    quants = [p.quant for p in points[1:]]
    nearest = [q for q in quants if q.rounding == "nearest"]
    stochastic = [q for q in quants if q.rounding == "stochastic"]
    assert len(nearest) == 1 and nearest[0].seed == 0
    assert sorted(q.seed for q in stochastic) == [7, 8, 9]
    assert len({p.key for p in points}) == len(points) == 5
    assert sweep_points(configs, repeats=3, include_float=False)[0].quant == configs[0]
    # a config listed twice is one point
    assert len(sweep_points(configs + configs, repeats=1)) == 3


def test_repeats_below_one_is_an_input_error() -> None:
    with pytest.raises(InputError, match="repeats"):
        sweep_points([QuantConfig()], repeats=0)


def test_point_method_groups_bits_and_seeds_into_one_curve() -> None:
    a = SweepPoint(QuantConfig(bits=4, rounding="stochastic", seed=1))
    b = SweepPoint(QuantConfig(bits=9, rounding="stochastic", seed=2))
    c = SweepPoint(QuantConfig(bits=4, rounding="stochastic", reserve_zero=True))
    assert a.method == b.method != c.method
    assert a.key != b.key
    assert SweepPoint(None).method == "float"


# --- summarize ----------------------------------------------------------------------------


def test_summarize_gives_mean_std_and_count_per_curve_and_bits() -> None:
    rows = [
        {"label": "float", "bits": "float", "map_r11": "0.5"},
        {"label": "stoch", "bits": "4", "map_r11": "0.2"},
        {"label": "stoch", "bits": "4", "map_r11": "0.4"},
        {"label": "stoch", "bits": "6", "map_r11": "0.45"},
        {"label": "near", "bits": "4", "map_r11": "0.3"},
    ]
    curves = summarize(rows)
    assert set(curves) == {"float", "stoch", "near"}
    assert curves["float"] == {32: pytest.approx((0.5, 0.0, 1))}
    mean, std, n = curves["stoch"][4]
    assert (mean, n) == (pytest.approx(0.3), 2)
    assert std == pytest.approx(0.1)  # spread of 0.2 and 0.4 around 0.3 (population std)
    assert curves["stoch"][6] == pytest.approx((0.45, 0.0, 1))
    assert list(curves["stoch"]) == [4, 6]


# --- run_sweep ------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_sweep_writes_one_row_per_point_and_the_float_baseline(
    tiny_detector, dataset, counter, tmp_path
) -> None:
    points = sweep_points(POINTS_CONFIGS)
    rows = run_sweep(tiny_detector, dataset, points, tmp_path, meta_of(tiny_detector, dataset))
    on_disk = csv_rows(tmp_path)
    assert [r["key"] for r in on_disk] == [p.key for p in points]
    assert [r["key"] for r in rows] == [p.key for p in points]
    assert on_disk[0]["bits"] == "float" and on_disk[0]["config"] == ""
    assert [r["bits"] for r in on_disk[1:]] == ["4", "6", "8"]
    for r in on_disk:
        for field in ("map_r11", "map_r40", "map_r11_moderate", "map_r40_hard"):
            assert 0.0 <= float(r[field]) <= 1.0
        if r["config"]:
            assert QuantConfig.from_json(r["config"]) == QuantConfig(bits=int(r["bits"]))
    # every point ran over every image once (one batch of 4 images)
    assert sorted(counter.calls) == sorted(p.key for p in points)
    assert (tmp_path / META_NAME).is_file()


@pytest.mark.slow
def test_killed_sweep_resumes_without_redoing_finished_points(
    tiny_detector, dataset, counter, tmp_path
) -> None:
    points = sweep_points(POINTS_CONFIGS)
    meta = meta_of(tiny_detector, dataset)

    class Killed(Exception):
        pass

    def kill_after_two(done: int, total: int, row: dict | None) -> None:
        if row is not None and done == 2:
            raise Killed

    with pytest.raises(Killed):
        run_sweep(tiny_detector, dataset, points, tmp_path, meta, progress=kill_after_two)
    assert [r["key"] for r in csv_rows(tmp_path)] == [p.key for p in points[:2]]
    counter.calls.clear()

    seen: list[tuple[int, int]] = []
    rows = run_sweep(
        tiny_detector, dataset, points, tmp_path, meta, progress=lambda d, t, r: seen.append((d, t))
    )
    assert counter.calls == [p.key for p in points[2:]]  # only the unfinished points ran
    assert seen[0] == (2, 4) and seen[-1] == (4, 4)
    assert sorted(r["key"] for r in rows) == sorted(p.key for p in points)
    assert [r["key"] for r in csv_rows(tmp_path)] == [p.key for p in points]

    counter.calls.clear()
    run_sweep(tiny_detector, dataset, points, tmp_path, meta)
    assert counter.calls == []  # a finished sweep runs nothing


@pytest.mark.slow
def test_cancelled_sweep_keeps_finished_points(tiny_detector, dataset, counter, tmp_path) -> None:
    from squeezelens.engine.errors import Cancelled
    from squeezelens.engine.jobs import CancelToken

    points = sweep_points(POINTS_CONFIGS[:2])
    token = CancelToken()

    def cancel_after_first(done: int, total: int, row: dict | None) -> None:
        if row is not None:
            token.cancel()

    meta = meta_of(tiny_detector, dataset)
    with pytest.raises(Cancelled):
        run_sweep(
            tiny_detector,
            dataset,
            points,
            tmp_path,
            meta,
            progress=cancel_after_first,
            cancel=token,
        )
    assert len(read_rows(tmp_path)) == 1
    counter.calls.clear()
    run_sweep(tiny_detector, dataset, points, tmp_path, meta)
    assert counter.calls == [p.key for p in points[1:]]


@pytest.mark.slow
@pytest.mark.parametrize(
    "where", ["in the mAP fields", "in the config field", "before the newline"]
)
def test_a_torn_last_line_is_ignored_and_its_point_redone(
    tiny_detector, dataset, counter, tmp_path, where
) -> None:
    points = sweep_points(POINTS_CONFIGS[:2])
    meta = meta_of(tiny_detector, dataset)
    run_sweep(tiny_detector, dataset, points, tmp_path, meta)
    path = tmp_path / CSV_NAME
    text = path.read_bytes()
    assert text.endswith(b"\n")
    last_start = text.rstrip(b"\r\n").rfind(b"\n") + 1
    cut = {  # where a kill interrupted the write of the last row
        "in the mAP fields": last_start + text[last_start:].find(b",0.") + 4,
        "in the config field": len(text) - 12,
        "before the newline": len(text) - 2,
    }[where]
    path.write_bytes(text[:cut])
    assert [r["key"] for r in read_rows(tmp_path)] == [p.key for p in points[:2]]

    counter.calls.clear()
    rows = run_sweep(tiny_detector, dataset, points, tmp_path, meta)
    assert counter.calls == [points[2].key]
    assert sorted(r["key"] for r in rows) == sorted(p.key for p in points)
    on_disk = csv_rows(tmp_path)
    # the file parses into exactly the three complete rows, nothing glued or extra
    assert sorted(r["key"] for r in read_rows(tmp_path)) == sorted(p.key for p in points)
    complete = [r for r in on_disk if None not in r and all(v is not None for v in r.values())]
    assert sorted(r["key"] for r in complete) == sorted(p.key for p in points)


@pytest.mark.parametrize(
    "field, value",
    [
        ("checkpoint_sha256", "f" * 64),
        ("split", "train"),
        ("input_size", [1248, 384]),
        ("kitti_root", "/elsewhere/kitti"),
    ],
)
def test_a_folder_made_for_another_checkpoint_or_split_is_refused(
    tiny_detector, dataset, counter, tmp_path, field, value
) -> None:
    import json

    (tmp_path / META_NAME).write_text(json.dumps(meta_of(tiny_detector, dataset, **{field: value})))
    with pytest.raises(InputError, match=field.replace("_", " ")) as err:
        run_sweep(
            tiny_detector, dataset, sweep_points([]), tmp_path, meta_of(tiny_detector, dataset)
        )
    assert str(tmp_path) in str(err.value)
    assert counter.calls == [] and not (tmp_path / CSV_NAME).exists()


def test_unreadable_metadata_is_an_input_error(tiny_detector, dataset, tmp_path) -> None:
    (tmp_path / META_NAME).write_text("{not json")
    with pytest.raises(InputError, match=META_NAME):
        run_sweep(tiny_detector, dataset, [], tmp_path, meta_of(tiny_detector, dataset))


@pytest.mark.slow
def test_stochastic_repeats_run_once_per_seed_and_summarize_over_them(
    tiny_detector, dataset, counter, tmp_path
) -> None:
    configs = [QuantConfig(bits=3, rounding="stochastic"), QuantConfig(bits=3)]
    points = sweep_points(configs, repeats=3)
    rows = run_sweep(tiny_detector, dataset, points, tmp_path, meta_of(tiny_detector, dataset))
    assert len(counter.calls) == len(points) == 5
    seeds = sorted(int(r["seed"]) for r in rows if r["rounding"] == "stochastic")
    assert seeds == [0, 1, 2]
    curves = summarize(rows)
    stoch = SweepPoint(configs[0]).method
    mean, std, n = curves[stoch][3]
    values = [float(r["map_r11"]) for r in rows if r["rounding"] == "stochastic"]
    assert n == 3 and mean == pytest.approx(sum(values) / 3)
    assert curves[SweepPoint(configs[1]).method][3][2] == 1


# --- plot --------------------------------------------------------------------------------


def test_render_sweep_writes_a_png_and_a_valid_svg(tmp_path) -> None:
    pytest.importorskip("pyqtgraph")
    from squeezelens.cli.plots import render_sweep

    curves = {
        "float": {32: (0.7, 0.0, 1)},
        "nearest, no zero, global": {3: (0.1, 0.0, 1), 4: (0.4, 0.0, 1), 8: (0.69, 0.0, 1)},
        "stochastic, no zero, global": {3: (0.05, 0.02, 3), 4: (0.3, 0.05, 3), 8: (0.68, 0.01, 3)},
    }
    png, svg = tmp_path / "plots" / "sweep.png", tmp_path / "plots" / "sweep.svg"
    render_sweep(curves, png, svg, "tiny model on val")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] >= 1000
    assert image.std() > 0  # something was drawn
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    for label in ("nearest, no zero, global", "stochastic, no zero, global", "float"):
        assert label in text
    drawn = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] in ("path", "polyline")]
    assert len(drawn) >= 3  # at least the two curves and the float line


# --- seeds of deterministic points --------------------------------------------------------


def test_nearest_points_are_keyed_without_their_seed() -> None:
    a, b = SweepPoint(QuantConfig(bits=4, seed=5)), SweepPoint(QuantConfig(bits=4))
    assert a.key == b.key
    s5 = SweepPoint(QuantConfig(bits=4, rounding="stochastic", seed=5))
    s0 = SweepPoint(QuantConfig(bits=4, rounding="stochastic"))
    assert s5.key != s0.key
    points = sweep_points([QuantConfig(bits=4, seed=5)], include_float=False)
    assert [p.quant.seed for p in points] == [0]


@pytest.mark.slow
def test_a_rerun_with_another_seed_redoes_only_the_stochastic_points(
    tiny_detector, dataset, counter, tmp_path
) -> None:
    meta = meta_of(tiny_detector, dataset)

    def configs(seed: int) -> list[QuantConfig]:
        return [
            QuantConfig(bits=4, seed=seed),
            QuantConfig(bits=4, rounding="stochastic", seed=seed),
        ]

    run_sweep(tiny_detector, dataset, sweep_points(configs(0)), tmp_path, meta)
    counter.calls.clear()
    points = sweep_points(configs(7))
    run_sweep(tiny_detector, dataset, points, tmp_path, meta)
    assert counter.calls == [SweepPoint(configs(7)[1]).key]


@pytest.mark.slow
def test_nearest_rows_of_older_csvs_with_another_seed_count_as_done(
    tiny_detector, dataset, counter, tmp_path
) -> None:
    import json

    meta = meta_of(tiny_detector, dataset)
    run_sweep(tiny_detector, dataset, sweep_points([QuantConfig(bits=4)]), tmp_path, meta)
    path = tmp_path / CSV_NAME
    old = QuantConfig(bits=4, seed=3).to_dict()  # how an older version keyed a --seed 3 row
    text = path.read_text().replace('""seed"": 0', '""seed"": 3')
    path.write_text(text)
    assert json.loads(csv_rows(tmp_path)[1]["key"]) == old
    counter.calls.clear()
    rows = run_sweep(
        tiny_detector, dataset, sweep_points([QuantConfig(bits=4, seed=9)]), tmp_path, meta
    )
    assert counter.calls == [] and len(rows) == 2
    assert rows[1]["key"] == SweepPoint(QuantConfig(bits=4)).key


# --- calibration set ------------------------------------------------------------------------


def act_row(tmp_path: Path, activation_bits: int | None) -> None:
    """Append one finished row (scores made up) of a 4-bit point."""
    from squeezelens.engine.sweep import FIELDS, append_row

    quant = QuantConfig(bits=4, activation_bits=activation_bits)
    row = dict.fromkeys(FIELDS, "0.1")
    row.update(key=SweepPoint(quant).key, label="x", bits="4", config=quant.to_json())
    append_row(tmp_path, row)


@pytest.mark.parametrize(
    ("old", "new", "rows", "refused"),
    [
        ("a" * 64, "b" * 64, [], "another calibration"),  # another --calib: refused
        ("a" * 64, "a" * 64, [8], None),  # the same set resumes
        ("a" * 64, None, [8], None),  # this sweep quantizes no activations: no check
        (None, "b" * 64, [None], None),  # no activation rows yet: the set is recorded
        (None, "b" * 64, [8], "unrecorded calibration"),  # rows of an unknown set
    ],
)
def test_a_resume_with_another_calibration_set_is_refused(
    tiny_detector, dataset, tmp_path, old, new, rows, refused
) -> None:
    import json

    from squeezelens.engine.sweep import CALIBRATION, check_or_write_meta

    before = meta_of(tiny_detector, dataset)
    if old is not None:
        before[CALIBRATION] = old
    (tmp_path / META_NAME).write_text(json.dumps(before))
    for bits in rows:
        act_row(tmp_path, bits)
    meta = meta_of(tiny_detector, dataset, **{CALIBRATION: new})
    if refused:
        with pytest.raises(InputError, match=refused):
            check_or_write_meta(tmp_path, meta)
        return
    check_or_write_meta(tmp_path, meta)
    recorded = json.loads((tmp_path / META_NAME).read_text()).get(CALIBRATION)
    assert recorded == (old or new)


# --- plot provenance --------------------------------------------------------------------------


def test_sweep_plots_carry_a_provenance_caption(tmp_path) -> None:
    pytest.importorskip("pyqtgraph")
    from PySide6.QtGui import QImage

    from squeezelens.cli.plots import provenance_caption, render_sweep

    meta = {
        "checkpoint_sha256": "1234567890abcdef" * 4,
        "kitti_root": "/data/kitti",
        "split": "val",
        "protocol": "squeezedet",
        "versions": {"squeezelens": "9.9"},
    }
    caption = provenance_caption(meta)
    assert (
        caption
        == "checkpoint 1234567890ab · val split of kitti · protocol squeezedet · squeezelens 9.9"
    )
    curves = {"float": {32: (0.7, 0.0, 1)}, "nearest, no zero, global": {4: (0.4, 0.0, 1)}}
    png, svg = tmp_path / "sweep.png", tmp_path / "sweep.svg"
    render_sweep(curves, png, svg, "tiny model on val", caption=caption)
    assert QImage(str(png)).text("Description") == caption
    root = ET.parse(svg).getroot()
    desc = [e.text for e in root if e.tag.rsplit("}", 1)[-1] == "desc"]  # the document's own
    assert desc == [caption]
    assert "1234567890ab" in "".join(root.itertext())  # drawn under the title too
