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
from squeezelens.engine.model.topology import conv_layers
from squeezelens.engine.quant.apply import (
    TensorPlan,
    plan_quantization,
    quantize_planned,
    quantize_weights,
)
from squeezelens.engine.quant.config import QuantConfig
from squeezelens.engine.quant.remedies.adaround import adaround_layer
from squeezelens.engine.quant.remedies.bias_correction import preactivation_shift
from squeezelens.engine.quant.remedies.equalize import equalize
from squeezelens.engine.quant.remedies.layerwise import LayerInputs, walk


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
    decide = _LayerRemedies(model, config, base, cancel)
    order = [layer.name for layer in conv_layers(variant) if layer.name in decide.layers]
    if order:
        walk(variant, model, inputs, decide, order[-1], progress, cancel)
    return decide.out


class _LayerRemedies:
    """The walk's ``decide``: AdaRound (else the plain rounding) then bias correction of
    each quantized layer; the weights so far in ``out``."""

    def __init__(self, model, config: QuantConfig, base: QuantConfig, cancel) -> None:
        self.model, self.config, self.cancel = model, config, cancel
        self.plans = plan_quantization(model, base)
        self.layers = {p.layer for p in self.plans.values() if p.name.endswith("/kernels")}
        self.adaround = config.rounding == "adaround"
        self.out = dict(model) if self.adaround else quantize_planned(model, self.plans, base)

    def __call__(self, inputs: LayerInputs) -> tuple[np.ndarray, np.ndarray]:
        out, config = self.out, self.config
        kernel, bias = f"{inputs.layer.name}/kernels", f"{inputs.layer.name}/biases"
        if inputs.layer.name not in self.layers:
            return out[kernel], out[bias]
        floats = (self.model[kernel], self.model[bias])
        if self.adaround:
            grids = (self.plans[kernel].grid, _grid(self.plans.get(bias)))
            steps, seed = config.adaround_iterations, config.seed
            out[kernel], out[bias] = adaround_layer(inputs, floats, grids, steps, seed, self.cancel)
        if config.bias_correction:
            shift = preactivation_shift(inputs, floats, (out[kernel], out[bias]))
            out[bias] = (out[bias] - shift).astype(np.float32)
        return out[kernel], out[bias]


def _grid(plan: TensorPlan | None):
    return None if plan is None else plan.grid
