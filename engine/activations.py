"""Activation quantization: per-layer dynamic fixed point calibrated on images.

Every layer output (after its ReLU, and the raw ConvDet output) gets a
power-of-two step chosen from the largest magnitude seen on calibration
images, as Ristretto does: integer length il = ceil(log2(max|a|)) + 1 (sign
bit included), fractional length fl = bits - il, step = 2^-fl, values
clipped to [-2^(bits-1), 2^(bits-1) - 1] steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


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


def activation_ranges(
    detector, images: Sequence[np.ndarray], progress: Callable[[int, int], None] | None = None
) -> dict[str, float]:
    """Largest |activation| per layer output over calibration images (float weights).

    images: decoded BGR images (H, W, 3).  Returns official layer name -> max |a|.
    """
    from squeezelens.engine.model.spec import layer_names

    if not images:
        from squeezelens.engine.errors import InputError

        raise InputError("no calibration images")
    names = layer_names(detector.spec.variant)
    maxima = dict.fromkeys(names, 0.0)
    for i, image in enumerate(images):
        x, _ = detector.preprocess(image)
        outs = detector.graph.probe(x[None], training=False)
        for name, t in zip(names, outs):
            maxima[name] = max(maxima[name], float(np.max(np.abs(t.numpy()))))
        if progress:
            progress(i + 1, len(images))
    return maxima


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
