"""Activation quantization: calibration, dynamic fixed point per layer output, no retracing.

Runs the random-weight ``tiny_detector``.  Weights are kept float (every layer
overridden to "float") wherever the test is about activations alone, so any
difference from the float model comes from the ActivationQuant layers.  The
expected grid is derived here from Ristretto's rule (integer length
il = ceil(log2 max|a|) + 1 with the sign bit, fractional length fl = bits - il).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from squeezelens.engine.diagnostics import ErrorStats
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import layer_names
from squeezelens.engine.quant import QuantConfig

pytestmark = pytest.mark.slow


def scenes(seeds: range) -> list[np.ndarray]:
    """Noise images with a bright and a dark block (BGR uint8, 120x320)."""
    out = []
    for s in seeds:
        rng = np.random.default_rng(s)
        im = rng.integers(0, 255, (120, 320, 3), dtype=np.uint8)
        im[20:60, 30 + 10 * s : 110 + 10 * s] = 250
        im[70:110, 200:260] = 5
        out.append(im)
    return out


@pytest.fixture(scope="module")
def calibrated(tiny_detector):
    """The tiny detector calibrated on four images; its previous calibration restored after."""
    before = tiny_detector.activation_ranges
    tiny_detector.calibrate_activations(scenes(range(4)))
    yield tiny_detector
    tiny_detector.activation_ranges = before
    tiny_detector._act_bits_loaded = None


def float_weights_config(detector, bits: int) -> QuantConfig:
    """Float weights, activations at ``bits``."""
    names = layer_names(detector.spec.variant)
    return QuantConfig(activation_bits=bits, overrides={n: "float" for n in names})


def expected_step(max_abs: float, bits: int) -> float:
    integer_length = math.ceil(math.log2(max_abs)) + 1
    return 2.0 ** -(bits - integer_length)


def test_calibration_records_the_largest_magnitude_of_every_layer_output(calibrated) -> None:
    ranges = calibrated.activation_ranges
    names = layer_names(calibrated.spec.variant)
    assert list(ranges) == names
    images = scenes(range(4))
    for k, name in ((0, "conv1"), (len(names) - 1, "conv12")):
        seen = 0.0
        for im in images:
            x, _ = calibrated.preprocess(im)
            outs = calibrated.graph.probe(x[None], training=False)
            seen = max(seen, float(np.max(np.abs(outs[k].numpy()))))
        assert ranges[name] == pytest.approx(seen, rel=1e-6)
    assert all(v > 0 for v in ranges.values())


def test_8_bit_activations_differ_slightly_and_16_bits_are_nearly_float(calibrated) -> None:
    image = scenes(range(10, 11))[0]  # not a calibration image
    x, _ = calibrated.preprocess(image)
    ref = calibrated.forward(x[None])
    act8 = calibrated.forward(x[None], float_weights_config(calibrated, 8))
    act16 = calibrated.forward(x[None], float_weights_config(calibrated, 16))
    e8, e16 = ErrorStats.of(ref, act8), ErrorStats.of(ref, act16)
    assert 0 < e8.mse and 20 < e8.sqnr_db < 60  # visibly different, but only slightly
    assert e16.sqnr_db > 70 and e16.sqnr_db > e8.sqnr_db + 30  # ~6 dB per extra bit
    spread = float(np.ptp(ref))
    assert e8.max_abs < 0.1 * spread and e16.max_abs < 1e-3 * spread

    # the same through detect(): boxes of 16-bit activations match float's
    base = calibrated.detect(image)
    d8 = calibrated.detect(image, float_weights_config(calibrated, 8))
    d16 = calibrated.detect(image, float_weights_config(calibrated, 16))
    assert len(base) > 0
    assert not np.array_equal(base.scores, d8.scores)
    np.testing.assert_allclose(d8.scores[:5], base.scores[:5], atol=0.05)
    np.testing.assert_allclose(d16.scores, base.scores, atol=1e-3)
    # near-ties may swap places: match every box to its closest float box
    gap = np.abs(d16.boxes_xyxy[:, None, :] - base.boxes_xyxy[None, :, :]).max(axis=2)
    assert gap.min(axis=1).max() < 0.5


def test_weights_and_activations_quantized_together(calibrated) -> None:
    x, _ = calibrated.preprocess(scenes(range(1))[0])
    ref = calibrated.forward(x[None])
    weights_only = ErrorStats.of(ref, calibrated.forward(x[None], QuantConfig(bits=6)))
    both = ErrorStats.of(ref, calibrated.forward(x[None], QuantConfig(bits=6, activation_bits=4)))
    assert both.mse > weights_only.mse > 0


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_every_quantized_activation_is_on_its_power_of_two_grid(calibrated, bits) -> None:
    names = layer_names(calibrated.spec.variant)
    # a brighter, unseen image: some activations exceed the calibrated range and clip
    image = np.clip(scenes(range(20, 21))[0].astype(np.int32) * 2, 0, 255).astype(np.uint8)
    x, _ = calibrated.preprocess(image)
    calibrated.forward(x[None], float_weights_config(calibrated, bits))  # loads the formats
    outs = calibrated.graph.actq_probe(x[None], training=False)
    assert len(outs) == len(names)
    clipped = 0
    for name, t in zip(names, outs):
        a = t.numpy().astype(np.float64)
        step = expected_step(calibrated.activation_ranges[name], bits)
        codes = a / step
        assert np.array_equal(codes, np.round(codes)), f"{name}: off the 2^-fl grid"
        assert codes.min() >= -(2 ** (bits - 1)) and codes.max() <= 2 ** (bits - 1) - 1, name
        clipped += int(np.count_nonzero(codes == 2 ** (bits - 1) - 1))
    assert clipped > 0  # the image really drove some outputs into the clip bound
    # the calibrated maximum itself is representable within one step at the top of the range
    top = calibrated.activation_ranges["conv1"]
    assert (2 ** (bits - 1) - 1) * expected_step(top, bits) >= top - expected_step(top, bits)


def test_switching_bits_never_retraces(calibrated) -> None:
    x, _ = calibrated.preprocess(scenes(range(1))[0])
    calibrated.forward(x[None], float_weights_config(calibrated, 8))
    calibrated.forward(x[None])
    actq = calibrated._forward_actq.experimental_get_tracing_count()
    flt = calibrated._forward_float.experimental_get_tracing_count()
    outputs = []
    for bits in (4, 6, 8, 11, 16, 5):
        outputs.append(calibrated.forward(x[None], QuantConfig(bits=7, activation_bits=bits)))
        calibrated.forward(x[None])
    assert calibrated._forward_actq.experimental_get_tracing_count() == actq
    assert calibrated._forward_float.experimental_get_tracing_count() == flt
    # and the bits really changed the output each time
    assert len({o.tobytes() for o in outputs}) == len(outputs)


def test_recalibration_changes_the_formats(calibrated) -> None:
    image = scenes(range(1))[0]
    x, _ = calibrated.preprocess(image)
    config = float_weights_config(calibrated, 6)
    before = calibrated.forward(x[None], config)
    saved = dict(calibrated.activation_ranges)
    try:
        # a dark image only: smaller ranges, finer steps, more clipping on a normal image
        calibrated.calibrate_activations([np.full((120, 320, 3), 60, np.uint8)])
        after = calibrated.forward(x[None], config)
        assert not np.array_equal(before, after)
    finally:
        calibrated.activation_ranges = saved
        calibrated._act_bits_loaded = None
    assert np.array_equal(calibrated.forward(x[None], config), before)


def test_activation_bits_without_calibration_is_an_input_error(tiny_detector, monkeypatch) -> None:
    monkeypatch.setattr(tiny_detector, "activation_ranges", None)
    image = scenes(range(1))[0]
    with pytest.raises(InputError, match="calibration"):
        tiny_detector.detect(image, QuantConfig(activation_bits=8))
    x, _ = tiny_detector.preprocess(image)
    with pytest.raises(InputError, match="calibration"):
        tiny_detector.forward(x[None], QuantConfig(bits=4, activation_bits=6))
    assert tiny_detector.detect(image, QuantConfig(bits=8)) is not None  # weights alone still run


def test_calibration_needs_images(tiny_detector) -> None:
    with pytest.raises(InputError, match="calibration"):
        tiny_detector.calibrate_activations([])


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e6, 1e9])
def test_activation_quant_layer_clips_far_out_of_range_values_exactly(scale) -> None:
    """A layer output far beyond its calibrated range lands exactly on the clip bound."""
    from squeezelens.engine.model.squeezedet import ActivationQuant
    from squeezelens.engine.tf_runtime import import_tf

    tf = import_tf()
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.uniform(-6, 6, 50), rng.uniform(-1, 1, 50) * scale])
    x = tf.constant(values.astype(np.float32)[None])
    layer = ActivationQuant("aq_test")
    layer.build(x.shape)
    step, bits = 2.0**-4, 7  # codes -64..63: values in [-4, 3.9375]
    layer.step.assign(step)
    layer.lo.assign(-(2.0 ** (bits - 1)))
    layer.hi.assign(2.0 ** (bits - 1) - 1)
    layer.enabled.assign(1.0)
    codes = layer(x).numpy().astype(np.float64)[0] / step
    expected = np.clip(np.round(values.astype(np.float32) / step), -64, 63)
    np.testing.assert_array_equal(codes, expected)
    layer.enabled.assign(0.0)
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())  # disabled: a pass-through


@pytest.mark.parametrize("bits", [4, 8, 16])
def test_activation_formats_describe_ristrettos_fixed_point_per_layer(bits) -> None:
    from squeezelens.engine.activations import activation_formats

    ranges = {"conv1": 37.5, "fire2/squeeze1x1": 0.3, "conv12": 4.0, "dead": 0.0}
    formats = activation_formats(ranges, bits)
    assert list(formats) == list(ranges)
    for name, max_abs in ranges.items():
        f = formats[name]
        step = expected_step(max_abs, bits) if max_abs > 0 else 2.0 ** -(bits - 1)
        assert f["bits"] == bits and f["max_abs"] == max_abs
        assert f["step"] == step and f["frac_len"] == -round(math.log2(step))
        assert f["min"] == -(2 ** (bits - 1)) * step and f["max"] == (2 ** (bits - 1) - 1) * step
        assert f["max"] + step >= max_abs  # the largest magnitude fits (up to one step)
