"""Named presets (engine.quant.presets) and PartialConfig (plan in full, round some layers).

The fork's four curves are written out here from its description (nearest /
stochastic x no zero + one global range / zero + separate conv/fire ranges,
conv1 float, biases quantized, float activations), not read from the code.
"""

from __future__ import annotations

import numpy as np
import pytest

from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec
from squeezelens.engine.quant import (
    FORK_BITS,
    FORK_CURVES,
    PRESETS,
    RISTRETTO,
    PartialConfig,
    QuantConfig,
    plan_quantization,
    quantization_report,
    quantize_weights,
)
from squeezelens.engine.quant.presets import fork_curve_configs, matching_preset, preset_by_name
from tests.conftest import random_weights

EXPECTED_CURVES = [
    ("nearest", False, "global"),
    ("stochastic", False, "global"),
    ("nearest", True, "groups"),
    ("stochastic", True, "groups"),
]


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return random_weights(ArchSpec(), seed=11)


def test_the_fork_curves_are_its_four_published_methods() -> None:
    got = [(p.config.rounding, p.config.reserve_zero, p.config.scale) for p in FORK_CURVES]
    assert got == EXPECTED_CURVES
    for preset in FORK_CURVES:
        c = preset.config
        assert (c.range, c.grid, c.quantize_first_layer, c.quantize_biases) == (
            "minmax", "linear", False, True,
        )  # fmt: skip
        assert c.activation_bits is None and c.fork_exact
    assert FORK_BITS == (3, 4, 5, 6, 7, 9, 11)
    assert len({p.name for p in PRESETS}) == len(PRESETS)


def test_applying_a_preset_keeps_bits_seed_and_overrides() -> None:
    base = QuantConfig(
        bits=5, seed=9, activation_bits=8, scale="channel", overrides={"conv12": "float"}
    )
    applied = FORK_CURVES[3].apply(base)
    assert (applied.bits, applied.seed, dict(applied.overrides)) == (5, 9, {"conv12": "float"})
    assert (applied.rounding, applied.reserve_zero, applied.scale) == ("stochastic", True, "groups")
    assert applied.activation_bits is None
    assert FORK_CURVES[0].apply() == QuantConfig()  # the defaults are curve (a) at 8 bits


def test_ristretto_preset_is_a_power_of_two_step_per_layer(weights) -> None:
    config = RISTRETTO.apply(QuantConfig(bits=6))
    assert (config.grid, config.scale) == ("pow2", "layer")
    report = quantization_report(weights, config)
    frac = {info.layer: info.frac_len for info in report.values() if info.quantized}
    assert len(set(frac.values())) > 1  # layers of different magnitude get their own step


def test_fork_curve_configs_are_bits_major_over_the_four_curves() -> None:
    configs = fork_curve_configs(QuantConfig(seed=3))
    assert [c.bits for c in configs] == [b for b in FORK_BITS for _ in range(4)]
    assert [(c.rounding, c.reserve_zero, c.scale) for c in configs[:4]] == EXPECTED_CURVES
    assert all(c.seed == 3 for c in configs)
    assert [c.bits for c in fork_curve_configs(bits=(4, 8))] == [4] * 4 + [8] * 4


def test_preset_lookup_and_matching() -> None:
    assert preset_by_name("Fork: stochastic") is FORK_CURVES[1]
    with pytest.raises(InputError, match="unknown preset"):
        preset_by_name("Fork: nope")
    assert matching_preset(QuantConfig(bits=4, rounding="stochastic")) is FORK_CURVES[1]
    assert matching_preset(QuantConfig(reserve_zero=True)) is None  # zero + global: no fork curve


# --- PartialConfig ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["global", "groups", "layer"])
def test_partial_config_rounds_only_its_layers_on_the_full_configs_grid(weights, scale) -> None:
    full = QuantConfig(bits=4, scale=scale, reserve_zero=True)
    partial = PartialConfig(bits=4, scale=scale, reserve_zero=True, rounded=["fire5/expand3x3"])
    q_partial, q_full = quantize_weights(weights, partial), quantize_weights(weights, full)
    for name, value in weights.items():
        if name.startswith("fire5/expand3x3/"):
            np.testing.assert_array_equal(q_partial[name], q_full[name])
        else:
            assert q_partial[name] is value  # untouched float
    plans = plan_quantization(weights, partial)
    assert set(plans) == {"fire5/expand3x3/kernels", "fire5/expand3x3/biases"}
    full_grid = plan_quantization(weights, full)["fire5/expand3x3/kernels"].grid
    np.testing.assert_array_equal(plans["fire5/expand3x3/kernels"].grid.levels, full_grid.levels)


def test_under_a_global_scale_the_partial_range_is_the_whole_models(weights) -> None:
    partial = PartialConfig(bits=3, rounded=("fire2/squeeze1x1",))
    lo, hi = plan_quantization(weights, partial)["fire2/squeeze1x1/kernels"].grid.bounds
    quantized = [v for k, v in weights.items() if not k.startswith("conv1/")]
    assert float(lo) == min(float(v.min()) for v in quantized)
    assert float(hi) == max(0.0, max(float(v.max()) for v in quantized))
    own = np.concatenate([weights[f"fire2/squeeze1x1/{k}"].ravel() for k in ("kernels", "biases")])
    assert float(hi) - float(lo) > float(own.max()) - float(own.min())


def test_partial_config_validation_and_identity() -> None:
    with pytest.raises(InputError, match="rounded"):
        PartialConfig(rounded="conv12")
    a = PartialConfig(bits=4, rounded=["fire3/expand1x1", "conv12", "conv12"])
    assert a.rounded == ("conv12", "fire3/expand1x1")
    assert a != QuantConfig(bits=4) and a == a.replace()
    assert "rounding only conv12" in a.describe()
    with pytest.raises(InputError, match="unknown layer"):
        quantize_weights(random_weights(ArchSpec()), PartialConfig(rounded=("fire99/x",)))
