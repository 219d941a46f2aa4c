"""Clipping vs rounding per layer and per channel: known answers and the general grid case."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelens.engine.diagnostics import ErrorStats
from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import LinearGrid, QuantConfig, quantize_weights
from squeezelens.engine.quant import clipping as clip_mod
from squeezelens.engine.quant.apply import TensorPlan, plan_quantization
from squeezelens.engine.quant.clipping import channel_grid, clipping_report, format_clipping_table
from squeezelens.engine.quant.rounding import round_nearest
from tests.test_cli import assert_one_line_error, files, run  # noqa: F401 (files: fixture)


def small_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv1/kernels": rng.normal(0, 0.1, (3, 3, 3, 4)).astype(np.float32),
        "conv1/biases": np.zeros(4, np.float32),
        "fire2/squeeze1x1/kernels": rng.normal(0, 0.1, (1, 1, 4, 3)).astype(np.float32),
        "fire2/squeeze1x1/biases": np.array([0.5, -0.2, 0.05], np.float32),
        "conv12/kernels": rng.normal(0, 0.05, (3, 3, 3, 2)).astype(np.float32),
        "conv12/biases": np.array([0.1, -0.1], np.float32),
    }


def layer_values(w, layer):
    return np.concatenate([w[f"{layer}/kernels"].ravel(), w[f"{layer}/biases"].ravel()])


def test_minmax_ranges_never_clip_and_rounding_is_all_the_error():
    w = small_weights()
    config = QuantConfig(bits=3)
    q = quantize_weights(w, config)
    rows = {r.layer: r for r in clipping_report(w, config, q, order=["conv12", "fire2/squeeze1x1"])}
    assert list(rows) == ["conv12", "fire2/squeeze1x1"]  # conv1 stays float by default
    for layer, row in rows.items():
        f, g = layer_values(w, layer), layer_values(q, layer)
        ref = ErrorStats.of(f, g)
        assert (
            row.total.clipped == 0 and row.total.clip_noise == 0 and row.total.clip_db == math.inf
        )
        assert row.total.sqnr_db == pytest.approx(ref.sqnr_db)
        assert row.total.round_db == pytest.approx(ref.sqnr_db)
        assert float(row.total.mse) == pytest.approx(ref.mse)
        assert row.total.count == f.size and row.bits == 3


def test_pow2_clips_an_exact_power_of_two_maximum():
    w = small_weights()
    w["fire2/squeeze1x1/biases"] = np.array([0.5, -0.2, 0.05], np.float32)  # max |w| = 0.5
    w["fire2/squeeze1x1/kernels"] = np.clip(w["fire2/squeeze1x1/kernels"], -0.45, 0.45)
    config = QuantConfig(bits=4, grid="pow2", scale="layer")
    row = {r.layer: r for r in clipping_report(w, config)}["fire2/squeeze1x1"]
    # il = ceil(log2 0.5) + 1 = 0, fl = 4: step 1/16, top level 7/16: 0.5 is clipped by 1/16
    assert row.total.clipped == 1
    assert row.total.clip_noise == pytest.approx((1 / 16) ** 2)
    assert row.channel(0).clipped == 1 and row.channel(1).clipped == 0
    assert row.total.clip_db == pytest.approx(10 * math.log10(row.total.signal / (1 / 16) ** 2))
    values = layer_values(w, "fire2/squeeze1x1")
    assert float(row.total.clipped_fraction) == pytest.approx(1 / values.size)


def test_any_grid_the_plan_gives_narrow_linear_ranges_clip(monkeypatch):
    """A range narrower than the values (what a range search picks) clips its tails."""
    w = small_weights()
    config = QuantConfig(bits=4, scale="layer")
    plans = plan_quantization(w, config)
    narrow = {
        name: TensorPlan(
            p.name, p.layer, p.values, p.unit, p.bits, LinearGrid(-0.05, 0.05, 4)
        )  # fmt: skip
        for name, p in plans.items()
    }
    monkeypatch.setattr(clip_mod, "plan_quantization", lambda weights, cfg: narrow)
    q = dict(w)
    q.update({name: round_nearest(p.values, p.grid) for name, p in narrow.items()})
    rows = {r.layer: r for r in clipping_report(w, config, q)}
    for layer, row in rows.items():
        v, g = layer_values(w, layer).astype(np.float64), layer_values(q, layer).astype(np.float64)
        out = np.abs(v) > 0.05
        assert row.total.clipped == out.sum() > 0
        assert row.total.clip_noise == pytest.approx(((v - g)[out] ** 2).sum())
        assert row.total.round_noise == pytest.approx(((v - g)[~out] ** 2).sum())
        assert np.asarray(row.channels.clipped).sum() == row.total.clipped
        assert np.asarray(row.channels.signal).sum() == pytest.approx(row.total.signal)
        assert (
            row.total.clip_db < row.total.round_db
        )  # a 0.05 range on +-0.1 weights: clipping rules


def test_channel_grid_gives_the_channels_weights_and_levels():
    w = small_weights()
    config = QuantConfig(bits=3, scale="channel")
    g = channel_grid(w, config, "conv12", 1)
    k = w["conv12/kernels"]
    np.testing.assert_array_equal(g.values, k[..., 1].ravel())
    assert g.levels.size == 8
    lo = min(0.0, float(min(k[..., 1].min(), w["conv12/biases"][1])))
    hi = max(0.0, float(max(k[..., 1].max(), w["conv12/biases"][1])))
    assert (g.levels[0], g.levels[-1]) == (pytest.approx(lo), pytest.approx(hi))
    assert set(np.round(g.quantized, 6)) <= set(np.round(g.levels.astype(np.float32), 6))
    shared = channel_grid(w, QuantConfig(bits=3), "conv12", 0)  # one global grid
    assert shared.levels.size == 8
    with pytest.raises(InputError, match="not quantized"):
        channel_grid(w, config, "conv1", 0)
    with pytest.raises(InputError, match="2 output channels"):
        channel_grid(w, config, "conv12", 2)


def test_table_lists_each_layer_with_its_parts():
    w = small_weights()
    text = format_clipping_table(clipping_report(w, QuantConfig(bits=4, grid="pow2")))
    assert "conv12" in text and "fire2/squeeze1x1" in text and "clip dB" in text
    assert "inf" in text  # a layer without clipping


@settings(max_examples=30, deadline=None)
@given(
    bits=st.integers(2, 8),
    grid=st.sampled_from(["linear", "pow2"]),
    scale=st.sampled_from(["global", "layer", "channel"]),
    rng_range=st.sampled_from(["minmax", "symmetric"]),
    seed=st.integers(0, 1000),
)
def test_clipping_and_rounding_add_up_to_the_error(bits, grid, scale, rng_range, seed):
    rng = np.random.default_rng(seed)
    w = {
        k: (v + rng.normal(0, 0.01, v.shape)).astype(np.float32) for k, v in small_weights().items()
    }
    config = QuantConfig(bits=bits, grid=grid, scale=scale, range=rng_range)
    q = quantize_weights(w, config)
    for row in clipping_report(w, config, q):
        v = layer_values(w, row.layer).astype(np.float64)
        g = layer_values(q, row.layer).astype(np.float64)
        total = ((v - g) ** 2).sum()
        assert row.total.clip_noise + row.total.round_noise == pytest.approx(
            total, rel=1e-9, abs=1e-15
        )
        if grid == "linear":
            assert row.total.clipped == 0  # min/max and symmetric ranges span the values


def test_quantize_report_command(capsys, files, tmp_path):  # noqa: F811
    rc, out, _ = run(capsys, "quantize", "--checkpoint", files["ckpt"], "--bits", "4",
                     "--grid", "pow2", "--report")  # fmt: skip
    assert rc == 0 and "clip dB" in out and "conv12" in out
    npz = tmp_path / "q.npz"
    rc, out, _ = run(capsys, "quantize", "--checkpoint", files["ckpt"], "--bits", "4",
                     "--scale", "channel", "--report", "--out", npz)  # fmt: skip
    assert rc == 0 and npz.exists()
    lines = (tmp_path / "q.clipping.csv").read_text().splitlines()
    assert lines[0].startswith("layer,channel,bits,count,clipped")
    conv12 = [line for line in lines if line.startswith("conv12,")]
    assert conv12[0].startswith("conv12,all,4,") and len(conv12) == 1 + 72  # K*(C+5) channels
    assert_one_line_error(capsys, ["quantize", "--checkpoint", files["ckpt"], "--bits", "4"],
                          "--report")  # fmt: skip
