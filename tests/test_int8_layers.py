"""Simulated vs deployed INT8 layer by layer (engine.int8.layers, compare_layers, compare-int8).

Reuses test_int8's small He-initialised SqueezeDet at 128x64 and its cached conversion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from squeezelens.engine.errors import InputError
from squeezelens.engine.int8 import layers as L
from squeezelens.engine.int8.compare_layers import compare_int8_layers
from squeezelens.engine.model.spec import layer_names
from tests.test_cli import run
from tests.test_int8 import (  # noqa: F401 (fixtures)
    N_CALIB,
    calib_images,
    detector,
    files,
    int8_path,
    scene,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images():
    return [scene(100), scene(101)]


@pytest.fixture(scope="module")
def compared(detector, int8_path, images):  # noqa: F811
    return compare_int8_layers(detector, int8_path, images)


def test_conv_ops_and_deployed_weights(detector, int8_path):  # noqa: F811
    interp = L.open_probe(int8_path)
    names = layer_names(detector.spec.variant)
    ops = L.conv_ops(interp, names)
    assert list(ops) == names
    weights = L.deployed_weights(interp, ops)
    for name in names:
        w, d = detector.float_weights[f"{name}/kernels"], weights[f"{name}/kernels"]
        assert d.shape == w.shape
        step = np.abs(w).reshape(-1, w.shape[-1]).max(axis=0) / 127  # symmetric int8 per channel
        assert np.all(np.abs(d - w) <= step / 2 * (1 + 1e-5) + 1e-12)
        b = detector.float_weights[f"{name}/biases"]
        b_step = interp.get_tensor_details()[ops[name].bias]["quantization_parameters"]["scales"]
        assert np.all(np.abs(weights[f"{name}/biases"] - b) <= b_step / 2 * (1 + 1e-5))
    with pytest.raises(InputError, match="no conv op for layer"):
        L.conv_ops(interp, [*names, "fire99/squeeze1x1"])
    with pytest.raises(InputError, match="kernels"):
        L.open_probe(int8_path, "gpu")


def test_simulation_follows_the_deployed_model(compared, detector):  # noqa: F811
    rows = compared.rows
    assert [r.layer for r in rows] == layer_names(detector.spec.variant)
    assert compared.images == 2 and compared.kernels == "xnnpack"
    first = rows[0]
    assert first.deployed_vs_simulated.sqnr_db > first.deployed_vs_float.sqnr_db + 20
    assert first.parted_share == 0.0
    for r in rows:
        assert math.isfinite(r.deployed_vs_float.sqnr_db) and 0.9 < r.deployed_float_cosine <= 1
        assert r.local_share < 0.01 and r.local_max_lsb <= 1
        assert r.simulated_vs_float.sqnr_db == pytest.approx(r.deployed_vs_float.sqnr_db, abs=1.0)
    text = compared.format_table()
    assert "tolerance" in text and "conv12" in text


def test_a_wrong_simulation_parts_at_the_first_layer(detector, int8_path, images, monkeypatch):  # noqa: F811
    real = L.activation_grids

    def coarser(ops):  # steps 5x the deployed ones: values land up to 2.5 steps away
        return {n: (5 * s, lo, hi) for n, (s, lo, hi) in real(ops).items()}

    monkeypatch.setattr(L, "activation_grids", coarser)
    wrong = compare_int8_layers(detector, int8_path, images[:1])
    assert wrong.first_parting == "conv1" and wrong.rows[0].parted_share > 0.1


def test_reference_kernels_and_csv(detector, int8_path, images, tmp_path):  # noqa: F811
    ref = compare_int8_layers(detector, int8_path, images[:1], kernels="reference")
    assert ref.kernels == "reference"
    assert all(math.isfinite(r.deployed_vs_float.sqnr_db) for r in ref.rows)
    path = ref.write_csv(tmp_path / "layers.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("layer,shape,scale,zero_point") and len(lines) == 1 + len(ref.rows)


def test_compare_int8_command(capsys, files, int8_path, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(files["cache"]))
    argv = ["compare-int8", "--checkpoint", files["ckpt"], "--images", files["calib"],
            "--count", "1", "--calib", files["calib"], "--calib-count", str(N_CALIB)]  # fmt: skip
    rc, out, _ = run(capsys, *argv, "--out", tmp_path / "cmp")
    assert rc == 0 and "deployed vs simulated" in out and "fire9/expand3x3" in out
    assert (tmp_path / "cmp" / "int8_layers.csv").exists()
    rc, _, err = run(capsys, *argv[:-4], "--count", "0")
    assert rc == 2 and "--count" in err


def test_evaluate_errors_compares_float_with_the_int8_model(detector, int8_path, tmp_path):  # noqa: F811
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.error_eval import evaluate_errors
    from squeezelens.engine.evaluate import evaluate
    from squeezelens.engine.int8 import Int8Detector
    from tests.test_sweep import write_tiny_kitti

    dataset = open_dataset(write_tiny_kitti(tmp_path / "kitti", n_images=3), "val")
    int8 = Int8Detector(detector, int8_path)
    got = evaluate_errors(detector, dataset, int8)
    assert set(got.analyses) == {"float", "quantized"}
    want = evaluate(int8, dataset)
    for c in want.classes:
        assert got.result.ap[c]["hard"].ap_r40 == want.ap[c]["hard"].ap_r40
    assert math.isfinite(got.head_split.class_probs.sqnr_db)
