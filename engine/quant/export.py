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

    npz, js = write_quantized("q6.npz", detector, config, calibration=default_calibration("kitti"))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.calibration import CalibrationSet
from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.config import QuantConfig


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


def activation_document(detector: Any, bits: int, calibration: CalibrationSet) -> dict[str, Any]:
    """Calibrate the detector's activations and describe the formats at ``bits``.

    The detector keeps the new ranges (``detector.activation_ranges``).
    """
    from squeezelens.engine.activations import activation_formats

    ranges = detector.calibrate_activations(calibration.images())
    return {
        "bits": bits,
        "calibration": calibration.record(),
        "layers": activation_formats(ranges, bits),
    }


def write_quantized(
    path: str | os.PathLike,
    detector: Any,
    config: QuantConfig,
    calibration: CalibrationSet | None = None,
) -> tuple[Path, Path]:
    """Write FILE.npz and FILE.json (see the module docstring); returns (npz path, json path).

    calibration: the images that calibrate activations
    (:mod:`squeezelens.engine.calibration`), required when ``config.activation_bits`` is set
    and ignored otherwise.  Raises InputError for a path not ending in .npz or missing
    calibration images (before anything is written).
    """
    from squeezelens.engine.checkpoint.writers import save_npz

    npz = Path(path)
    if npz.suffix != ".npz":
        raise InputError("the quantized parameters file must end in .npz", npz)
    activations = None
    if config.activation_bits:
        if not calibration:
            raise InputError("activation bits need calibration images")
        activations = activation_document(detector, config.activation_bits, calibration)
    weights, doc = quantized_document(detector, config, activations)
    save_npz(npz, weights)
    side = npz.with_suffix(".json")
    write_json_atomic(side, doc)
    return npz, side
