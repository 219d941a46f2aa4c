"""The remedies that apply to the INT8 export, and the weights the TFLite converter then gets.

TFLite's full-integer conversion quantizes each kernel per output channel,
symmetrically to int8 (``scale = max|w| / 127``), keeps biases in int32 and
calibrates per-tensor activation ranges itself.  Of the remedies:

* equalization applies (the converter quantizes the equalized float model);
* bias correction applies: computed against that very weight grid
  (:data:`INT8_WEIGHTS`), the corrected float biases become its int32 biases;
* AdaRound applies: the weights are rounded by AdaRound onto that grid, so the
  converter's own rounding keeps them exactly;
* range search (``range``) and the activation settings do not: the converter
  chooses the weight scales (min/max) and the activation ranges itself.

:func:`int8_source` returns a Detector holding the weights to convert (the float
weights when no remedy is set), named by the remedies' cache key, so the INT8
cache (:mod:`engine.int8.cache`) keeps one model per remedy setting.
"""

from __future__ import annotations

import dataclasses

from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.quant.config import QuantConfig

INT8_WEIGHTS = QuantConfig(
    bits=8, scale="channel", range="symmetric", quantize_biases=False, quantize_first_layer=True
)
INT8_FIELDS = ("equalize", "bias_correction", "rounding", "adaround_iterations", "seed")


def int8_config(quant: QuantConfig | None) -> QuantConfig | None:
    """The remedies of ``quant`` on the INT8 weight grid; None when none is set.

    InputError when ``quant`` sets anything else (the converter decides it)."""
    if quant is None:
        return None
    others = [
        f.name
        for f in dataclasses.fields(QuantConfig)
        if f.name not in INT8_FIELDS and getattr(quant, f.name) != getattr(QuantConfig(), f.name)
    ]
    if others or quant.rounding == "stochastic":
        named = ", ".join("--" + n.replace("_", "-") for n in others) or "--rounding stochastic"
        raise InputError(
            f"--int8 runs TFLite's own integer quantization: drop the weight quantization "
            f"flags ({named}); only --equalize, --bias-correction and --rounding adaround apply"
        )
    config = INT8_WEIGHTS.replace(**{n: getattr(quant, n) for n in INT8_FIELDS})
    return config if config.needs_model else None


def int8_source(
    detector,
    quant: QuantConfig | None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
):
    """The Detector whose float weights the INT8 converter takes: ``detector`` itself without
    remedies, else one holding the remedied weights (on ``detector.calibration`` where
    needed), identified by their cache key."""
    config = int8_config(quant)
    if config is None:
        return detector
    from squeezelens.engine.detector import CheckpointInfo, Detector
    from squeezelens.engine.quant.remedies.cache import remedy_key

    weights = detector.quantized_weights(config, progress, cancel)
    key = remedy_key(detector, config)
    path = detector.checkpoint.path if detector.checkpoint else "weights"
    info = CheckpointInfo(f"{path} ({config.describe()})", key, "remedied")
    source = Detector(detector.spec, weights, info)
    source.calibration = detector.calibration
    return source
