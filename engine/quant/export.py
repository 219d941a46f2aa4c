"""Writing a detector's quantized parameters: the ``quantize`` command's and the GUI's format.

FILE.npz holds float32 values on the grid, keyed by the official tensor names
(kernels HWIO), loadable as a checkpoint; FILE.json doubles as its sidecar
(input size, classes, anchors) and records per tensor (or per channel) min,
max, step, number of levels and the zero index or fractional length (see
:mod:`engine.quant.report`), plus provenance: checkpoint path and hash, the
config, the seed and the library versions.  With activation bits it also
records the calibrated activation formats (per layer output its largest
magnitude and fractional length) and which images calibrated them.

Command line and GUI both call :func:`write_quantized`::

    npz, js = write_quantized("q6.npz", detector, config, calibration=(paths, "train split"))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.config import QuantConfig

Calibration = tuple[Sequence[str | os.PathLike], str]  # (image paths, where they came from)


def quantized_document(
    detector: Any, config: QuantConfig, activations: dict | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(quantized weights, the JSON document describing their grids and provenance).

    activations: the calibrated activation formats (see :func:`activation_document`), or None.
    """
    from squeezelens.engine.provenance import checkpoint_record, versions
    from squeezelens.engine.quant.apply import quantization_report, quantize_weights

    weights = quantize_weights(detector.float_weights, config)
    report = quantization_report(detector.float_weights, config)
    doc = {
        **detector.spec.to_dict(),  # doubles as the checkpoint sidecar: FILE.npz loads as a model
        "checkpoint": checkpoint_record(detector),
        "quant": config.to_dict(),
        "seed": config.seed,
        "versions": versions(),
        "tensors": {name: info.to_dict() for name, info in report.items()},
        "activations": activations,
    }
    return weights, doc


def activation_document(
    detector: Any, bits: int, paths: Sequence[str | os.PathLike], source: str
) -> dict[str, Any]:
    """Calibrate the detector's activations on ``paths`` and describe the formats at ``bits``.

    The detector keeps the new ranges (``detector.activation_ranges``).
    """
    from squeezelens.engine.activations import activation_formats
    from squeezelens.engine.data.images import read_image_bgr
    from squeezelens.engine.provenance import calibration_record

    paths = list(paths)
    ranges = detector.calibrate_activations([read_image_bgr(p) for p in paths])
    return {
        "bits": bits,
        "calibration": calibration_record(paths, source),
        "layers": activation_formats(ranges, bits),
    }


def write_quantized(
    path: str | os.PathLike,
    detector: Any,
    config: QuantConfig,
    calibration: Calibration | None = None,
) -> tuple[Path, Path]:
    """Write FILE.npz and FILE.json (see the module docstring); returns (npz path, json path).

    calibration: (image paths, a one-line description of where they came
    from), required when ``config.activation_bits`` is set and ignored
    otherwise.  Raises InputError for a path not ending in .npz or missing
    calibration images (before anything is written).
    """
    from squeezelens.engine.checkpoint.writers import save_npz

    npz = Path(path)
    if npz.suffix != ".npz":
        raise InputError("the quantized parameters file must end in .npz", npz)
    activations = None
    if config.activation_bits:
        paths = list(calibration[0]) if calibration else []
        if not paths:
            raise InputError("activation bits need calibration images")
        activations = activation_document(detector, config.activation_bits, paths, calibration[1])
    weights, doc = quantized_document(detector, config, activations)
    save_npz(npz, weights)
    side = npz.with_suffix(".json")
    write_json_atomic(side, doc)
    return npz, side
