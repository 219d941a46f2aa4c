"""The remedies on the command line: evaluate/quantize flags, adaround, search, --int8 checks.

Commands run in-process (``cli.main.main``) on the random-weight 256x96 checkpoint and
the tiny KITTI tree of tests/test_cli.py; the remedies' disk cache goes to a
temporary folder.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.test_cli import TRAIN, files, run  # noqa: F401 (files: the shared module fixture)
from tests.test_cli import assert_one_line_error as one_line_error


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_evaluate_with_bias_correction_records_its_calibration(capsys, files, tmp_path, cache_dir):
    out = tmp_path / "ev"
    rc, stdout, err = run(capsys, "evaluate", "--checkpoint", files["ckpt"], "--kitti-root",
                          files["kitti"], "--bits", "4", "--scale", "channel", "--range", "mse",
                          "--bias-correction", "--out", out)  # fmt: skip
    assert rc == 0, err
    doc = json.loads((out / "results.json").read_text())
    assert doc["quant"]["bias_correction"] and doc["quant"]["range"] == "mse"
    assert doc["calibration"]["count"] == len(TRAIN)  # the train split, never val
    assert "train split" in doc["calibration"]["source"] and "bias corrected" in err
    assert len(list(cache_dir.glob("remedies/*.npz"))) == 1


@pytest.mark.slow
def test_adaround_writes_a_checkpoint_with_its_provenance(capsys, files, tmp_path) -> None:
    from squeezelens.engine.checkpoint import load_checkpoint

    out = tmp_path / "ada.npz"
    rc, stdout, err = run(capsys, "adaround", "--checkpoint", files["ckpt"], "--kitti-root",
                          files["kitti"], "--bits", "4", "--scale", "channel",
                          "--adaround-iterations", "5", "--out", out)  # fmt: skip
    assert rc == 0, err
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["quant"]["rounding"] == "adaround" and side["quant"]["adaround_iterations"] == 5
    assert side["calibration"]["count"] == len(TRAIN) and side["checkpoint"]["sha256"]
    loaded = load_checkpoint(out)  # usable as a checkpoint (its .json is the sidecar)
    assert loaded.spec.input_size == (256, 96)
    levels = np.unique(loaded.weights["fire4/expand3x3/kernels"][..., 0])
    assert len(levels) <= 16  # 4 bits per channel
    rc, _, err = run(capsys, "evaluate", "--checkpoint", out, "--kitti-root", files["kitti"])
    assert rc == 0, err


@pytest.mark.parametrize(
    ("command", "flags", "needle"),
    [
        ("adaround", ["--rounding", "nearest", "--out", "x.npz"], "drop --rounding nearest"),
        ("adaround", ["--out", "x.txt"], "--out must end in .npz"),
        ("adaround", ["--int8", "--out", "x.npz"], "export --int8"),
        ("evaluate", ["--int8", "--bits", "4"], "weight quantization flags"),
        ("evaluate", ["--int8", "--range", "mse"], "--range"),
        ("evaluate", ["--range", "percentile:40"], "percentile:P"),
        ("evaluate", ["--bias-correction", "--kitti-root", "NO_TRAIN"], "no calibration images"),
        ("search", ["--out", "d"], "--bits 2,3,4,6,8"),
        ("search", ["--bits", "4,8", "--layer-bits", "conv12=4", "--out", "d"], "--layer-bits"),
        ("search", ["--bits", "4,8", "--activation-bits", "8", "--out", "d"], "weight widths"),
        ("search", ["--bits", "4,8", "--max-drop", "1.5", "--out", "d"], "--max-drop"),
    ],
)
def test_remedy_flags_are_checked_before_the_model_loads(
    capsys, files, tmp_path, no_model_load, command, flags, needle
):
    flags = [str(files["no_train"]) if f == "NO_TRAIN" else f for f in flags]
    flags = [str(tmp_path / f) if f in ("x.npz", "x.txt", "d") else f for f in flags]
    root = [] if "--kitti-root" in flags else ["--kitti-root", files["kitti"]]
    one_line_error(capsys, [command, "--checkpoint", files["ckpt"], *root, *flags], needle)


def test_int8_takes_the_remedies_that_apply(files) -> None:
    from squeezelens.cli.main import build_parser
    from squeezelens.cli.runner import check_quant_flags
    from squeezelens.engine.quant.remedies.int8 import INT8_WEIGHTS, int8_config

    args = build_parser().parse_args(["evaluate", "--int8", "--equalize", "--bias-correction",
                                      "--kitti-root", str(files["kitti"])])  # fmt: skip
    quant, calibration = check_quant_flags(args)
    config = int8_config(quant)
    assert config == INT8_WEIGHTS.replace(equalize=True, bias_correction=True)
    assert len(calibration) == len(TRAIN)
    assert int8_config(quant.replace(equalize=False, bias_correction=False)) is None


@pytest.mark.slow
def test_search_writes_the_front_and_resumes(capsys, files, tmp_path) -> None:
    out = tmp_path / "search"
    argv = ["search", "--checkpoint", files["ckpt"], "--kitti-root", files["kitti"],
            "--bits", "2,8", "--scale", "channel", "--max-drop", "0.05", "--out", out]  # fmt: skip
    rc, stdout, err = run(capsys, *argv)
    assert rc == 0, err
    for name in (
        "front.csv",
        "search.csv",
        "sensitivity.csv",
        "search.json",
        "front.png",
        "front.svg",
    ):
        assert (out / name).exists(), name
    with open(out / "front.csv", newline="") as f:
        front = list(csv.DictReader(f))
    assert front and all(row["layer_bits"] or float(row["size_kb"]) > 0 for row in front)
    sizes = [float(r["size_kb"]) for r in front]
    assert sizes == sorted(sizes)
    doc = json.loads((out / "search.json").read_text())
    assert doc["float_map"] >= 0 and "smallest within" in stdout or "no mixed precision" in stdout
    before = (out / "search.csv").read_text()
    rc, _, err = run(capsys, *argv)  # resumes: nothing new to score
    assert rc == 0, err and (out / "search.csv").read_text() == before


@pytest.mark.slow
def test_int8_source_holds_the_remedied_weights(tiny_detector, cache_dir) -> None:
    from squeezelens.engine.quant import QuantConfig
    from squeezelens.engine.quant.remedies.int8 import INT8_WEIGHTS, int8_source

    assert int8_source(tiny_detector, None) is tiny_detector
    assert int8_source(tiny_detector, QuantConfig(seed=3)) is tiny_detector  # nothing applies
    source = int8_source(tiny_detector, QuantConfig(equalize=True))
    expected = tiny_detector.quantized_weights(INT8_WEIGHTS.replace(equalize=True))
    for name, values in expected.items():
        np.testing.assert_array_equal(source.float_weights[name], values)
    assert source.checkpoint.sha256 != getattr(tiny_detector.checkpoint, "sha256", None)
    assert "equalized" in source.checkpoint.path
    x = np.random.default_rng(0).normal(0, 50, (1, 96, 256, 3)).astype(np.float32)
    before, after = tiny_detector.forward(x), source.forward(x)
    assert (
        np.abs(after - before).max() < 0.05 * np.abs(before).max()
    )  # the same model, int8 weights


@pytest.mark.slow
def test_export_int8_converts_the_remedied_weights(capsys, files, tmp_path, monkeypatch) -> None:
    from tests.test_cli_quant import FakeInt8

    FakeInt8.calls = []
    seen = []

    class Recording(FakeInt8):
        @classmethod
        def from_detector(cls, detector, images, progress=None):
            seen.append(detector)
            return super().from_detector(detector, images, progress)

    monkeypatch.setattr("squeezelens.engine.int8.Int8Detector", Recording)
    out = tmp_path / "m.tflite"
    rc, _, err = run(capsys, "export", "--checkpoint", files["ckpt"], "--out", out, "--int8",
                     "--kitti-root", files["kitti"], "--equalize")  # fmt: skip
    assert rc == 0, err
    assert "equalized" in seen[0].checkpoint.path  # the converter got the equalized weights
    side = json.loads((tmp_path / "m.tflite.json").read_text())
    assert side["provenance"]["config"]["remedies"]["equalize"] is True
    one_line_error(capsys, ["export", "--checkpoint", files["ckpt"], "--out", tmp_path / "w.npz",
                            "--equalize"], "apply to --int8")  # fmt: skip
