"""The remedies through the Detector: calibrated activation ranges, equalized references."""

from __future__ import annotations

import numpy as np
import pytest

from squeezelens.engine.model.spec import layer_names
from squeezelens.engine.quant import QuantConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def calibrated(tiny_detector):
    """The tiny detector calibrated on three noise scenes (its previous state restored after)."""
    before = (tiny_detector.activation_ranges, tiny_detector.calibration)
    rng = np.random.default_rng(9)
    images = [rng.integers(0, 255, (96, 256, 3), dtype=np.uint8) for _ in range(3)]
    tiny_detector.calibrate_activations(images, record={"count": 3, "source": "noise"})
    yield tiny_detector
    tiny_detector.activation_ranges, tiny_detector.calibration = before
    tiny_detector._act_bits_loaded = None


def test_activation_ranges_by_method(calibrated) -> None:
    tops = calibrated.activation_ranges
    assert calibrated.calibration.record == {"count": 3, "source": "noise"}
    for method in ("percentile:99", "mse", "entropy"):
        limits = calibrated.activation_limits(6, method)
        assert set(limits) == set(layer_names("squeezedet"))
        assert all(0 < limits[n] <= tops[n] * (1 + 1e-9) for n in limits if tops[n] > 0)
        assert any(limits[n] < 0.9 * tops[n] for n in limits), method  # something is clipped
    assert calibrated.activation_limits(6, "entropy") is calibrated.activation_limits(6, "entropy")
    floats = {n: "float" for n in layer_names("squeezedet")}
    x = np.stack([calibrated.calibration.inputs[0]])
    minmax = calibrated.forward(x, QuantConfig(activation_bits=6, overrides=floats))
    clipped = calibrated.forward(
        x, QuantConfig(activation_bits=6, activation_range="percentile:99", overrides=floats)
    )
    assert not np.array_equal(minmax, clipped)


def test_equalized_activation_ranges_follow_the_equalized_model(calibrated) -> None:
    from squeezelens.engine.diagnostics import compare_activations

    plain = calibrated.activation_limits(8, "minmax")
    equalized = calibrated.activation_limits(8, "minmax", equalized=True)
    assert equalized["conv12"] == pytest.approx(plain["conv12"], rel=1e-4)  # same output
    assert any(abs(equalized[n] / plain[n] - 1) > 0.05 for n in plain if plain[n] > 0)
    image = np.random.default_rng(3).integers(0, 255, (96, 256, 3), dtype=np.uint8)
    rows = compare_activations(calibrated, image, QuantConfig(bits=16, equalize=True))
    assert all(row.sqnr_db > 40 for row in rows)  # against the equalized float model
