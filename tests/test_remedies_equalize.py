"""Cross-layer equalization keeps the float function and evens the channel ranges out."""

from __future__ import annotations

import numpy as np
import pytest

from squeezelens.engine.model.spec import ArchSpec, expected_shapes, layer_names
from squeezelens.engine.model.topology import conv_layers, input_junctions, junctions
from squeezelens.engine.quant.remedies.equalize import equalization_scales, equalize
from tests.conftest import random_weights


@pytest.mark.parametrize("variant", ["squeezedet", "squeezedet+"])
def test_junctions_wire_every_layer_with_matching_channels(variant) -> None:
    shapes = expected_shapes(ArchSpec(variant=variant))
    assert [layer.name for layer in conv_layers(variant)] == layer_names(variant)
    feeds = input_junctions(variant)
    assert set(feeds) == set(layer_names(variant)) - {"conv1"}
    for junction in junctions(variant):
        channels = sum(shapes[f"{p}/kernels"][-1] for p in junction.producers)
        for consumer in junction.consumers:
            assert shapes[f"{consumer}/kernels"][2] == channels


def uneven_weights(spec, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights whose output channels differ in scale by up to 100x (and one dead)."""
    weights = random_weights(spec, seed=seed, scale=0.1)
    rng = np.random.default_rng(seed)
    for name in list(weights):
        if name.endswith("/kernels"):
            gain = np.exp(rng.uniform(-2.3, 2.3, weights[name].shape[-1])).astype(np.float32)
            weights[name] = weights[name] * gain
            weights[name.replace("kernels", "biases")] *= gain
    weights["fire3/squeeze1x1/kernels"][..., 0] = 0.0  # a dead channel keeps scale 1
    return weights


def spread(kernel: np.ndarray) -> float:
    """Largest over smallest output-channel range (live channels)."""
    r = np.abs(kernel).max(axis=(0, 1, 2))
    return float(r.max() / r[r > 0].min())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "size"), [("squeezedet", (256, 96)), ("squeezedet+", (224, 96))]
)
def test_equalization_keeps_the_convdet_output(variant, size) -> None:
    from squeezelens.engine.detector import Detector

    spec = ArchSpec(variant=variant).with_input_size(size)
    weights = uneven_weights(spec)
    equalized = equalize(weights, variant)
    assert all(np.all(np.isfinite(v)) for v in equalized.values())
    x = np.random.default_rng(1).normal(0, 60, (2, size[1], size[0], 3)).astype(np.float32)
    before = Detector(spec, weights).forward(x)
    after = Detector(spec, equalized).forward(x)
    assert np.abs(after - before).max() <= 1e-4 * np.abs(before).max()
    for layer in ("conv1", "fire2/squeeze1x1", "fire5/expand3x3", "fire10/squeeze1x1"):
        name = f"{layer}/kernels"
        assert spread(equalized[name]) < 0.5 * spread(weights[name])
    assert not np.array_equal(equalized["conv12/kernels"], weights["conv12/kernels"])


def test_scales_balance_the_two_sides_of_a_junction() -> None:
    spec = ArchSpec().with_input_size((256, 96))
    weights = uneven_weights(spec)
    junction = junctions("squeezedet")[1]  # fire2/squeeze1x1 -> its two expands
    scale = equalization_scales(weights, junction)
    r1 = np.abs(weights["fire2/squeeze1x1/kernels"]).max(axis=(0, 1, 2)) / scale
    r2 = np.max([np.abs(weights[f"fire2/{e}/kernels"]).max(axis=(0, 1, 3))
                 for e in ("expand1x1", "expand3x3")], axis=0) * scale  # fmt: skip
    np.testing.assert_allclose(r1, r2, rtol=1e-6)
    dead = junctions("squeezedet")[3]  # fire3/squeeze1x1 (channel 0 all zero) -> expands
    assert equalization_scales(weights, dead)[0] == 1.0
