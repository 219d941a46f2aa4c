"""Range hijacks (engine.quant.hijack): the rule, its boundaries, remedies, the real checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.quant.hijack import (
    HIJACK_FACTOR,
    find_range_hijacks,
    hijack_remedies,
    range_hijack_warnings,
    tensor_ranges,
)
from tests.conftest import REAL_CKPT, need_shared


def weights(bias_peak: float, kernel_peak: float = 0.5) -> dict[str, np.ndarray]:
    """Two fire layers (conv1 stays float by default): fire3's bias peaks at ``bias_peak``."""
    rng = np.random.default_rng(0)
    w = {"conv1/kernels": rng.uniform(-5, 5, (3, 3, 3, 4)).astype(np.float32),
         "conv1/biases": np.zeros(4, np.float32)}  # fmt: skip
    for layer in ("fire2/squeeze1x1", "fire3/squeeze1x1"):
        k = rng.uniform(-kernel_peak, kernel_peak, (1, 1, 16, 8)).astype(np.float32)
        k[0, 0, 0, 0] = kernel_peak  # both kernels reach exactly +-kernel_peak
        k[0, 0, 0, 1] = -kernel_peak
        w[f"{layer}/kernels"] = k
        w[f"{layer}/biases"] = rng.uniform(-0.1, 0.1, 8).astype(np.float32)
    w["fire3/squeeze1x1/biases"][3] = bias_peak
    return w


def test_a_bias_stretching_the_global_range_is_named_with_its_step():
    ranges = tensor_ranges(weights(bias_peak=4.5))
    (h,) = find_range_hijacks(ranges, QuantConfig(bits=8))
    assert (h.tensor, h.unit, h.layer, h.bits) == ("fire3/squeeze1x1/biases", "global",
                                                    "fire3/squeeze1x1", 8)  # fmt: skip
    assert h.hi == pytest.approx(4.5)
    assert h.step == pytest.approx((4.5 + 0.5) / 255)  # the fork's [min, max] over 255 steps
    assert h.step_without == pytest.approx(1.0 / 255)
    assert h.ratio == pytest.approx(5.0)
    assert "fire3/squeeze1x1/biases reaches +4.50" in h.describe()


def test_the_factor_is_the_boundary():
    # the rest spans [-0.5, 0.5]; a bias at p gives the unit [-0.5, p]: ratio (p + 0.5) / 1
    below = tensor_ranges(weights(bias_peak=HIJACK_FACTOR - 0.5 - 0.01))
    above = tensor_ranges(weights(bias_peak=HIJACK_FACTOR - 0.5 + 0.01))
    assert find_range_hijacks(below, QuantConfig()) == ()
    assert len(find_range_hijacks(above, QuantConfig())) == 1
    assert find_range_hijacks(above, QuantConfig(), factor=3.0) == ()


def test_float_model_and_float_biases_have_none():
    ranges = tensor_ranges(weights(bias_peak=4.5))
    assert find_range_hijacks(ranges, None) == ()
    assert find_range_hijacks(ranges, QuantConfig(quantize_biases=False)) == ()
    assert find_range_hijacks(ranges, QuantConfig(overrides={"fire3/squeeze1x1": "float"})) == ()


def test_the_bulk_of_a_unit_is_never_the_hijacker():
    """Per layer, a kernel far wider than its bias is the range, not a hijack."""
    w = weights(bias_peak=0.05, kernel_peak=3.0)
    assert find_range_hijacks(tensor_ranges(w), QuantConfig(scale="layer")) == ()


def test_per_layer_and_per_channel_units():
    ranges = tensor_ranges(weights(bias_peak=4.5))
    (layer,) = find_range_hijacks(ranges, QuantConfig(scale="layer"))
    assert (layer.unit, layer.next_tensor) == ("fire3/squeeze1x1", "fire3/squeeze1x1/kernels")
    (chan,) = find_range_hijacks(ranges, QuantConfig(scale="channel"))
    assert (chan.tensor, chan.channel, chan.channels) == ("fire3/squeeze1x1/biases", 3, 1)
    assert chan.ratio > HIJACK_FACTOR


def test_remedies_remove_or_confine():
    ranges = tensor_ranges(weights(bias_peak=4.5))
    config = QuantConfig()
    (h,) = find_range_hijacks(ranges, config)
    removes, confines = hijack_remedies(ranges, config, h)
    assert removes == ["float biases (--quantize-biases off)"]
    assert confines == ["per-channel scale (--scale channel)", "per-layer scale (--scale layer)"]
    (text,) = range_hijack_warnings(ranges, config)
    assert "Removed by float biases" in text and "Kept inside fire3/squeeze1x1" in text


def test_the_real_checkpoint_is_hijacked_by_fire8_squeeze_biases():
    need_shared(REAL_CKPT.parent)
    from squeezelens.engine.checkpoint.loader import load_checkpoint

    ranges = tensor_ranges(load_checkpoint(REAL_CKPT).weights)
    (h,) = find_range_hijacks(ranges, QuantConfig())  # the default: 8 bits, one global range
    assert h.tensor == "fire8/squeeze1x1/biases"
    assert h.hi == pytest.approx(7.12, abs=0.01)
    assert h.step == pytest.approx(0.033, abs=0.001)
    assert find_range_hijacks(ranges, QuantConfig(quantize_biases=False)) == ()


def test_the_bundled_model_has_no_global_hijack():
    from squeezelens.engine.checkpoint.loader import load_checkpoint
    from squeezelens.engine.samples import default_checkpoint

    ranges = tensor_ranges(load_checkpoint(default_checkpoint()).weights)
    assert find_range_hijacks(ranges, QuantConfig()) == ()
