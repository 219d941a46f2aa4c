"""The remedies in order: float weights (+ calibration images) -> quantized weights.

1. cross-layer equalization of the float weights (``config.equalize``);
2. the grids, with the searched ranges (``config.range``, in
   :func:`engine.quant.apply.plan_quantization`);
3. rounding: nearest or stochastic (:func:`engine.quant.apply.quantize_weights`), or
   AdaRound layer by layer on the calibration images;
4. bias correction layer by layer on the calibration images (``config.bias_correction``).

Steps 3 (AdaRound) and 4 share one walk through the network
(:func:`engine.quant.remedies.layerwise.walk`): each layer is rounded, then its bias
corrected, before the next layer's inputs are computed.  Activations stay float
during the walk (the remedies fix the weights; activation ranges are calibrated
separately).  Deterministic for a given config and calibration set.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.model.topology import ConvLayer, conv_layers
from squeezelens.engine.quant.apply import TensorPlan, plan_quantization, quantize_weights
from squeezelens.engine.quant.config import QuantConfig
from squeezelens.engine.quant.remedies.adaround import adaround_layer
from squeezelens.engine.quant.remedies.bias_correction import corrected_bias
from squeezelens.engine.quant.remedies.equalize import equalize
from squeezelens.engine.quant.remedies.layerwise import walk


def grid_config(config: QuantConfig) -> QuantConfig:
    """The config without the remedies that need the model: the grids and plain rounding
    that :func:`~engine.quant.apply.quantize_weights` does (AdaRound planned as nearest)."""
    rounding = "nearest" if config.rounding == "adaround" else config.rounding
    return config.replace(equalize=False, bias_correction=False, rounding=rounding)


def model_weights(
    float_weights: Mapping[str, np.ndarray], variant: str, config: QuantConfig
) -> Mapping[str, np.ndarray]:
    """The float weights the config quantizes: equalized when ``config.equalize``."""
    return equalize(float_weights, variant) if config.equalize else float_weights


def remedied_weights(
    float_weights: Mapping[str, np.ndarray],
    variant: str,
    config: QuantConfig,
    inputs: np.ndarray | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    model: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Quantized weights under every setting of ``config``, remedies included.

    inputs: the preprocessed calibration images (N, H, W, 3) float32, needed by bias
    correction and AdaRound (``config.needs_calibration``).  model: the float weights
    the config quantizes when already computed (:func:`model_weights`).
    progress(done, total): layers walked.  Raises InputError without the images it needs.
    """
    model = model_weights(float_weights, variant, config) if model is None else model
    base = grid_config(config)
    if not config.needs_calibration:
        return quantize_weights(model, base)
    if inputs is None or len(inputs) == 0:
        raise InputError("bias correction and AdaRound need calibration images (--calib PATH)")
    adaround = config.rounding == "adaround"
    plans = plan_quantization(model, base) if adaround else None
    out = dict(model) if adaround else quantize_weights(model, base)
    layers = _quantized_layers(model, base)

    def decide(layer: ConvLayer, x_f: np.ndarray, x_q: np.ndarray):
        kernel, bias = f"{layer.name}/kernels", f"{layer.name}/biases"
        if layer.name not in layers:
            return out[kernel], out[bias]
        floats = (model[kernel], model[bias])
        if adaround:
            grids = (plans[kernel].grid, _grid(plans.get(bias)))
            out[kernel], out[bias] = adaround_layer(
                layer, x_f, x_q, floats, grids, config.adaround_iterations, config.seed, cancel
            )
        if config.bias_correction:
            out[bias] = corrected_bias(layer, x_f, x_q, floats, (out[kernel], out[bias]))
        return out[kernel], out[bias]

    order = [layer.name for layer in conv_layers(variant) if layer.name in layers]
    if order:
        walk(variant, model, inputs, decide, order[-1], progress, cancel)
    return out


def _grid(plan: TensorPlan | None):
    return None if plan is None else plan.grid


def _quantized_layers(model: Mapping[str, np.ndarray], config: QuantConfig) -> set[str]:
    """The layers whose kernels the config rounds."""
    plans = plan_quantization(model, config)
    return {plan.layer for plan in plans.values() if plan.name.endswith("/kernels")}
