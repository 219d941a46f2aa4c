"""squeezelens.engine.quant.export.write_quantized (the quantize command's and the GUI's files) and
engine.quant.report.model_size_bytes (the GUI's model-size line)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezelens.engine.calibration import CalibrationSet
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec, layer_names
from squeezelens.engine.quant import QuantConfig, model_size_bytes, quantize_weights
from squeezelens.engine.quant.export import quantized_document, write_quantized
from tests.conftest import random_weights

DOC_KEYS = {"checkpoint", "quant", "seed", "versions", "tensors", "activations"}


def test_model_size_counts_each_tensor_at_its_bits() -> None:
    weights = random_weights(ArchSpec(), seed=3)
    sizes = {k: int(v.size) for k, v in weights.items()}
    n = sum(sizes.values())
    assert model_size_bytes(sizes, None) == 4 * n
    assert model_size_bytes(weights, None) == 4 * n  # arrays count by their size
    conv1 = sizes["conv1/kernels"] + sizes["conv1/biases"]
    biases = sum(v for k, v in sizes.items() if k.endswith("/biases") and k != "conv1/biases")
    kernels = n - conv1 - biases
    config = QuantConfig(bits=6, quantize_biases=False)  # conv1 float by default
    assert model_size_bytes(sizes, config) == (32 * (conv1 + biases) + 6 * kernels + 7) // 8
    both = config.replace(quantize_biases=True, overrides={"conv12": "float"})
    c12 = sizes["conv12/kernels"] + sizes["conv12/biases"]
    expected = 32 * (conv1 + c12) + 6 * (n - conv1 - c12)
    assert model_size_bytes(sizes, both) == (expected + 7) // 8
    assert model_size_bytes({"fire2/squeeze1x1/kernels": 3}, QuantConfig(bits=3)) == 2  # 9 bits


def test_write_quantized_checks_before_writing(tmp_path) -> None:
    with pytest.raises(InputError, match=r"\.npz"):
        write_quantized(tmp_path / "q.bin", None, QuantConfig())
    with pytest.raises(InputError, match="calibration images"):
        write_quantized(tmp_path / "q.npz", None, QuantConfig(activation_bits=8))
    with pytest.raises(InputError, match="calibration images"):
        write_quantized(
            tmp_path / "q.npz", None, QuantConfig(activation_bits=8), CalibrationSet((), "none")
        )
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_write_quantized_writes_the_weights_and_their_document(tiny_detector, tmp_path) -> None:
    config = QuantConfig(bits=5, scale="channel", seed=4)
    npz, side = write_quantized(tmp_path / "q5.npz", tiny_detector, config)
    assert (npz, side) == (tmp_path / "q5.npz", tmp_path / "q5.json")
    expected = quantize_weights(tiny_detector.float_weights, config)
    with np.load(npz) as z:
        assert set(z.files) == set(expected)
        for name, values in expected.items():
            np.testing.assert_array_equal(z[name], values)
    doc = json.loads(side.read_text())
    assert DOC_KEYS <= set(doc) and doc["activations"] is None
    assert doc["quant"] == config.to_dict() and doc["seed"] == 4
    assert doc["input_size"] == list(tiny_detector.spec.input_size)  # doubles as the sidecar
    assert set(doc["tensors"]) == set(expected)
    info = doc["tensors"]["fire2/squeeze1x1/kernels"]
    assert info["quantized"] and info["per_channel"] and len(info["step"]) == 16
    assert not doc["tensors"]["conv1/kernels"]["quantized"]
    _, again = quantized_document(tiny_detector, config)
    assert json.loads(json.dumps(again)) == doc


@pytest.mark.slow
def test_write_quantized_records_the_activation_formats(tiny_detector, tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_detector, "activation_ranges", tiny_detector.activation_ranges)
    paths = []
    for i in range(2):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((96, 256, 3), 40 + 80 * i, np.uint8))
        paths.append(path)
    config = QuantConfig(bits=8, activation_bits=6)
    calibration = CalibrationSet(tuple(map(str, paths)), "two greys")
    _, side = write_quantized(tmp_path / "qa.npz", tiny_detector, config, calibration)
    acts = json.loads(side.read_text())["activations"]
    assert acts["bits"] == 6 and list(acts["layers"]) == layer_names("squeezedet")
    calibration = acts["calibration"]
    assert calibration["count"] == 2 and calibration["source"] == "two greys"
    assert tiny_detector.activation_ranges is not None  # restored after the test
    assert Path(side).with_suffix(".npz").exists()
