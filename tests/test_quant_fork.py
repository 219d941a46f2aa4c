"""FORK-EXACT mode: bit-for-bit equality with the low-precision SqueezeDet fork.

Two witnesses: the golden file made by an independent implementation of the
fork (nearest rounding, five settings), and a plain per-element transcription
of the fork's algorithm written below, for nearest and stochastic rounding
(fed the same uniform draws as the quantizer: ``uniform_draws``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelens.engine.quant import QuantConfig, quantize_weights, uniform_draws

SHARED = Path(__file__).resolve().parents[2] / "shared"
GOLDEN = SHARED / "reference" / "golden_fork_quant.npz"
GOLDEN_ABOUT = SHARED / "reference" / "golden_fork_quant.json"

SMALL_SHAPES = {
    "conv1/kernels": (3, 3, 3, 6),
    "conv1/biases": (6,),
    "fire2/squeeze1x1/kernels": (1, 1, 6, 3),
    "fire2/squeeze1x1/biases": (3,),
    "fire2/expand1x1/kernels": (1, 1, 3, 4),
    "fire2/expand1x1/biases": (4,),
    "fire2/expand3x3/kernels": (3, 3, 3, 4),
    "fire2/expand3x3/biases": (4,),
    "conv12/kernels": (3, 3, 8, 5),
    "conv12/biases": (5,),
}


def fork_reference(weights: dict, bits: int, rounding: str, reserve_zero: bool, scale: str, seed: int = 0,
                   quantize_biases: bool = True, quantize_first_layer: bool = False) -> dict:  # fmt: skip
    """The fork's algorithm, one element at a time, as plainly as possible."""
    trainable = [
        name
        for name in weights
        if (quantize_first_layer or not name.startswith("conv1/"))
        and (quantize_biases or not name.endswith("/biases"))
    ]
    groups: dict[str, list[str]] = {}
    for name in trainable:
        key = "all" if scale == "global" else ("conv" if name.startswith("conv") else "fire")
        groups.setdefault(key, []).append(name)
    out = dict(weights)
    for names in groups.values():
        lo = min(float(weights[name].min()) for name in names)
        hi = max(0.0, max(float(weights[name].max()) for name in names))
        n = 2**bits
        levels = [lo + i * (hi - lo) / (n - 1) for i in range(n)]
        if reserve_zero:
            magnitudes = [abs(level) for level in levels]
            levels[magnitudes.index(min(magnitudes))] = 0.0
        for name in names:
            draws = uniform_draws(seed, name, weights[name].shape).ravel().tolist()
            result = []
            for v, u in zip(weights[name].ravel().tolist(), draws, strict=True):
                distances = [abs(v - level) for level in levels]
                k = distances.index(min(distances))  # the first (lower) level on a tie
                if rounding == "nearest" or k == 0 or k == n - 1:
                    result.append(levels[k])
                    continue
                lower = max(i for i in range(n) if levels[i] <= v)
                p_up = (v - levels[lower]) / (levels[lower + 1] - levels[lower])
                result.append(levels[lower + 1] if u < p_up else levels[lower])
            out[name] = np.array(result, dtype=np.float32).reshape(weights[name].shape)
    return out


def random_weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in SMALL_SHAPES.items():
        scale = rng.uniform(0.01, 1.0)
        offset = rng.uniform(-0.5, 0.5) * scale
        weights[name] = (rng.standard_normal(shape) * scale + offset).astype(np.float32)
    return weights


@pytest.mark.skipif(not GOLDEN.exists(), reason="shared reference folder not present")
def test_golden_fork_outputs_match_exactly() -> None:
    about = json.loads(GOLDEN_ABOUT.read_text())
    with np.load(GOLDEN) as golden:
        names = [key[len("input/") :] for key in golden.files if key.startswith("input/")]
        inputs = {name: golden[f"input/{name}"] for name in names}
        assert len(about["configs"]) == 5
        for entry in about["configs"]:
            config = QuantConfig(
                bits=entry["bits"],
                rounding=entry["rounding"],
                reserve_zero=entry["reserve_zero"],
                scale=entry["scale"],
            )
            assert config.fork_exact
            out = quantize_weights(inputs, config)
            for name in names:
                expected = golden[f"{entry['key']}/{name}"]
                assert out[name].dtype == np.float32
                assert np.array_equal(out[name], expected), (entry["key"], name)
            assert out["conv1/kernels"] is inputs["conv1/kernels"]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    bits=st.integers(1, 6),
    rounding=st.sampled_from(["nearest", "stochastic"]),
    reserve_zero=st.booleans(),
    scale=st.sampled_from(["global", "groups"]),
)
def test_matches_the_per_element_fork(
    seed: int, bits: int, rounding: str, reserve_zero: bool, scale: str
) -> None:
    weights = random_weights(seed)
    config = QuantConfig(
        bits=bits, rounding=rounding, reserve_zero=reserve_zero, scale=scale, seed=seed % 1000
    )
    expected = fork_reference(weights, bits, rounding, reserve_zero, scale, seed=seed % 1000)
    out = quantize_weights(weights, config)
    for name in weights:
        assert np.array_equal(out[name], expected[name]), name


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize(
    "switches",
    [
        {"quantize_biases": False},
        {"quantize_first_layer": True},
        {"quantize_first_layer": True, "quantize_biases": False},
    ],
)
def test_matches_the_fork_with_biases_or_first_layer_switched(
    rounding: str, switches: dict
) -> None:
    weights = random_weights(7)
    config = QuantConfig(
        bits=5, rounding=rounding, reserve_zero=True, scale="groups", seed=3, **switches
    )
    expected = fork_reference(weights, 5, rounding, True, "groups", seed=3, **switches)
    out = quantize_weights(weights, config)
    for name in weights:
        assert np.array_equal(out[name], expected[name]), name


def test_eight_bit_stochastic_matches_the_fork() -> None:
    weights = random_weights(11)
    config = QuantConfig(bits=8, rounding="stochastic", reserve_zero=True, seed=5)
    expected = fork_reference(weights, 8, "stochastic", True, "global", seed=5)
    out = quantize_weights(weights, config)
    assert all(np.array_equal(out[name], expected[name]) for name in weights)
