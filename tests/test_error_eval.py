"""evaluate --errors: the joint float/quantized pass, twins, head split and the CLI.

The detector is the random-weight ``tiny_detector`` on a tiny KITTI folder: its
AP is meaningless, so the tests check that the joint pass gives exactly what
the separate evaluations give, and known answers of the statistics.
"""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest

from squeezelens.engine.compare import (
    SCORE_SHIFT_EDGES,
    Comparison,
    Match,
    TwinStats,
    compare_detections,
)
from squeezelens.engine.data.kitti import open_dataset
from squeezelens.engine.diagnostics import ErrorStats, HeadSplit
from squeezelens.engine.error_eval import detect_float_and_quantized, evaluate_errors
from squeezelens.engine.errors import Cancelled, InputError
from squeezelens.engine.evaluate import detect_dataset, evaluate
from squeezelens.engine.jobs import CancelToken
from squeezelens.engine.quant import QuantConfig
from tests.test_cli import files, run  # noqa: F401 (files: the shared module fixture)
from tests.test_sweep import write_tiny_kitti

# --- statistics: known answers -------------------------------------------------------------


def test_twin_stats_of_known_matches():
    comps = [
        Comparison((Match(0, 0, 0.9, -0.2, False), Match(1, 1, 0.7, 0.05, True)), (2,), (), 0.5),
        Comparison((Match(0, 1, 0.8, -0.05, False),), (), (0, 3), 0.5),
    ]
    t = TwinStats.of(comps)
    assert (t.pairs, t.class_flips, t.lost, t.gained) == (3, 1, 1, 2)
    assert t.mean_iou == pytest.approx(0.8)
    assert t.score_shift_mean == pytest.approx(-0.2 / 3)
    assert t.score_shift_quantiles[2] == pytest.approx(-0.05)  # the median
    hist = dict(zip(SCORE_SHIFT_EDGES[:-1], t.score_shift_histogram, strict=True))
    assert hist[-0.2] == 1 and hist[-0.1] == 1 and hist[0.0] == 1 and sum(hist.values()) == 3
    doc = t.to_json_dict()
    assert doc["score_shift"]["quantiles"]["0.5"] == pytest.approx(-0.05)
    empty = TwinStats.of([])
    assert empty.pairs == 0 and math.isnan(empty.mean_iou)
    assert empty.to_json_dict()["mean_iou"] is None


def test_head_split_separates_the_heads_and_sums_over_images():
    k, c = 2, 3
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((4, 5, k * (c + 5))).astype(np.float32)
    moved = raw.copy()
    moved[..., k * c + k :] += 0.5  # only the box deltas change
    split = HeadSplit(c, k).add(raw, moved)
    got = split.result()
    assert got.class_probs.sqnr_db == math.inf and got.confidence.sqnr_db == math.inf
    deltas = raw[..., k * c + k :].reshape(-1, 4)
    assert got.deltas == ErrorStats.of(deltas, deltas + 0.5)
    other = rng.standard_normal(raw.shape).astype(np.float32)
    twice = HeadSplit(c, k).add(raw, moved).add(other, other + 1.0).result()
    both = np.concatenate([deltas, other[..., k * c + k :].reshape(-1, 4)])
    assert twice.deltas.sqnr_db == pytest.approx(
        ErrorStats.of(both, both + np.r_[np.full(deltas.shape, 0.5), np.ones(deltas.shape)]).sqnr_db
    )
    assert twice.class_probs.sqnr_db < math.inf


# --- the joint pass ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = write_tiny_kitti(tmp_path_factory.mktemp("kitti"), n_images=5)
    return open_dataset(root, "val")


@pytest.mark.slow
def test_joint_pass_gives_what_the_separate_passes_give(tiny_detector, dataset):
    quant = QuantConfig(bits=4)
    seen = []
    paired = detect_float_and_quantized(
        tiny_detector, tiny_detector, quant, dataset, 0.0, on_image=lambda r, d: seen.append(r.stem)
    )
    floats = detect_dataset(tiny_detector, dataset)
    quants = detect_dataset(tiny_detector, dataset, quant)
    assert seen == [r.stem for r in dataset.records]
    for stem in seen:
        for got, want in (
            (paired.float[stem], floats[stem]),
            (paired.quantized[stem], quants[stem]),
        ):
            np.testing.assert_array_equal(got.boxes_xyxy, want.boxes_xyxy)
            np.testing.assert_array_equal(got.scores, want.scores)
    twins = TwinStats.of(compare_detections(floats[s], quants[s]) for s in seen)
    assert paired.twins == twins
    assert 0 < paired.head_split.deltas.mse and math.isfinite(paired.head_split.deltas.sqnr_db)


@pytest.mark.slow
def test_evaluate_errors_matches_evaluate(tiny_detector, dataset):
    quant = QuantConfig(bits=6)
    only = evaluate_errors(tiny_detector, dataset)
    assert list(only.analyses) == ["float"] and only.head_split is None and only.twins is None
    plain = evaluate(tiny_detector, dataset)
    both = evaluate_errors(tiny_detector, dataset, tiny_detector, quant)
    q_plain = evaluate(tiny_detector, dataset, quant)
    for c in plain.classes:
        for d in ("easy", "moderate", "hard"):
            assert only.result.ap[c][d].ap_r40 == plain.ap[c][d].ap_r40
            assert both.analyses["float"].result.ap[c][d].ap_r40 == plain.ap[c][d].ap_r40
            assert both.result.ap[c][d].ap_r40 == q_plain.ap[c][d].ap_r40
    fine = evaluate_errors(tiny_detector, dataset, tiny_detector, QuantConfig(bits=12))
    assert fine.head_split.deltas.sqnr_db > both.head_split.deltas.sqnr_db
    doc = both.to_json_dict()
    assert set(doc["models"]) == {"float", "quantized"} and doc["twin_threshold"] == 0.4
    assert set(doc["head_split"]) == {"class_probs", "confidence", "deltas"}
    assert "Detection errors" in both.format() and "ConvDet error by head" in both.format()


@pytest.mark.slow
def test_evaluate_errors_bad_input_and_cancel(tiny_detector, dataset, tmp_path):
    unlabelled = write_tiny_kitti(tmp_path / "k", n_images=2)
    shutil.rmtree(unlabelled / "training" / "label_2")
    with pytest.raises(InputError, match="no KITTI labels"):
        evaluate_errors(tiny_detector, open_dataset(unlabelled, "val"))
    with pytest.raises(InputError, match="twin threshold"):
        evaluate_errors(tiny_detector, dataset, twin_threshold=1.5)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        evaluate_errors(tiny_detector, dataset, tiny_detector, QuantConfig(bits=4), cancel=token)


# --- the command ------------------------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_errors_command_writes_the_errors_section(capsys, files, tmp_path):  # noqa: F811
    out = tmp_path / "eval"
    args = ["evaluate", "--checkpoint", files["ckpt"], "--kitti-root", files["kitti"]]
    rc, stdout, _ = run(capsys, *args, "--bits", "6", "--errors", "--out", out)
    assert rc == 0
    assert "Detection errors" in stdout and "twins" in stdout and "by head" in stdout
    doc = json.loads((out / "results.json").read_text())
    errors = doc["errors"]
    assert set(errors["models"]) == {"float", "quantized"}
    car = errors["models"]["quantized"]["classes"]["car"]["moderate"]
    assert set(car["counts"]) == {"cls", "loc", "both", "dupe", "bkg", "missed"}
    assert car["ap_r40"] == doc["ap"]["car"]["moderate"]["r40"]
    with open(out / "errors.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["model"] for r in rows} == {"float", "quantized"} and len(rows) == 2 * 9 * 6
    rc, stdout, _ = run(capsys, *args, "--errors")
    assert rc == 0 and "float" in stdout and "quantized" not in stdout.split("Detection errors")[1]


def test_evaluate_errors_bad_twin_threshold_is_one_line(capsys, files):  # noqa: F811
    from tests.test_cli import assert_one_line_error

    assert_one_line_error(
        capsys,
        ["evaluate", "--checkpoint", "/nonexistent.npz", "--kitti-root", files["kitti"],
         "--errors", "--twin-threshold", "2"],
        "--twin-threshold",
    )  # fmt: skip
