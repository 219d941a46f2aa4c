"""Empirical bias correction (Nagel et al. 2019, "Data-Free Quantization", section 4.2).

Quantization errors in a layer's kernel (and in the inputs the quantized earlier
layers hand it) shift the mean of its pre-activations.  Layer by layer in forward
order, with every earlier layer already quantized and corrected, the mean
difference between the quantized and the float pre-activations over the
calibration images (and all positions) is subtracted from each output channel's
bias, so that on those images the quantized layer's mean pre-activation equals
the float one.  The corrected biases are off the weight grid: they keep the
precision the correction needs, as 32-bit biases do in integer deployments.
Only the layers the config quantizes are corrected.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.quant.remedies.layerwise import LayerInputs, mean_preactivation, walk


def preactivation_shift(
    inputs: LayerInputs,
    float_params: tuple[np.ndarray, np.ndarray],
    quant_params: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Mean quantized minus mean float pre-activation per output channel (float64); the
    corrected bias is the quantized one minus it."""
    mean_f = mean_preactivation(inputs.x_float, inputs.layer, *float_params)
    mean_q = mean_preactivation(inputs.x_quant, inputs.layer, *quant_params)
    return mean_q - mean_f


def correct_biases(
    variant: str,
    float_weights: Mapping[str, np.ndarray],
    quantized: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    layers: set[str],
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, np.ndarray]:
    """``quantized`` with the biases of ``layers`` corrected on the calibration ``inputs``
    (preprocessed images (N, H, W, 3)); ``float_weights`` give the float path."""
    out = dict(quantized)

    def decide(inputs: LayerInputs):
        kernel, bias = f"{inputs.layer.name}/kernels", f"{inputs.layer.name}/biases"
        if inputs.layer.name in layers:
            floats = (float_weights[kernel], float_weights[bias])
            shift = preactivation_shift(inputs, floats, (out[kernel], out[bias]))
            out[bias] = (out[bias] - shift).astype(np.float32)
        return out[kernel], out[bias]

    last = _last(variant, layers)
    if last is not None:
        walk(variant, float_weights, inputs, decide, last, progress, cancel)
    return out


def _last(variant: str, layers: set[str]) -> str | None:
    """The last of ``layers`` in forward order (None when empty)."""
    from squeezelens.engine.model.topology import conv_layers

    names = [layer.name for layer in conv_layers(variant) if layer.name in layers]
    return names[-1] if names else None
