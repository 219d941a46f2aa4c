"""Range search (engine.quant.remedies.ranges): weights (mse, percentile) and activations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelens.engine.quant import QuantConfig, plan_quantization, quantize_weights
from squeezelens.engine.quant.remedies import ranges

LAYERS = ("fire2/squeeze1x1", "fire2/expand3x3", "conv12")


def model(seed: int, outliers: bool = True) -> dict[str, np.ndarray]:
    """Three small layers of heavy-tailed weights (and biases)."""
    rng = np.random.default_rng(seed)
    shapes = {
        "fire2/squeeze1x1": (1, 1, 6, 4),
        "fire2/expand3x3": (3, 3, 4, 5),
        "conv12": (3, 3, 5, 3),
    }
    out = {}
    for layer, shape in shapes.items():
        w = rng.standard_t(3, size=shape) * 0.05
        if outliers:
            w.flat[rng.integers(w.size)] *= 20
        out[f"{layer}/kernels"] = w.astype(np.float32)
        out[f"{layer}/biases"] = (rng.standard_normal(shape[-1]) * 0.02).astype(np.float32)
    return out


def sse(weights: dict, quantized: dict, axis=None) -> np.ndarray:
    """Squared error per channel (axis -1 kept) or in all."""
    total = 0.0
    for name, w in weights.items():
        err = (w.astype(np.float64) - quantized[name]) ** 2
        total = total + (err.reshape(-1, w.shape[-1]).sum(axis=0) if axis == -1 else err.sum())
    return total


configs = st.builds(
    QuantConfig,
    bits=st.integers(1, 8),
    scale=st.sampled_from(("global", "groups", "layer", "channel")),
    grid=st.sampled_from(("linear", "pow2")),
    reserve_zero=st.booleans(),
    quantize_first_layer=st.just(True),
)


@settings(max_examples=80, deadline=None)
@given(configs, st.integers(0, 2**16), st.booleans())
def test_range_search_never_increases_the_error_over_minmax(config, seed, outliers) -> None:
    weights = model(seed, outliers)
    plain = quantize_weights(weights, config)
    searched = quantize_weights(weights, config.replace(range="mse"))
    if config.scale == "channel":  # every unit (a layer's channel) on its own
        for layer in LAYERS:
            part = {k: v for k, v in weights.items() if k.startswith(layer + "/")}
            before, after = sse(part, plain, axis=-1), sse(part, searched, axis=-1)
            assert np.all(after <= before * (1 + 1e-9) + 1e-18)
    else:
        assert sse(weights, searched) <= sse(weights, plain) * (1 + 1e-9) + 1e-18


def test_range_search_clips_an_outlier_and_lowers_the_error() -> None:
    rng = np.random.default_rng(3)
    kernel = rng.uniform(-1, 1, (1, 1, 100, 100)).astype(np.float32)
    kernel[0, 0, 0, 0] = 10.0  # one outlier among 10,000 weights
    weights = {
        "fire2/squeeze1x1/kernels": kernel,
        "fire2/squeeze1x1/biases": np.zeros(100, np.float32),
    }
    config = QuantConfig(bits=4, scale="layer")
    grid = plan_quantization(weights, config.replace(range="mse"))["fire2/squeeze1x1/kernels"].grid
    assert 0.99 < float(grid.hi) < 2 and float(grid.lo) < -0.99  # clipped near the bulk, one side
    plain = sse(weights, quantize_weights(weights, config))
    assert sse(weights, quantize_weights(weights, config.replace(range="mse"))) < 0.3 * plain


def test_percentile_range_is_the_units_percentiles() -> None:
    weights = model(4)
    config = QuantConfig(bits=6, scale="layer", range="percentile:90", quantize_first_layer=True)
    grid = plan_quantization(weights, config)["conv12/kernels"].grid
    unit = np.concatenate([weights["conv12/kernels"].ravel(), weights["conv12/biases"]])
    lo, hi = np.percentile(unit, [10, 90])
    assert float(grid.lo) == pytest.approx(min(lo, 0.0))
    assert float(grid.hi) == pytest.approx(max(hi, 0.0))
    pow2 = plan_quantization(weights, config.replace(grid="pow2"))["conv12/kernels"].grid
    clip = np.percentile(np.abs(unit), 90)
    assert 2.0 ** (pow2.bits - 1) * pow2.step >= clip > 2.0 ** (pow2.bits - 2) * pow2.step


@pytest.mark.parametrize("zero", [False, True])
def test_compiled_and_numpy_errors_agree(monkeypatch, zero) -> None:
    rng = np.random.default_rng(0)
    unit = ranges.Unit([rng.standard_normal((40, 6)).astype(np.float32)], per_channel=True)
    origin = rng.uniform(-3, -1, (6, 5))
    step = rng.uniform(0.1, 0.5, (6, 5))
    step[0, 0] = 0.0
    zeros = rng.integers(-1, 15, (6, 5)) if zero else None
    compiled = unit.sse(origin, step, 16, zeros)
    if not zero:  # the float32 scan agrees to well within its margin
        np.testing.assert_allclose(unit.sse(origin, step, 16, None, fast=True), compiled,
                                   rtol=0.1 * ranges.MARGIN)  # fmt: skip
    monkeypatch.setenv("SQUEEZELENS_NO_JIT", "1")
    np.testing.assert_allclose(unit.sse(origin, step, 16, zeros), compiled, rtol=1e-12)


def test_activation_clips() -> None:
    hist = np.zeros(2048, np.int64)
    hist[:200] = 1000  # the bulk near 0
    hist[2047] = 1  # one outlier at the top
    top = 8.0
    assert ranges.activation_clip("minmax", 8, hist, top) == top
    p = ranges.activation_clip("percentile:99", 8, hist, top)
    assert p == pytest.approx(top * 199 / 2048, rel=0.02)
    assert ranges.activation_clip("entropy", 8, hist, top) < top / 4
    assert ranges.activation_clip("mse", 4, hist, top) < top
    assert ranges.activation_clip("entropy", 8, np.zeros(2048, np.int64), top) == top
