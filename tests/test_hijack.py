"""Range hijacks (engine.quant.hijack): the rule on hand-made weights, on the real checkpoint,
and the warning the quantizing commands print."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.quant.hijack import find_range_hijacks
from tests.conftest import REAL_CKPT, need_shared

KERNEL = np.linspace(-0.5, 0.5, 1001, dtype=np.float32)  # median |w| 0.25, range width 1


def model(bias_max: float = 4.0, big_layer: int = 0) -> dict[str, np.ndarray]:
    """One fire layer whose bias reaches ``bias_max``; optionally a second layer of
    ``big_layer`` values within the kernel's range.  conv1 (float by default) is huge."""
    weights = {
        "conv1/kernels": np.full(9, 50.0, np.float32),
        "conv1/biases": np.zeros(2, np.float32),
        "fire2/squeeze1x1/kernels": KERNEL.reshape(1, 1, 7, 143),
        "fire2/squeeze1x1/biases": np.array([0.0, bias_max], np.float32),
    }
    if big_layer:
        weights["fire3/squeeze1x1/kernels"] = np.linspace(-0.4, 0.4, big_layer, dtype=np.float32)
    return weights


def test_known_answer_of_a_bias_that_stretches_the_global_range() -> None:
    (hijack,) = find_range_hijacks(model(), QuantConfig(bits=4))
    assert hijack.tensor == "fire2/squeeze1x1/biases" and hijack.unit == "global"
    assert hijack.bits == 4
    assert hijack.tensor_range == (0.0, 4.0)
    assert hijack.rest_range == (-0.5, 0.5)
    assert hijack.step == pytest.approx(4.5 / 15)  # [-0.5, 4] in 15 steps
    assert hijack.step_without == pytest.approx(1.0 / 15)
    assert hijack.stretch == pytest.approx(4.5)
    assert hijack.typical_magnitude == pytest.approx(0.25)
    assert hijack.affected == 1001 and hijack.share == pytest.approx(1001 / 1003)
    text = hijack.describe()
    assert "fire2/squeeze1x1/biases hijacks the global range" in text
    assert "--quantize-biases off" in text and "--scale channel" in text


def test_condition_1_the_tensor_must_at_least_double_the_step() -> None:
    assert find_range_hijacks(model(bias_max=1.4), QuantConfig(bits=4)) == []  # 1.9x
    (hijack,) = find_range_hijacks(model(bias_max=1.6), QuantConfig(bits=4))  # 2.1x
    assert hijack.stretch == pytest.approx(2.1)


def test_condition_2_the_step_must_be_coarse_for_the_rest() -> None:
    # median 0.25 < 4 steps of 4.5 / (2**bits - 1) while 2**bits - 1 < 72: up to 6 bits
    assert [h.bits for h in find_range_hijacks(model(), QuantConfig(bits=6))] == [6]
    assert find_range_hijacks(model(), QuantConfig(bits=7)) == []


def test_condition_3_the_rest_must_be_a_sizable_part_of_the_model() -> None:
    weights = model(big_layer=30_000)  # fire2's kernel is 3 % of the quantized values
    assert find_range_hijacks(weights, QuantConfig(bits=4, scale="layer")) == []
    (hijack,) = find_range_hijacks(weights, QuantConfig(bits=4, scale="global"))
    assert hijack.affected == 31_001
    assert [h.unit for h in find_range_hijacks(model(), QuantConfig(bits=4, scale="layer"))] == [
        "fire2/squeeze1x1"
    ]


def test_no_rule_under_channel_scale_or_float_biases_or_a_zero_rest() -> None:
    assert find_range_hijacks(model(), QuantConfig(bits=4, scale="channel")) == []
    assert find_range_hijacks(model(), QuantConfig(bits=4, quantize_biases=False)) == []
    zeros = {**model(), "fire2/squeeze1x1/kernels": np.zeros(1001, np.float32)}
    assert find_range_hijacks(zeros, QuantConfig(bits=4)) == []


def test_the_rest_is_measured_at_its_own_bits() -> None:
    weights = model(big_layer=10_000)  # fire2's kernel is 9 % of the quantized values
    config = QuantConfig(bits=4, overrides=(("fire3/squeeze1x1", 12),))
    (hijack,) = find_range_hijacks(weights, config)
    assert hijack.bits == 4 and hijack.affected == 1001  # fire3 at 12 bits is not coarse


def test_remedies_are_rechecked_with_the_rule() -> None:
    (hijack,) = find_range_hijacks(model(), QuantConfig(bits=4))
    remedies = {r.description: r for r in hijack.remedies}
    assert remedies["per-channel ranges"].flags == ("--scale", "channel")
    assert remedies["per-channel ranges"].clears
    assert not remedies["per-layer ranges"].clears  # the layer is the whole model here
    assert remedies["float biases"].flags == ("--quantize-biases", "off")
    assert remedies["float biases"].clears
    floated = remedies["fire2/squeeze1x1 in float"]
    assert floated.flags == ("--layer-bits", "fire2/squeeze1x1=float") and floated.clears
    assert find_range_hijacks(model(), floated.config) == []
    assert "per-layer ranges" not in hijack.describe()


def test_a_kernel_is_offered_no_float_biases() -> None:
    weights = {**model(bias_max=0.1), "fire2/squeeze1x1/kernels": np.r_[KERNEL, 9.0]}
    weights["fire3/squeeze1x1/kernels"] = KERNEL.copy()
    (hijack,) = find_range_hijacks(weights, QuantConfig(bits=4))
    assert hijack.tensor == "fire2/squeeze1x1/kernels"
    assert "float biases" not in {r.description for r in hijack.remedies}


def test_bad_weights_are_refused_as_quantization_refuses_them() -> None:
    with pytest.raises(InputError, match="unknown layer"):
        find_range_hijacks(model(), QuantConfig(overrides=(("nope", 4),)))
    with pytest.raises(InputError, match="non-finite"):
        find_range_hijacks(
            {**model(), "fire2/squeeze1x1/biases": np.array([np.nan])}, QuantConfig()
        )


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(1e-3, 1e3),
    bias_max=st.floats(0.0, 20.0),
    bits=st.integers(2, 10),
    grid=st.sampled_from([("linear", "minmax"), ("linear", "symmetric")]),
)
def test_linear_hijacks_do_not_depend_on_the_weights_unit(scale, bias_max, bits, grid) -> None:
    config = QuantConfig(bits=bits, grid=grid[0], range=grid[1])
    plain = find_range_hijacks(model(bias_max), config, remedies=False)
    scaled_weights = {
        k: (v * np.float32(scale)).astype(np.float32) for k, v in model(bias_max).items()
    }
    scaled = find_range_hijacks(scaled_weights, config, remedies=False)
    assert [h.tensor for h in scaled] == [h.tensor for h in plain] or any(
        abs(h.stretch - 2.0) < 1e-4 for h in plain + scaled
    )
    for a, b in zip(plain, scaled):
        assert b.stretch == pytest.approx(a.stretch, rel=1e-5)
        assert b.step == pytest.approx(a.step * scale, rel=1e-5)


# --- the real checkpoint -------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_weights() -> dict[str, np.ndarray]:
    need_shared(REAL_CKPT.parent)
    from squeezelens.engine.checkpoint import load_checkpoint

    return load_checkpoint(REAL_CKPT).weights


def test_the_real_checkpoint_is_hijacked_by_fire8_squeeze_biases(real_weights) -> None:
    (hijack,) = find_range_hijacks(real_weights, QuantConfig())  # the default 8-bit global
    assert hijack.tensor == "fire8/squeeze1x1/biases" and hijack.unit == "global"
    assert hijack.tensor_range[1] == pytest.approx(7.1233, abs=1e-4)
    assert hijack.step == pytest.approx(0.0330, abs=1e-4)
    assert hijack.stretch == pytest.approx(2.91, abs=0.01)
    assert 0.01 < hijack.typical_magnitude < hijack.step / 2  # most weights below a step
    cleared = {r.description for r in hijack.remedies if r.clears}
    assert cleared == {
        "per-channel ranges",
        "per-layer ranges",
        "float biases",
        "fire8/squeeze1x1 in float",
    }
    assert find_range_hijacks(real_weights, QuantConfig(scale="layer")) == []
    assert find_range_hijacks(real_weights, QuantConfig(bits=12)) == []


# --- the CLI warning ---------------------------------------------------------------------


def test_quantizing_commands_warn_on_stderr(tmp_path, capsys) -> None:
    from squeezelens.cli.hijacks import warn_range_hijacks

    configs = [
        QuantConfig(bits=b, rounding=r) for b in (4, 5, 6) for r in ("nearest", "stochastic")
    ]
    assert warn_range_hijacks(model(), [None, *configs]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("warning: fire2/squeeze1x1/biases hijacks the global range")
    assert line.endswith("(at 4, 5, 6 bits in this run)")
    assert warn_range_hijacks(model(), [QuantConfig(bits=8), None]) == 0
    assert capsys.readouterr().err == ""


def test_warnings_over_several_configs_are_one_per_tensor_and_unit() -> None:
    from squeezelens.engine.quant.hijack import hijack_warnings

    configs = [QuantConfig(bits=4), QuantConfig(bits=5, rounding="stochastic"), None,
               QuantConfig(bits=4, scale="layer")]  # fmt: skip
    warnings = hijack_warnings(model(), configs)
    assert [(w.hijack.unit, w.bits) for w in warnings] == [("global", (4, 5)),
                                                          ("fire2/squeeze1x1", (4,))]  # fmt: skip
    assert {w.layer for w in warnings} == {"fire2/squeeze1x1"}
    assert warnings[0].text().endswith("(at 4, 5 bits in this run)")
    assert "remedies: per-channel ranges (--scale channel)" in warnings[1].text()
    assert hijack_warnings(model(), [None, QuantConfig(bits=4, scale="channel")]) == []


def test_the_summary_names_the_tensor_its_peak_the_step_and_the_remedies() -> None:
    (hijack,) = find_range_hijacks(model(), QuantConfig(bits=4))
    text = hijack.summary()
    assert text.startswith("fire2/squeeze1x1/biases (reaching +4) stretches the global range")
    assert "the 4-bit step is 0.3, 4.5x what the rest needs" in text
    assert text.endswith("Remedies: per-channel ranges, float biases, fire2/squeeze1x1 in float")
    negative = {**model(), "fire2/squeeze1x1/biases": np.array([-4.0, 0.0], np.float32)}
    (low,) = find_range_hijacks(negative, QuantConfig(bits=4))
    assert "(reaching -4)" in low.summary()
