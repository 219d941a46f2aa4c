"""quantize_weights / quantization_report beyond the fork: scales, ranges, pow2, overrides."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import (
    LinearGrid,
    Pow2Grid,
    QuantConfig,
    SymmetricGrid,
    plan_quantization,
    quantization_report,
    quantize_weights,
    round_nearest,
    round_stochastic,
    uniform_draws,
)

from .test_quant_fork import SMALL_SHAPES, random_weights

LAYOUT = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "reference"
    / "squeezedet_checkpoint_layout.txt"
)


def test_float_tensors_and_other_entries_are_returned_unchanged() -> None:
    weights = random_weights(1)
    weights["global_step"] = np.array(5)
    weights["fire2/squeeze1x1/kernels/Momentum"] = np.ones((1, 1, 6, 3), np.float32)
    out = quantize_weights(
        weights, QuantConfig(bits=4, quantize_biases=False, overrides={"conv12": "float"})
    )
    assert list(out) == list(weights)
    for name in (
        "global_step",
        "fire2/squeeze1x1/kernels/Momentum",
        "conv1/kernels",
        "conv12/kernels",
        "fire2/expand1x1/biases",
    ):
        assert out[name] is weights[name]
    assert not np.array_equal(out["fire2/expand1x1/kernels"], weights["fire2/expand1x1/kernels"])


def test_float_override_takes_no_part_in_the_ranges() -> None:
    weights = random_weights(2)
    weights["conv12/kernels"][0, 0, 0, 0] = 50.0
    with_conv12 = quantization_report(weights, QuantConfig(bits=4))
    without = quantization_report(weights, QuantConfig(bits=4, overrides={"conv12": "float"}))
    assert with_conv12["fire2/squeeze1x1/kernels"].max == 50.0
    fire = [w for name, w in weights.items() if name.startswith("fire")]
    assert without["fire2/squeeze1x1/kernels"].max == max(0.0, max(float(w.max()) for w in fire))
    assert not without["conv12/kernels"].quantized


def test_bits_override_shares_the_range_with_its_own_levels() -> None:
    weights = random_weights(3)
    config = QuantConfig(bits=6, overrides={"fire2/expand3x3": 2})
    report = quantization_report(weights, config)
    override, other = report["fire2/expand3x3/kernels"], report["fire2/squeeze1x1/kernels"]
    assert (override.n_levels, other.n_levels) == (4, 64)
    assert (override.min, override.max) == (other.min, other.max)
    out = quantize_weights(weights, config)
    assert np.unique(out["fire2/expand3x3/kernels"]).size <= 4
    assert np.array_equal(
        out["fire2/expand3x3/kernels"],
        round_nearest(
            weights["fire2/expand3x3/kernels"], LinearGrid(override.min, override.max, 2)
        ),
    )


def test_unknown_override_layer_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"unknown layer\(s\) in layer bits: fire99/squeeze1x1"):
        quantize_weights(random_weights(0), QuantConfig(overrides={"fire99/squeeze1x1": 4}))


def test_groups_scale_ranges() -> None:
    weights = random_weights(4)
    report = quantization_report(weights, QuantConfig(scale="groups", quantize_first_layer=True))
    conv = [
        weights[n] for n in ("conv1/kernels", "conv1/biases", "conv12/kernels", "conv12/biases")
    ]
    assert report["conv1/kernels"].range_unit == report["conv12/biases"].range_unit == "conv"
    assert report["conv12/kernels"].min == min(float(w.min()) for w in conv)
    assert report["fire2/expand1x1/biases"].range_unit == "fire"


def test_layer_scale_uses_kernel_and_bias_together() -> None:
    weights = random_weights(5)
    config = QuantConfig(bits=5, scale="layer", reserve_zero=True)
    out, report = quantize_weights(weights, config), quantization_report(weights, config)
    for layer in ("fire2/squeeze1x1", "fire2/expand3x3", "conv12"):
        kernel, bias = weights[f"{layer}/kernels"], weights[f"{layer}/biases"]
        lo, hi = min(0.0, kernel.min(), bias.min()), max(0.0, kernel.max(), bias.max())
        assert (report[f"{layer}/kernels"].min, report[f"{layer}/kernels"].max) == (
            float(lo),
            float(hi),
        )
        grid = LinearGrid(float(lo), float(hi), 5, reserve_zero=True)
        assert np.array_equal(out[f"{layer}/kernels"], round_nearest(kernel, grid))
        assert np.array_equal(out[f"{layer}/biases"], round_nearest(bias, grid))


def test_channel_scale_uses_output_channels_with_their_bias() -> None:
    weights = random_weights(6)
    weights["conv12/biases"][1] = 9.0
    config = QuantConfig(bits=4, scale="channel", rounding="stochastic", seed=2)
    out, report = quantize_weights(weights, config), quantization_report(weights, config)
    info = report["conv12/kernels"]
    kernel, bias = weights["conv12/kernels"], weights["conv12/biases"]
    assert info.per_channel and info.max.shape == (5,) and info.max[1] == 9.0
    np.testing.assert_array_equal(
        info.min, np.minimum(np.minimum(kernel.reshape(-1, 5).min(0), bias), 0.0)
    )
    for c in range(5):
        levels = LinearGrid(float(info.min[c]), float(info.max[c]), 4).levels.astype(np.float32)
        assert np.isin(out["conv12/kernels"][..., c], levels).all() and np.isin(
            out["conv12/biases"][c], levels
        )
    assert isinstance(json.dumps(info.to_dict()), str)


def test_symmetric_range() -> None:
    weights = random_weights(7)
    config = QuantConfig(bits=4, range="symmetric", scale="layer")
    info = quantization_report(weights, config)["fire2/expand1x1/kernels"]
    both = np.concatenate(
        [weights["fire2/expand1x1/kernels"].ravel(), weights["fire2/expand1x1/biases"]]
    )
    assert (
        info.max == -info.min == float(np.abs(both).max())
        and info.n_levels == 15
        and info.zero_index == 7
    )
    out = quantize_weights(weights, config)["fire2/expand1x1/kernels"]
    assert np.isin(out, SymmetricGrid(info.max, 4).levels.astype(np.float32)).all()


def test_pow2_grid_is_dynamic_fixed_point() -> None:
    weights = random_weights(8)
    config = QuantConfig(bits=6, grid="pow2", scale="layer")
    info = quantization_report(weights, config)["conv12/kernels"]
    max_abs = max(float(np.abs(weights[f"conv12/{k}"]).max()) for k in ("kernels", "biases"))
    assert info.frac_len == 6 - (int(np.ceil(np.log2(max_abs))) + 1)
    assert info.step == 2.0**-info.frac_len and info.zero_index == 32
    out = quantize_weights(weights, config)["conv12/kernels"].astype(np.float64)
    k = out / info.step
    assert np.array_equal(k, np.round(k)) and k.min() >= -32 and k.max() <= 31
    assert np.array_equal(out, round_nearest(weights["conv12/kernels"], Pow2Grid(info.frac_len, 6)))


def test_non_float_or_non_finite_tensors_are_input_errors() -> None:
    weights = random_weights(9)
    weights["fire2/expand1x1/kernels"][0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="fire2/expand1x1/kernels holds non-finite values"):
        quantize_weights(weights, QuantConfig())
    weights = random_weights(9)
    weights["conv12/biases"] = np.arange(5)
    with pytest.raises(InputError, match="conv12/biases is not floating point"):
        quantize_weights(weights, QuantConfig())
    weights = random_weights(9)
    weights["conv12/biases"] = np.zeros(4, np.float32)
    with pytest.raises(InputError, match="conv12: kernel and bias disagree"):
        quantize_weights(weights, QuantConfig(scale="channel"))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    bits=st.integers(1, 10),
    scale=st.sampled_from(["global", "groups", "layer", "channel"]),
    kind=st.sampled_from(["minmax", "symmetric", "pow2"]),
    reserve_zero=st.booleans(),
)
def test_quantizing_twice_changes_nothing(
    seed: int, bits: int, scale: str, kind: str, reserve_zero: bool
) -> None:
    """Nearest rounding is idempotent: the ranges of quantized weights give the same grids.

    Documented exceptions, both from the fork's and Ristretto's definitions:
    a reserved zero that replaces an *end* level (a range that barely
    crosses 0) narrows the next range; a pow2 maximum that rounds onto an
    exact positive power of two gets a finer grid next time.
    """
    weights = random_weights(seed)
    grid = "pow2" if kind == "pow2" else "linear"
    range_ = "symmetric" if kind == "symmetric" else "minmax"
    config = QuantConfig(bits=bits, scale=scale, range=range_, grid=grid, reserve_zero=reserve_zero)
    once = quantize_weights(weights, config)
    for info in quantization_report(weights, config).values():
        if info.grid == "linear" and reserve_zero and info.quantized:
            assume(not np.isin(np.atleast_1d(info.zero_index), [0, info.n_levels - 1]).any())
    if grid == "pow2":
        tops = [np.abs(w).max() for w in once.values()]
        if scale == "channel":  # each channel's own maximum (kernel and bias together)
            for layer in {name.rpartition("/")[0] for name in once}:
                kernel, bias = once[f"{layer}/kernels"], once[f"{layer}/biases"]
                per_channel = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
                tops.extend(np.maximum(per_channel, np.abs(bias)).tolist())
        assume(not any(float(t) > 0 and np.frexp(float(t))[0] == 0.5 for t in tops))
    twice = quantize_weights(once, config)
    assert all(np.array_equal(once[name], twice[name]) for name in weights)


def test_stochastic_is_reproducible_per_seed() -> None:
    weights = random_weights(10)
    config = QuantConfig(bits=3, rounding="stochastic", seed=4)
    first, again = quantize_weights(weights, config), quantize_weights(weights, config)
    other = quantize_weights(weights, config.replace(seed=5))
    assert all(np.array_equal(first[name], again[name]) for name in weights)
    assert not all(np.array_equal(first[name], other[name]) for name in weights)
    alone = quantize_weights(
        {"conv12/kernels": weights["conv12/kernels"]}, config.replace(scale="layer")
    )
    with_all = quantize_weights(weights, config.replace(scale="layer"))
    assert np.array_equal(
        alone["conv12/kernels"], with_all["conv12/kernels"]
    )  # draws depend on name only


def test_report_covers_every_parameter_and_is_json_ready() -> None:
    weights = random_weights(11)
    report = quantization_report(weights, QuantConfig(bits=4, reserve_zero=True))
    assert set(report) == set(SMALL_SHAPES)
    conv1 = report["conv1/kernels"]
    assert (
        not conv1.quantized
        and conv1.bits is None
        and conv1.tensor_min == float(weights["conv1/kernels"].min())
    )
    info = report["fire2/squeeze1x1/kernels"]
    assert (
        info.quantized
        and info.n_levels == 16
        and info.grid == "linear"
        and info.range_unit == "global"
    )
    assert info.step == (info.max - info.min) / 15 and isinstance(info.zero_index, int)
    json.dumps({name: item.to_dict() for name, item in report.items()})


@pytest.mark.skipif(not LAYOUT.exists(), reason="shared reference folder not present")
def test_official_shapes() -> None:
    shapes = {
        m.group(1): tuple(int(x) for x in m.group(2).split(","))
        for m in re.finditer(
            r"^\s+(\S+/(?:kernels|biases))\s+\[([^\]]*)\]", LAYOUT.read_text(), re.M
        )
    }
    rng = np.random.default_rng(0)
    weights = {
        name: (rng.standard_normal(shape) * 0.05).astype(np.float32)
        for name, shape in shapes.items()
    }
    assert sum(w.size for w in weights.values()) == 2_082_120
    for rounding in ("nearest", "stochastic"):
        out = quantize_weights(weights, QuantConfig(bits=5, rounding=rounding, reserve_zero=True))
        quantized = np.concatenate([out[n].ravel() for n in weights if not n.startswith("conv1/")])
        assert np.unique(quantized).size <= 32 and 0.0 in quantized
        assert out["conv1/kernels"] is weights["conv1/kernels"]


@pytest.mark.parametrize("scale", ["global", "channel"])
def test_chunked_draws_equal_the_documented_stream(scale: str) -> None:
    """Tensors spanning many chunks (odd channel count) get exactly ``uniform_draws``'s u."""
    rng = np.random.default_rng(12)
    weights = {
        "fire2/expand3x3/kernels": (rng.standard_normal((3, 3, 96, 37)) * 0.1).astype(np.float32),
        "fire2/expand3x3/biases": (rng.standard_normal(37) * 0.1).astype(np.float32),
        "conv12/kernels": (rng.standard_normal((3, 3, 768, 11)) * 0.1).astype(np.float32),
    }
    config = QuantConfig(bits=5, rounding="stochastic", scale=scale, seed=9, reserve_zero=True)
    out = quantize_weights(weights, config)
    for name, plan in plan_quantization(weights, config).items():
        u = uniform_draws(9, name, plan.values.shape)
        assert np.array_equal(out[name], round_stochastic(plan.values, plan.grid, u)), name


def _bigger_weights() -> dict[str, np.ndarray]:
    """Tensors that span many runs and chunks (odd channel counts, two layers)."""
    rng = np.random.default_rng(21)
    return {
        "fire2/expand3x3/kernels": (rng.standard_normal((3, 3, 64, 37)) * 0.1).astype(np.float32),
        "fire2/expand3x3/biases": (rng.standard_normal(37) * 0.1).astype(np.float32),
        "conv12/kernels": (rng.standard_normal((3, 3, 96, 29)) * 0.1).astype(np.float32),
        "conv12/biases": (rng.standard_normal(29) * 0.1).astype(np.float32),
    }


@pytest.mark.parametrize("scale", ["global", "channel"])
def test_work_shared_out_in_runs_gives_the_same_bits(scale: str, monkeypatch) -> None:
    """Tensors cut into many runs (each with its own draws, jumped ahead in the
    tensor's stream) and run on the pool give exactly the whole-tensor result."""
    from squeezelens.engine.quant import apply

    weights = _bigger_weights()
    config = QuantConfig(bits=6, rounding="stochastic", scale=scale, seed=5, reserve_zero=True)
    whole = {
        name: round_stochastic(plan.values, plan.grid, uniform_draws(5, name, plan.values.shape))
        for name, plan in plan_quantization(weights, config).items()
    }
    from squeezelens.engine.quant import arith

    monkeypatch.setattr(arith, "KERNEL_CHUNK", 2048)  # small chunks, several per run
    monkeypatch.setattr(arith, "NUMPY_CHUNK", 1000)
    monkeypatch.setattr(apply, "_PIECE", 1)
    monkeypatch.setattr(apply, "_BUNDLE", 3000)
    monkeypatch.setattr(apply, "_WORKERS", 2)
    runs = quantize_weights(weights, config)
    for name, expected in whole.items():
        assert np.array_equal(runs[name], expected), name
        assert runs[name].ctypes.data % 64 == 0  # aligned for a zero-copy swap into TF


def test_kernels_or_numpy_give_the_same_bits(monkeypatch) -> None:
    """The compiled kernels and the numpy fallback (and, per channel, the level table or
    the formula) only change the speed."""
    from squeezelens.engine.quant import arith, kernels

    weights = _bigger_weights()
    for config in (
        QuantConfig(bits=16, scale="layer", reserve_zero=True),
        QuantConfig(bits=12, rounding="stochastic", scale="layer", seed=2),
        QuantConfig(bits=7, rounding="stochastic", scale="global", seed=4),
        QuantConfig(bits=3, rounding="stochastic", reserve_zero=True, seed=5),
        QuantConfig(bits=5, rounding="stochastic", scale="channel", reserve_zero=True, seed=6),
        QuantConfig(bits=14, scale="channel", grid="pow2"),
    ):
        results = []
        for env, table_max in (
            ("0", arith.LEVEL_TABLE_MAX),
            ("1", arith.LEVEL_TABLE_MAX),
            ("1", 0),
        ):
            monkeypatch.setenv(kernels.DISABLE_ENV, env)
            monkeypatch.setattr(arith, "LEVEL_TABLE_MAX", table_max)
            results.append(quantize_weights(weights, config))
        for name in weights:
            for other in results[1:]:
                assert np.array_equal(results[0][name], other[name]), (config, name)


def test_errors_in_pool_tasks_reach_the_caller_in_tensor_order() -> None:
    weights = _bigger_weights()
    weights["fire2/expand3x3/biases"][3] = np.nan
    weights["conv12/kernels"][0, 0, 0, 0] = np.inf
    with pytest.raises(InputError, match="fire2/expand3x3/biases"):
        quantize_weights(weights, QuantConfig(bits=4))
