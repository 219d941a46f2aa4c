"""QuantConfig validation, JSON round-trip, describe() and the argparse glue."""

from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelens.cli.quant_args import (
    add_config_arguments,
    quant_config_from_args,
    quant_configs_from_args,
)
from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.quant.config import ACTIVATION_RANGES, GRIDS, RANGES, ROUNDINGS, SCALES

LAYERS = ["conv1", "conv12", "fire2/squeeze1x1", "fire2/expand1x1", "fire11/expand3x3"]

configs = st.builds(
    QuantConfig,
    bits=st.integers(1, 16),
    rounding=st.sampled_from(ROUNDINGS),
    reserve_zero=st.booleans(),
    scale=st.sampled_from(SCALES),
    range=st.sampled_from(RANGES) | st.floats(50.01, 100).map(lambda p: f"percentile:{p}"),
    grid=st.sampled_from(GRIDS),
    seed=st.integers(0, 2**63 - 1),
    quantize_biases=st.booleans(),
    quantize_first_layer=st.booleans(),
    activation_bits=st.none() | st.integers(4, 16),
    overrides=st.dictionaries(
        st.sampled_from(LAYERS), st.integers(1, 16) | st.just("float"), max_size=3
    ),
    activation_range=st.sampled_from(ACTIVATION_RANGES) | st.just("percentile:99.99"),
    equalize=st.booleans(),
    bias_correction=st.booleans(),
    adaround_iterations=st.integers(1, 100_000),
)


def _parse(argv: list[str], multi: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, multi=multi)
    return parser.parse_args(argv)


def test_defaults_are_the_forks_8_bit_setting() -> None:
    config = QuantConfig()
    assert (config.bits, config.rounding, config.reserve_zero, config.scale) == (
        8,
        "nearest",
        False,
        "global",
    )
    assert (config.range, config.grid, config.seed, config.activation_bits) == (
        "minmax",
        "linear",
        0,
        None,
    )
    assert config.quantize_biases and not config.quantize_first_layer and config.overrides == ()
    assert config.fork_exact


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bits": 0}, "bits must be between 1 and 16, got 0"),
        ({"bits": 40}, "bits must be between 1 and 16, got 40"),
        ({"bits": 8.0}, "bits must be an integer"),
        ({"bits": True}, "bits must be an integer"),
        ({"rounding": "floor"}, "rounding must be one of nearest, stochastic, adaround, got"),
        ({"scale": "tensor"}, "scale must be one of global, groups, layer, channel"),
        ({"range": "percentile"}, "range must be one of minmax, symmetric, mse, percentile:P"),
        ({"range": "percentile:50"}, "percentile:P (50 < P <= 100), got 'percentile:50'"),
        ({"range": "percentile:101"}, "range must be one of"),
        ({"range": "percentile:x"}, "range must be one of"),
        ({"activation_range": "symmetric"}, "activation_range must be one of minmax, mse, entropy"),
        ({"equalize": "on"}, "equalize must be true or false"),
        ({"bias_correction": 1}, "bias_correction must be true or false"),
        ({"adaround_iterations": 0}, "adaround_iterations must be between 1 and 100000"),
        ({"grid": "log"}, "grid must be one of linear, pow2"),
        ({"seed": -1}, "seed must be between 0"),
        ({"reserve_zero": "yes"}, "reserve_zero must be true or false"),
        ({"quantize_biases": 1}, "quantize_biases must be true or false"),
        ({"activation_bits": 2}, "activation_bits must be off or between 4 and 16, got 2"),
        ({"activation_bits": 17}, "activation_bits must be off or between 4 and 16, got 17"),
        ({"overrides": {"conv12": 0}}, "bits for layer conv12 must be 1-16 or 'float', got 0"),
        ({"overrides": {"conv12": "half"}}, "bits for layer conv12 must be 1-16 or 'float'"),
        ({"overrides": {"bad name": 4}}, "invalid layer name in overrides"),
        ({"overrides": [("conv12", 4), ("conv12", 5)]}, "layer conv12 appears twice"),
    ],
)
def test_invalid_settings_raise_one_line_input_errors(changes: dict, message: str) -> None:
    with pytest.raises(InputError) as info:
        QuantConfig(**changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_overrides_are_sorted_hashable_pairs() -> None:
    config = QuantConfig(overrides={"fire2/squeeze1x1": 4, "conv12": "float"})
    assert config.overrides == (("conv12", "float"), ("fire2/squeeze1x1", 4))
    assert hash(config) == hash(
        QuantConfig(overrides=[("fire2/squeeze1x1", 4), ("conv12", "float")])
    )


def test_layer_bits_rules() -> None:
    config = QuantConfig(bits=6, overrides={"conv12": "float", "fire3/expand1x1": 3, "conv1": 8})
    assert config.layer_bits("fire2/squeeze1x1") == 6
    assert config.layer_bits("conv12") is None
    assert config.layer_bits("fire3/expand1x1", is_bias=True) == 3
    assert config.layer_bits("conv1") == 8  # an explicit override quantizes the frozen layer
    assert QuantConfig().layer_bits("conv1") is None
    assert QuantConfig(quantize_first_layer=True).layer_bits("conv1") == 8
    assert QuantConfig(quantize_biases=False).layer_bits("fire2/squeeze1x1", is_bias=True) is None


@settings(max_examples=60, deadline=None)
@given(configs)
def test_json_round_trip(config: QuantConfig) -> None:
    assert QuantConfig.from_json(config.to_json()) == config
    assert QuantConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@settings(max_examples=60, deadline=None)
@given(configs)
def test_cli_round_trip(config: QuantConfig) -> None:
    assert quant_config_from_args(_parse(config.to_cli_args())) == config
    assert quant_configs_from_args(_parse(config.to_cli_args(), multi=True)) == [config]


@settings(max_examples=30, deadline=None)
@given(configs)
def test_describe_is_one_line(config: QuantConfig) -> None:
    text = config.describe()
    assert "\n" not in text and f"{config.bits}-bit" in text


def test_from_dict_and_json_reject_bad_input() -> None:
    with pytest.raises(InputError, match="unknown quantization setting"):
        QuantConfig.from_dict({"bits": 4, "colour": "red"})
    with pytest.raises(InputError, match="invalid quantization config JSON"):
        QuantConfig.from_json("{bits: 4")
    with pytest.raises(InputError, match="must be a JSON object"):
        QuantConfig.from_json("[4]")
    assert QuantConfig.from_dict({"bits": 4}) == QuantConfig(bits=4)


def test_cli_flags_and_defaults() -> None:
    args = _parse(
        [
            "--bits",
            "5",
            "--reserve-zero",
            "on",
            "--activation-bits",
            "off",
            "--layer-bits",
            "conv12=float, fire2/squeeze1x1=3",
        ]
    )
    config = quant_config_from_args(args)
    assert config == QuantConfig(
        bits=5, reserve_zero=True, overrides={"conv12": "float", "fire2/squeeze1x1": 3}
    )
    assert quant_config_from_args(_parse([])) == QuantConfig()
    assert "--layer-bits" not in QuantConfig().to_cli_args()


def test_cli_multi_is_the_product_in_order() -> None:
    args = _parse(
        ["--bits", "3-4,8", "--rounding", "nearest,stochastic", "--reserve-zero", "off,on,off"],
        multi=True,
    )
    configs = quant_configs_from_args(args)
    assert len(configs) == 3 * 2 * 2
    assert [(c.bits, c.rounding, c.reserve_zero) for c in configs[:3]] == [
        (3, "nearest", False),
        (3, "nearest", True),
        (3, "stochastic", False),
    ]
    assert configs[-1] == QuantConfig(bits=8, rounding="stochastic", reserve_zero=True)
    with pytest.raises(InputError, match="expected one quantization setting"):
        quant_config_from_args(args)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bits", "eight"], "--bits must be an integer"),
        (["--bits", "40"], "bits must be between 1 and 16, got 40"),
        (["--reserve-zero", "maybe"], "--reserve-zero must be on or off"),
        (["--rounding", "floor"], "rounding must be one of"),
        (["--layer-bits", "conv12"], "--layer-bits entries must look like NAME=BITS"),
        (["--layer-bits", "conv12=x"], "--layer-bits conv12 must be an integer"),
        (["--activation-bits", "3"], "activation_bits must be off or between 4 and 16"),
    ],
)
def test_cli_errors_are_input_errors(argv: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        quant_config_from_args(_parse(argv))


def test_cli_multi_rejects_empty_and_reversed_ranges() -> None:
    with pytest.raises(InputError, match="range 8-3 is empty"):
        quant_configs_from_args(_parse(["--bits", "8-3"], multi=True))
    with pytest.raises(InputError, match="needs at least one value"):
        quant_configs_from_args(_parse(["--scale", ","], multi=True))


def test_percentile_ranges_are_written_canonically() -> None:
    assert QuantConfig(range="percentile:99.90").range == "percentile:99.9"
    assert QuantConfig(range="percentile:99.9") == QuantConfig(range="percentile:99.900")
    assert QuantConfig(activation_range="percentile:100.0").activation_range == "percentile:100"


def test_remedy_flags_parse_and_replay() -> None:
    args = _parse(["--bits", "4", "--range", "mse", "--equalize", "--bias-correction", "on",
                   "--rounding", "adaround", "--adaround-iterations", "50",
                   "--activation-range", "entropy"])  # fmt: skip
    config = quant_config_from_args(args)
    assert config == QuantConfig(bits=4, range="mse", equalize=True, bias_correction=True,
                                 rounding="adaround", adaround_iterations=50,
                                 activation_range="entropy")  # fmt: skip
    assert config.needs_calibration and config.needs_model and not config.fork_exact
    assert "equalized" in config.describe() and "bias corrected" in config.describe()
    assert "--equalize" not in QuantConfig().to_cli_args()  # defaults stay off the command
    assert not QuantConfig(equalize=True).needs_calibration
    with pytest.raises(InputError, match="--equalize must be on or off"):
        quant_config_from_args(_parse(["--equalize", "maybe"]))


def test_sweep_lists_take_remedies() -> None:
    args = _parse(["--bits", "4", "--range", "minmax,mse", "--equalize", "off,on"], multi=True)
    configs = quant_configs_from_args(args)
    assert [(c.range, c.equalize) for c in configs] == [
        ("minmax", False),
        ("minmax", True),
        ("mse", False),
        ("mse", True),
    ]
