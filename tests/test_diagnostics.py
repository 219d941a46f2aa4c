"""Per-layer diagnostics (engine.diagnostics) and per-layer sensitivity (engine.sensitivity).

Weight-only checks run on random weights of the official SqueezeDet shapes
(numpy only); activation and ConvDet checks run the random-weight
``tiny_detector``.  Expected values come from first principles (a noise of
known power, the grid formula min + i * step, the official layer order), not
from the implementation's own output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from squeezelens.engine.diagnostics import (
    ErrorStats,
    WeightStats,
    compare_activations,
    convdet_error,
    grid_levels,
    layer_table,
    weight_histogram,
)
from squeezelens.engine.model.spec import ArchSpec
from squeezelens.engine.quant import (
    QuantConfig,
    plan_quantization,
    quantization_report,
    quantize_weights,
)
from squeezelens.engine.sensitivity import (
    SensitivityResult,
    apply_recommendation,
    layer_sensitivity,
    quantized_layers,
    recommend_overrides,
    sensitivity_bits,
    single_layer_config,
)
from tests.conftest import random_weights

# The official SqueezeDet layers in forward order, written out independently of the code.
FIRE_PARTS = ("squeeze1x1", "expand1x1", "expand3x3")
SQUEEZEDET_LAYERS = (
    ["conv1"] + [f"fire{i}/{part}" for i in range(2, 12) for part in FIRE_PARTS] + ["conv12"]
)


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return random_weights(ArchSpec(), seed=3)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 255, (120, 320, 3), dtype=np.uint8)


def layer_values(w: dict[str, np.ndarray], layer: str) -> np.ndarray:
    return np.concatenate([w[f"{layer}/kernels"].ravel(), w[f"{layer}/biases"].ravel()])


# --- ErrorStats -------------------------------------------------------------------------------


def test_error_stats_of_a_known_noise() -> None:
    reference = np.full(1000, 3.0)
    noise = 0.3 * np.where(np.arange(1000) % 2 == 0, 1.0, -1.0)  # power 0.09 vs signal 9
    stats = ErrorStats.of(reference, reference + noise)
    assert stats.sqnr_db == pytest.approx(20.0)
    assert stats.mse == pytest.approx(0.09)
    assert stats.max_abs == pytest.approx(0.3)


def test_error_stats_sqnr_of_gaussian_noise_one_tenth_the_amplitude() -> None:
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(200_000).astype(np.float32)
    noisy = signal + 0.1 * rng.standard_normal(signal.size).astype(np.float32)
    assert ErrorStats.of(signal, noisy).sqnr_db == pytest.approx(20.0, abs=0.1)


def test_error_stats_exact_and_degenerate_cases() -> None:
    x = np.linspace(-1, 1, 11)
    exact = ErrorStats.of(x, x.copy())
    assert (exact.mse, exact.sqnr_db, exact.max_abs) == (0.0, math.inf, 0.0)
    zero_signal = ErrorStats.of(np.zeros(4), np.ones(4))
    assert zero_signal.sqnr_db == -math.inf and zero_signal.mse == 1.0


# --- layer table ------------------------------------------------------------------------------


def test_layer_table_lists_every_layer_in_forward_order_with_zero_error_for_float(
    weights,
) -> None:
    rows = layer_table(weights, weights)
    assert [r.name for r in rows] == SQUEEZEDET_LAYERS
    for row in rows:
        values = layer_values(weights, row.name)
        assert row.params == values.size
        assert (row.w_min, row.w_max) == (pytest.approx(values.min()), pytest.approx(values.max()))
        assert row.error.mse == 0.0 and row.error.sqnr_db == math.inf
        assert row.levels == 0 and row.bits is None


def test_layer_table_of_a_quantized_model_reports_grid_and_error(weights) -> None:
    quant = QuantConfig(bits=4)
    qw = quantize_weights(weights, quant)
    rows = {r.name: r for r in layer_table(weights, qw, quantization_report(weights, quant))}
    assert rows["conv1"].error.mse == 0.0 and rows["conv1"].levels == 0  # conv1 float by default
    lo = min(v.min() for k, v in weights.items() if not k.startswith("conv1/"))
    hi = max(v.max() for k, v in weights.items() if not k.startswith("conv1/"))
    for name in SQUEEZEDET_LAYERS[1:]:
        row = rows[name]
        assert row.bits == 4 and row.levels == 16
        assert row.step == pytest.approx((max(hi, 0.0) - lo) / 15)  # the fork's one global grid
        assert 0 < row.error.mse and math.isfinite(row.error.sqnr_db)
        assert row.error.max_abs <= row.step / 2 * (1 + 1e-6)


def test_weight_stats_of_known_values() -> None:
    stats = WeightStats.of(np.array([0.0, 0.0, 1.0, -1.0, 2.0, 4.0], np.float32))
    assert (stats.min, stats.max, stats.mean) == (-1.0, 4.0, 1.0)
    assert stats.std == pytest.approx(math.sqrt((1 + 1 + 0 + 4 + 1 + 9) / 6))
    assert stats.zero_fraction == pytest.approx(2 / 6)
    assert math.isnan(WeightStats.of(np.zeros(0)).mean)


def test_layer_table_reports_float_and_quantized_weight_statistics(weights) -> None:
    quant = QuantConfig(bits=2, reserve_zero=True)
    qw = quantize_weights(weights, quant)
    rows = {r.name: r for r in layer_table(weights, qw)}
    for name in ("conv1", "fire6/expand1x1", "conv12"):
        f, q = layer_values(weights, name), layer_values(qw, name)
        row = rows[name]
        assert row.stats.mean == pytest.approx(float(np.mean(f.astype(np.float64))))
        assert row.stats.std == pytest.approx(float(np.std(f.astype(np.float64))))
        assert (row.stats.min, row.stats.max) == (row.w_min, row.w_max)
        assert row.stats.zero_fraction == 0.0  # random normal weights
        assert row.q_stats.zero_fraction == pytest.approx(np.count_nonzero(q == 0) / q.size)
    # 2 bits with a reserved zero: many weights become exactly 0 (conv1 stays float)
    assert rows["fire6/expand1x1"].q_stats.zero_fraction > 0.1
    assert rows["conv1"].q_stats == rows["conv1"].stats


# --- grid levels and histograms ---------------------------------------------------------------


@pytest.mark.parametrize(
    "quant",
    [
        QuantConfig(bits=4),
        QuantConfig(bits=3, scale="groups"),
        QuantConfig(bits=5, scale="groups", quantize_first_layer=True),
    ],
    ids=["global-4", "groups-3", "groups-5-conv1"],
)
@pytest.mark.parametrize("layer", ["fire4/expand3x3", "conv12", "conv1"])
def test_grid_levels_of_a_fork_exact_config_are_min_plus_i_steps(weights, quant, layer) -> None:
    assert quant.fork_exact
    levels = grid_levels(weights, quant, layer)
    info = quantization_report(weights, quant)[f"{layer}/kernels"]
    if not info.quantized:
        assert layer == "conv1" and levels.size == 0
        return
    expected = info.min + np.arange(info.n_levels) * info.step
    assert info.n_levels == 2**quant.bits
    np.testing.assert_allclose(levels, expected, rtol=0, atol=1e-9 * (info.max - info.min))
    assert levels[-1] == pytest.approx(info.max)
    # every quantized value of the layer lies on one of these levels
    q = layer_values(quantize_weights(weights, quant), layer).astype(np.float64)
    nearest = np.abs(q[:, None] - levels[None, :]).min(axis=1)
    assert nearest.max() <= 1e-6 * info.step


def test_grid_levels_are_empty_per_channel_and_for_float(weights) -> None:
    assert grid_levels(weights, QuantConfig(bits=4, scale="channel"), "fire5/expand1x1").size == 0
    assert grid_levels(weights, None, "fire5/expand1x1").size == 0
    assert grid_levels(weights, QuantConfig(bits=4), "conv1").size == 0  # conv1 stays float
    float_layer = QuantConfig(bits=4, overrides={"fire5/expand1x1": "float"})
    assert grid_levels(weights, float_layer, "fire5/expand1x1").size == 0


@pytest.mark.parametrize("layer", ["conv1", "fire3/squeeze1x1", "fire9/expand3x3", "conv12"])
def test_weight_histogram_counts_every_weight_once(weights, layer) -> None:
    quant = QuantConfig(bits=3)
    qw = quantize_weights(weights, quant)
    levels = grid_levels(weights, quant, layer)
    hist = weight_histogram(weights, qw, layer, levels=levels, bins=64)
    size = weights[f"{layer}/kernels"].size + weights[f"{layer}/biases"].size
    assert hist.edges.shape == (65,) and np.all(np.diff(hist.edges) > 0)
    assert int(hist.float_counts.sum()) == size
    assert int(hist.quant_counts.sum()) == size
    if layer != "conv1":
        # quantized values sit on at most 2**3 distinct levels, so at most 8 bins are filled
        assert 1 < np.count_nonzero(hist.quant_counts) <= 8
        assert 0 < hist.levels.size <= 8
        assert np.all(hist.levels >= hist.edges[0] - 0.02 * (hist.edges[-1] - hist.edges[0]))
    else:
        assert np.array_equal(hist.float_counts, hist.quant_counts) and hist.levels.size == 0


def test_weight_histogram_drops_levels_too_many_to_draw(weights) -> None:
    quant = QuantConfig(bits=12)
    levels = grid_levels(weights, quant, "fire2/expand3x3")
    hist = weight_histogram(
        weights, quantize_weights(weights, quant), "fire2/expand3x3", levels=levels
    )
    assert levels.size == 4096 and hist.levels.size == 0


# --- activations and ConvDet --------------------------------------------------------------


@pytest.mark.slow
def test_compare_activations_is_exact_for_float_and_worse_at_3_bits(tiny_detector, image) -> None:
    same = compare_activations(tiny_detector, image, None)
    assert [r.name for r in same] == SQUEEZEDET_LAYERS
    assert same[-1].shape == (
        *tiny_detector.spec.grid_size[::-1],
        tiny_detector.spec.convdet_outputs,
    )
    for row in same:
        assert row.sqnr_db == math.inf
        assert row.cosine == pytest.approx(1.0, abs=1e-6)
        assert row.max_abs_error == 0.0

    worse = {r.name: r for r in compare_activations(tiny_detector, image, QuantConfig(bits=3))}
    assert worse["conv1"].sqnr_db == math.inf  # conv1 weights stay float by default
    for name in SQUEEZEDET_LAYERS[1:]:
        assert math.isfinite(worse[name].sqnr_db) and worse[name].cosine < 1.0
    assert worse["conv12"].max_abs_error > 0


@pytest.mark.slow
def test_convdet_error_is_zero_for_float_and_grows_with_fewer_bits(tiny_detector, image) -> None:
    exact = convdet_error(tiny_detector, image, None)
    for part in (exact.class_probs, exact.confidence, exact.deltas):
        assert part.mse == 0.0 and part.sqnr_db == math.inf
    coarse = convdet_error(tiny_detector, image, QuantConfig(bits=3))
    fine = convdet_error(tiny_detector, image, QuantConfig(bits=10))
    for a, b in (
        (coarse.class_probs, fine.class_probs),
        (coarse.confidence, fine.confidence),
        (coarse.deltas, fine.deltas),
    ):
        assert a.mse > b.mse > 0
        assert a.sqnr_db < b.sqnr_db


# --- sensitivity ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["conv1", "fire2/expand1x1", "fire7/squeeze1x1", "conv12"])
def test_single_layer_config_quantizes_only_that_layer(weights, layer) -> None:
    config = single_layer_config(QuantConfig(bits=8), layer, 3)
    assert config.layer_bits(layer) == 3
    quantized = quantize_weights(weights, config)
    changed = {k for k in weights if not np.array_equal(weights[k], quantized[k])}
    assert changed == {f"{layer}/kernels", f"{layer}/biases"}
    levels = np.unique(np.concatenate([quantized[k].ravel() for k in changed]))
    assert levels.size <= 2**3


def fork_grid(weights: dict, layers: list[str], bits: int) -> tuple[float, float, np.ndarray]:
    """(lo, hi, levels) of the fork's global grid over the given layers, from its formula."""
    values = [weights[f"{layer}/{kind}"] for layer in layers for kind in ("kernels", "biases")]
    lo = min(float(v.min()) for v in values)
    hi = max(0.0, max(float(v.max()) for v in values))
    n = 2**bits
    return lo, hi, np.array([lo + i * (hi - lo) / (n - 1) for i in range(n)])


@pytest.mark.parametrize(
    ("base", "layer"),
    [
        (QuantConfig(bits=8), "fire5/expand3x3"),
        (QuantConfig(bits=6, reserve_zero=True, scale="groups"), "conv12"),
        (QuantConfig(bits=8, scale="layer", grid="pow2"), "fire9/squeeze1x1"),
        (QuantConfig(bits=8, overrides={"fire2/squeeze1x1": "float"}), "fire3/expand1x1"),
    ],
)
def test_the_tested_layer_lands_on_the_grid_of_the_full_config(weights, base, layer) -> None:
    tested = single_layer_config(base, layer, 4)
    applied = base.replace(overrides={**dict(base.overrides), layer: 4})
    got, want = quantize_weights(weights, tested), quantize_weights(weights, applied)
    for name in (f"{layer}/kernels", f"{layer}/biases"):
        np.testing.assert_array_equal(got[name], want[name])
        np.testing.assert_array_equal(
            plan_quantization(weights, tested)[name].grid.levels,
            plan_quantization(weights, applied)[name].grid.levels,
        )


def test_under_a_global_scale_the_tested_layer_shares_the_models_range(weights) -> None:
    layer = "fire5/expand3x3"
    got = quantize_weights(weights, single_layer_config(QuantConfig(bits=8), layer, 4))
    lo, hi, levels = fork_grid(weights, SQUEEZEDET_LAYERS[1:], 4)  # conv1 stays out
    own_lo, own_hi, _ = fork_grid(weights, [layer], 4)
    assert (lo, hi) != (own_lo, own_hi)
    values = np.unique(np.concatenate([got[f"{layer}/kernels"].ravel(), got[f"{layer}/biases"]]))
    assert np.isin(values.astype(np.float64), levels.astype(np.float32).astype(np.float64)).all()
    nearest = levels[np.argmin(np.abs(weights[f"{layer}/kernels"].reshape(-1, 1) - levels), axis=1)]
    np.testing.assert_array_equal(got[f"{layer}/kernels"].ravel(), nearest.astype(np.float32))


def test_single_layer_config_leaves_activations_float_and_keeps_base_overrides() -> None:
    base = QuantConfig(bits=8, activation_bits=8, overrides={"conv12": "float"})
    tested = single_layer_config(base, "fire4/expand1x1", 5)
    assert tested.activation_bits is None and tested.rounded == ("fire4/expand1x1",)
    assert dict(tested.overrides) == {"conv12": "float", "fire4/expand1x1": 5}


def test_tested_layers_and_bits_follow_the_config() -> None:
    assert quantized_layers(QuantConfig(), SQUEEZEDET_LAYERS) == tuple(SQUEEZEDET_LAYERS[1:])
    first = QuantConfig(quantize_first_layer=True, overrides={"conv12": "float"})
    assert quantized_layers(first, SQUEEZEDET_LAYERS) == tuple(SQUEEZEDET_LAYERS[:-1])
    assert sensitivity_bits(QuantConfig(bits=8)) == (5, 6, 7, 8)
    assert sensitivity_bits(QuantConfig(bits=2), span=3) == (1, 2)


def test_recommendation_against_a_base_lists_only_the_changes() -> None:
    base = QuantConfig(bits=8, overrides={"fire2/squeeze1x1": 6, "fire9/expand1x1": "float"})
    result = SensitivityResult(
        float_map=0.5,
        drops={
            ("fire2/squeeze1x1", 4): 0.1, ("fire2/squeeze1x1", 8): 0.0,  # 8 = the base bits
            ("fire3/expand3x3", 4): 0.0, ("fire3/expand3x3", 8): 0.0,  # 4 bits suffice
            ("conv12", 4): 0.2, ("conv12", 8): 0.1,  # nothing fits: float
        },
        bits=(4, 8),
        layers=("fire2/squeeze1x1", "fire3/expand3x3", "conv12"),
        base=base,
    )  # fmt: skip
    rec = recommend_overrides(result)
    assert rec == {"fire9/expand1x1": "float", "fire3/expand3x3": 4, "conv12": "float"}
    applied = apply_recommendation(base, result)
    assert applied.layer_bits("fire2/squeeze1x1") == 8 and applied.layer_bits("conv12") is None
    assert applied.layer_bits("fire3/expand3x3") == 4 and applied.bits == 8


def recommended(drops: dict[str, dict[int, float]], tolerance: float) -> dict:
    result = SensitivityResult(
        float_map=0.7,
        drops={(layer, b): d for layer, per in drops.items() for b, d in per.items()},
        bits=(4, 6, 8),
        layers=tuple(drops),
    )
    return recommend_overrides(result, tolerance=tolerance)


def test_recommend_overrides_picks_the_fewest_bits_within_tolerance() -> None:
    drops = {
        "conv1": {4: 0.20, 6: 0.03, 8: 0.004},  # only 8 bits are cheap enough
        "fire2/squeeze1x1": {4: 0.001, 6: 0.0, 8: 0.0},  # every width fits: the fewest
        "fire2/expand1x1": {4: 0.30, 6: 0.005, 8: -0.001},  # exactly at tolerance counts
        "conv12": {4: 0.5, 6: 0.1, 8: 0.02},  # nothing fits: stays float
        "fire3/expand3x3": {4: 0.002, 6: 0.04, 8: 0.0},  # not monotone: 4 already fits
    }
    assert recommended(drops, 0.005) == {
        "conv1": 8,
        "fire2/squeeze1x1": 4,
        "fire2/expand1x1": 6,
        "conv12": "float",
        "fire3/expand3x3": 4,
    }
    looser = recommended(drops, 0.05)
    assert looser["conv1"] == 6 and looser["conv12"] == 8


def test_recommended_overrides_make_a_valid_mixed_precision_config(weights) -> None:
    drops = {name: {4: 0.1, 6: 0.001, 8: 0.0} for name in SQUEEZEDET_LAYERS}
    drops["conv12"] = {4: 0.3, 6: 0.2, 8: 0.1}
    config = QuantConfig(bits=8, overrides=recommended(drops, 0.005))
    assert config.layer_bits("fire5/expand3x3") == 6 and config.layer_bits("conv12") is None
    quantized = quantize_weights(weights, config)
    assert np.array_equal(quantized["conv12/kernels"], weights["conv12/kernels"])
    assert np.unique(quantized["fire5/expand3x3/kernels"]).size <= 2**6


@pytest.mark.slow
def test_layer_sensitivity_gives_one_drop_per_layer_and_bits(tiny_detector, tmp_path) -> None:
    from squeezelens.engine.data.kitti import open_dataset
    from tests.test_sweep import write_tiny_kitti

    dataset = open_dataset(write_tiny_kitti(tmp_path, n_images=1), "val")
    calls: list[tuple[int, int]] = []
    seen: list = []
    forward = tiny_detector.forward

    def spy(batch, quant=None):
        seen.append(quant)
        return forward(batch, quant)

    tiny_detector.forward = spy
    try:
        result = layer_sensitivity(
            tiny_detector,
            dataset,
            QuantConfig(),
            bits=(2, 8),
            progress=lambda d, t: calls.append((d, t)),
        )
    finally:
        del tiny_detector.forward
    tested = SQUEEZEDET_LAYERS[1:]  # conv1 stays float under the base config
    assert result.layers == tuple(tested) and result.bits == (2, 8)
    assert set(result.drops) == {(layer, b) for layer in tested for b in (2, 8)}
    assert 0.0 <= result.float_map <= 1.0
    for drop in result.drops.values():
        assert -1.0 <= drop <= result.float_map
    assert calls[-1] == (62, 62) and len(calls) == 62
    assert seen[0] is None and seen[1] == single_layer_config(QuantConfig(), tested[0], 2)
    doc = result.to_dict()
    assert set(doc["drops"]) == set(tested) and doc["bits"] == [2, 8]
    assert doc["base"] == QuantConfig().to_dict()
