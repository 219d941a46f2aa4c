"""The quantization side of the command line: quantize, export --int8 calibration, sweep
--fork-curves, and flag checks that must fail before the (slow) model load.

Commands run in-process through ``cli.main.main``.  The model is a random-weight
SqueezeDet at 256x96 saved as .npz with its sidecar; the dataset a tiny KITTI
tree (val and train splits).  The INT8 conversion itself is replaced by a fake
where only the choice of calibration images is under test (tests/test_int8.py
converts for real).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from squeezelens.engine.model.spec import layer_names
from tests.test_cli import TRAIN, files, run  # noqa: F401 (files: the shared module fixture)
from tests.test_cli import assert_one_line_error as one_line_error

# --- quantize -----------------------------------------------------------------------------


def test_quantize_takes_the_shared_flags_and_refuses_int8(capsys, files, no_model_load) -> None:
    out = files["root"] / "q_int8.npz"
    line = one_line_error(
        capsys, ["quantize", "--checkpoint", files["ckpt"], "--int8", "--out", out], "export --int8"
    )
    assert "simulated" in line and not out.exists()
    one_line_error(
        capsys,
        ["quantize", "--checkpoint", files["ckpt"], "--calib", files["images"], "--out", out],
        "only used with --activation-bits",
    )
    one_line_error(
        capsys,
        ["quantize", "--checkpoint", files["ckpt"], "--activation-bits", "8",
         "--calib", files["images"], "--calib-count", "0", "--out", out],
        "--calib-count must be at least 1",
    )  # fmt: skip


@pytest.mark.slow
def test_quantize_records_calibrated_activation_formats(capsys, files, tmp_path) -> None:
    from squeezelens.engine.data.images import list_images
    from squeezelens.engine.provenance import file_list_sha256

    out = tmp_path / "q8a6.npz"
    argv = ["quantize", "--checkpoint", files["ckpt"], "--bits", "8", "--activation-bits", "6",
            "--calib", files["images"], "--calib-count", "3", "--out", out]  # fmt: skip
    rc, _, err = run(capsys, *argv)
    assert rc == 0, err
    doc = json.loads(out.with_suffix(".json").read_text())
    acts = doc["activations"]
    assert acts["bits"] == 6 and doc["quant"]["activation_bits"] == 6
    used = sorted(list_images([str(files["images"])]))[:3]
    assert acts["calibration"]["count"] == 3
    assert acts["calibration"]["sha256"] == file_list_sha256(used)
    assert list(acts["layers"]) == layer_names("squeezedet")
    for fmt in acts["layers"].values():
        assert isinstance(fmt["frac_len"], int) and fmt["step"] == 2.0 ** -fmt["frac_len"]
        assert fmt["max"] + fmt["step"] >= fmt["max_abs"] > 0


@pytest.mark.slow
def test_quantize_calibrates_on_the_train_split_of_kitti_root(capsys, files, tmp_path) -> None:
    out = tmp_path / "q.npz"
    rc, _, err = run(capsys, "quantize", "--checkpoint", files["ckpt"], "--activation-bits", "8",
                     "--kitti-root", files["kitti"], "--out", out)  # fmt: skip
    assert rc == 0, err
    calibration = json.loads(out.with_suffix(".json").read_text())["activations"]["calibration"]
    assert calibration["count"] == len(TRAIN) and "train split" in calibration["source"]
    rc, _, err = run(capsys, "quantize", "--checkpoint", files["ckpt"], "--out", out)
    assert rc == 0 and json.loads(out.with_suffix(".json").read_text())["activations"] is None


# --- export --int8 calibration --------------------------------------------------------------


class FakeInt8:
    """Stands in for Int8Detector: records the calibration images, writes a dummy model."""

    calls: list[int] = []

    def __init__(self, path: Path) -> None:
        self.model_path = path
        self.input_quantization = (0.5, -3)
        self.output_quantization = (0.25, 7)

    @classmethod
    def from_detector(cls, detector, images, progress=None):
        cls.calls.append(len(images))
        path = Path(detector.checkpoint.path).with_name("fake.tflite")
        path.write_bytes(b"TFL3")
        return cls(path)

    def size_report(self):
        class Report:
            def format(self) -> str:
                return "4 bytes, much smaller"

        return Report()


@pytest.fixture()
def fake_int8(monkeypatch):
    FakeInt8.calls = []
    monkeypatch.setattr("squeezelens.engine.int8.Int8Detector", FakeInt8)
    return FakeInt8


@pytest.mark.slow
def test_export_int8_calibrates_on_the_train_split_then_the_bundled_sample(
    capsys, files, tmp_path, fake_int8
) -> None:
    from squeezelens.engine.provenance import versions
    from squeezelens.engine.samples import default_kitti_root

    out = tmp_path / "model.tflite"
    rc, _, err = run(capsys, "export", "--checkpoint", files["ckpt"], "--out", out, "--int8",
                     "--kitti-root", files["kitti"])  # fmt: skip
    assert rc == 0, err
    assert fake_int8.calls == [len(TRAIN)] and "train split of" in err
    side = json.loads(Path(str(out) + ".json").read_text())
    prov = side["provenance"]
    assert prov["checkpoint"]["sha256"] == side["checkpoint_sha256"] is not None
    assert prov["config"]["int8"] is True and prov["config"]["calibration"]["count"] == len(TRAIN)
    assert prov["versions"] == versions() and "ai-edge-litert" in prov["versions"]
    if default_kitti_root() is None:
        pytest.skip("this install has no bundled sample data")
    rc, _, err = run(capsys, "export", "--checkpoint", files["ckpt"], "--out", out, "--int8",
                     "--calib-count", "5")  # fmt: skip
    assert rc == 0, err
    assert fake_int8.calls[-1] == 5 and "bundled sample data" in err


def test_export_int8_calibration_errors_come_before_the_model_load(
    capsys, files, tmp_path, no_model_load
) -> None:
    out = tmp_path / "model.tflite"
    base = ["export", "--checkpoint", files["ckpt"], "--out", out, "--int8"]
    one_line_error(capsys, [*base, "--kitti-root", files["no_train"]], "no train split")
    one_line_error(capsys, [*base, "--calib", files["root"] / "nothing"], "no such file")
    (tmp_path / "empty").mkdir()
    one_line_error(capsys, [*base, "--calib", tmp_path / "empty"], "no images found")
    one_line_error(
        capsys, [*base[:-1][:4], tmp_path / "w.npz", "--calib", files["images"]], "--int8"
    )


# --- sweep --------------------------------------------------------------------------------


def sweep_args(*flags: str):
    from squeezelens.cli.main import build_parser

    return build_parser().parse_args(["sweep", "--out", "unused", *flags])


def test_fork_curves_default_to_the_forks_bits_and_four_methods() -> None:
    from squeezelens.cli.commands.sweep import _configs

    configs = _configs(sweep_args("--fork-curves", "--seed", "4"))
    assert sorted({c.bits for c in configs}) == [3, 4, 5, 6, 7, 9, 11] and len(configs) == 28
    methods = {(c.rounding, c.reserve_zero, c.scale) for c in configs}
    assert methods == {("nearest", False, "global"), ("stochastic", False, "global"),
                       ("nearest", True, "groups"), ("stochastic", True, "groups")}  # fmt: skip
    assert all(c.seed == 4 and not c.quantize_first_layer for c in configs)
    assert {c.bits for c in _configs(sweep_args("--fork-curves", "--bits", "4,8"))} == {4, 8}


def test_sweep_refuses_int8_fork_curve_conflicts_and_missing_calibration(
    capsys, files, tmp_path, no_model_load
) -> None:
    base = ["sweep", "--checkpoint", files["ckpt"], "--kitti-root", files["kitti"],
            "--out", tmp_path / "s"]  # fmt: skip
    one_line_error(capsys, [*base, "--bits", "4", "--int8"], "--int8", "evaluate --int8")
    one_line_error(capsys, [*base, "--fork-curves", "--scale", "layer"], "--scale", "drop")
    no_train = [*base[:4], files["no_train"], *base[5:]]
    one_line_error(
        capsys, [*no_train, "--bits", "8", "--activation-bits", "6"], "no calibration images"
    )
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_sweep_fork_curves_writes_the_four_curves(capsys, files, tmp_path) -> None:
    import csv

    out = tmp_path / "fork"
    rc, stdout, err = run(capsys, "sweep", "--checkpoint", files["ckpt"], "--kitti-root",
                          files["kitti"], "--fork-curves", "--bits", "4", "--out", out)  # fmt: skip
    assert rc == 0, err
    assert "--protocol squeezedet" in err  # the fork scored with SqueezeDet's devkit copy
    with open(out / "sweep.csv", newline="") as f:
        labels = [r["label"] for r in csv.DictReader(f)]
    assert labels == ["float", "nearest, no zero, global", "stochastic, no zero, global",
                      "nearest, zero, groups", "stochastic, zero, groups"]  # fmt: skip
    meta = json.loads((out / "sweep_meta.json").read_text())
    assert meta["calibration_sha256"] is None
    assert meta["checkpoint_sha256"][:12] in (out / "sweep.svg").read_text()
    assert sum(line.startswith(("nearest", "stochastic")) for line in stdout.splitlines()) == 4


# --- shared flag checks (cli.runner) ----------------------------------------------------------


def test_runner_checks_flags_without_a_model(files) -> None:
    from squeezelens.cli.main import build_parser
    from squeezelens.cli.runner import check_quant_flags
    from squeezelens.engine.errors import InputError

    def args(*flags):
        return build_parser().parse_args(["detect", *map(str, flags)])

    with pytest.raises(InputError, match="weight quantization flags"):
        check_quant_flags(args("--int8", "--bits", "4"))
    with pytest.raises(InputError, match="no calibration images"):
        check_quant_flags(args("--activation-bits", "8", "--kitti-root", files["no_train"]))
    with pytest.raises(InputError, match="no calibration images"):
        check_quant_flags(args("--int8", "--kitti-root", files["no_train"]))
    with pytest.raises(InputError, match="only used with"):  # a flag that would do nothing
        check_quant_flags(args("--calib", files["images"]))
    assert check_quant_flags(args("--bits", "4"))[0].bits == 4
    quant, calibration = check_quant_flags(args("--int8", "--calib", files["images"]))
    assert quant is None and len(calibration) == len(list(files["images"].iterdir()))
    _, train = check_quant_flags(args("--activation-bits", "8", "--kitti-root", files["kitti"]))
    assert len(train) == len(TRAIN) and train.source == f"train split of {files['kitti']}"
    assert check_quant_flags(args()) == (None, None)


# ------------------------------------------------------------------ sensitivity
@pytest.mark.slow
def test_sensitivity_tests_every_quantized_layer_and_recommends_from_the_drops(
    capsys, files, tmp_path
):
    from squeezelens.engine.sensitivity import SensitivityResult, recommend_overrides

    out = tmp_path / "sens.json"
    rc, stdout, err = run(capsys, "sensitivity", "--checkpoint", files["ckpt"], "--kitti-root",
                          files["kitti"], "--bits", "6", "--test-bits", "2,6", "--tolerance", "0.01",
                          "--out", out)  # fmt: skip
    assert rc == 0, err
    doc = json.loads(out.read_text())
    layers = [n for n in layer_names("squeezedet") if n != "conv1"]  # conv1 is not quantized
    assert list(doc["drops"]) == layers and doc["bits"] == [2, 6]
    result = SensitivityResult(doc["float_map"], {(k, int(b)): v for k, d in doc["drops"].items()
                                                  for b, v in d.items()}, (2, 6), tuple(layers))  # fmt: skip
    from squeezelens.engine.quant import QuantConfig

    assert doc["recommended_overrides"] == recommend_overrides(result, 0.01, QuantConfig(bits=6))
    assert all(layer in stdout for layer in layers) and "recommended" in stdout
    assert doc["checkpoint"]["sha256"] and doc["split"] == "val"


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--test-bits", "4,x"], "--test-bits"),
        (["--test-bits", "0,4"], "--test-bits"),
        (["--int8"], "weight quantization only"),
        (["--activation-bits", "8"], "weight quantization only"),
        (["--tolerance", "2"], "--tolerance"),
    ],
)
def test_sensitivity_refuses_bad_flags_before_loading(capsys, files, no_model_load, flags, needle):
    one_line_error(capsys, ["sensitivity", "--checkpoint", files["ckpt"], "--kitti-root",
                            files["kitti"], *flags], needle)  # fmt: skip
