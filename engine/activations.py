"""Activation quantization: per-layer dynamic fixed point calibrated on images.

Every layer output (after its ReLU, and the raw ConvDet output) gets a
power-of-two step chosen from the largest magnitude seen on calibration
images, as Ristretto does: integer length il = ceil(log2(max|a|)) + 1 (sign
bit included), fractional length fl = bits - il, step = 2^-fl, values
clipped to [-2^(bits-1), 2^(bits-1) - 1] steps.  The magnitude that fixes the
step is the largest one seen (``activation_range="minmax"``) or one chosen from
the histogram of |a| over the calibration images (``percentile:P``, ``mse``,
``entropy``: :func:`activation_limits`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

HISTOGRAM_BINS = 2048  # as TensorRT's entropy calibration


def dynamic_fixed_point(max_abs: float, bits: int) -> tuple[float, float, float]:
    """(step, lo, hi) of a signed dynamic fixed-point format that fits max_abs.

    lo and hi are integer codes: a value v is represented as clip(round(v/step), lo, hi) * step.
    """
    il = math.ceil(math.log2(max_abs)) + 1 if max_abs > 0 else 1
    fl = bits - il
    return 2.0**-fl, float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)


def fractional_length(max_abs: float, bits: int) -> int:
    """The fractional length fl of dynamic_fixed_point (step = 2^-fl)."""
    return -int(round(math.log2(dynamic_fixed_point(max_abs, bits)[0])))


def _probe(detector, inputs: np.ndarray, progress=None):
    """Each calibration input's layer outputs (official name -> array), one input at a time,
    with whatever weights the detector holds."""
    from squeezelens.engine.model.spec import layer_names

    if len(inputs) == 0:
        from squeezelens.engine.errors import InputError

        raise InputError("no calibration images")
    names = layer_names(detector.spec.variant)
    for i, x in enumerate(inputs):
        outs = detector.graph.probe(x[None], training=False)
        yield dict(zip(names, (np.abs(t.numpy()) for t in outs), strict=True))
        if progress:
            progress(i + 1, len(inputs))


def activation_ranges(
    detector, inputs: np.ndarray, progress: Callable[[int, int], None] | None = None
) -> dict[str, float]:
    """Largest |activation| per layer output over calibration inputs (the weights the
    detector holds).  inputs: preprocessed images (N, h, w, 3).  Returns official layer
    name -> max |a|."""
    maxima: dict[str, float] = {}
    for outs in _probe(detector, inputs, progress):
        for name, a in outs.items():
            maxima[name] = max(maxima.get(name, 0.0), float(a.max()))
    return maxima


def activation_limits(
    detector, inputs: np.ndarray, method: str, bits: int, tops: dict[str, float] | None = None
) -> dict[str, float]:
    """Each layer output's clipping magnitude under ``method`` (``QuantConfig.activation_range``):
    the largest |a| (``tops`` when already measured on these inputs with these weights), then
    (unless minmax) a pass counting |a| in :data:`HISTOGRAM_BINS` equal bins up to it, from
    which :func:`engine.quant.remedies.ranges.activation_clip` chooses."""
    from squeezelens.engine.quant.remedies.ranges import activation_clip

    if tops is None:
        tops = activation_ranges(detector, inputs)
    if method == "minmax":
        return tops
    hists = {name: np.zeros(HISTOGRAM_BINS, np.int64) for name in tops}
    for outs in _probe(detector, inputs):
        for name, a in outs.items():
            if tops[name] > 0:
                scale = HISTOGRAM_BINS / tops[name]
                idx = np.minimum((a.reshape(-1) * scale).astype(np.int64), HISTOGRAM_BINS - 1)
                hists[name] += np.bincount(idx, minlength=HISTOGRAM_BINS)
    return {name: activation_clip(method, bits, hists[name], tops[name]) for name in tops}


def activation_formats(ranges: dict[str, float], bits: int) -> dict[str, dict]:
    """Per layer output, the calibrated fixed-point format at ``bits``, JSON-ready.

    ranges: :func:`activation_ranges` output (layer -> max |a|).  Each entry:
    ``max_abs``, ``bits``, ``frac_len`` (step = 2^-frac_len), ``step`` and the
    representable ``min`` / ``max`` values.
    """
    formats = {}
    for name, max_abs in ranges.items():
        step, lo, hi = dynamic_fixed_point(max_abs, bits)
        formats[name] = {
            "max_abs": float(max_abs),
            "bits": int(bits),
            "frac_len": fractional_length(max_abs, bits),
            "step": step,
            "min": lo * step,
            "max": hi * step,
        }
    return formats
