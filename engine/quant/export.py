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
from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.quant.config import QuantConfig


def quantized_document(
    detector: Any,
    config: QuantConfig,
    activations: dict | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(quantized weights, the JSON document describing their grids and provenance).

    activations: the calibrated activation formats (see :func:`activation_document`), or None.
    The remedies run on the detector's calibration images (``detector.calibration``, whose
    record the document keeps); progress and cancel reach their walk through the network.
    """
    from squeezelens.engine.provenance import checkpoint_record, versions
    from squeezelens.engine.quant.apply import quantization_report
    from squeezelens.engine.quant.remedies.pipeline import grid_config

    weights = detector.quantized_weights(config, progress, cancel)
    model = detector.float_weights
    if config.equalize:
        from squeezelens.engine.quant.remedies.cache import equalized_weights

        model = equalized_weights(detector)
    report = quantization_report(model, grid_config(config))
    calibration = getattr(detector, "calibration", None) if config.needs_calibration else None
    doc = {
        **detector.spec.to_dict(),  # doubles as the checkpoint sidecar: FILE.npz loads as a model
        "checkpoint": checkpoint_record(detector),
        "quant": config.to_dict(),
        "seed": config.seed,
        "calibration": None if calibration is None else calibration.record,
        "versions": versions(),
        "tensors": {name: info.to_dict() for name, info in report.items()},
        "activations": activations,
    }
    return weights, doc


def activation_document(
    detector: Any,
    bits: int,
    calibration: CalibrationSet,
    method: str = "minmax",
    equalized: bool = False,
) -> dict[str, Any]:
    """Calibrate the detector's activations and describe the formats at ``bits``.

    method, equalized: the config's ``activation_range`` and ``equalize`` (the clipping
    magnitudes then come from :meth:`Detector.activation_limits`).  The detector keeps the new
    ranges (``detector.activation_ranges``).
    """
    from squeezelens.engine.activations import activation_formats

    ranges = detector.calibrate_activations(calibration.images(), record=calibration.record())
    if method != "minmax" or equalized:
        ranges = detector.activation_limits(bits, method, equalized)
    return {
        "bits": bits,
        "range": method,
        "calibration": calibration.record(),
        "layers": activation_formats(ranges, bits),
    }


def write_quantized(
    path: str | os.PathLike,
    detector: Any,
    config: QuantConfig,
    calibration: CalibrationSet | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> tuple[Path, Path]:
    """Write FILE.npz and FILE.json (see the module docstring); returns (npz path, json path).

    calibration: the images that calibrate activations and the remedies that need them
    (:mod:`squeezelens.engine.calibration`), required when ``config.activation_bits``,
    bias correction or AdaRound is set and ignored otherwise.  Raises InputError for a
    path not ending in .npz or missing calibration images (before anything is written).
    """
    from squeezelens.engine.checkpoint.writers import save_npz

    npz = Path(path)
    if npz.suffix != ".npz":
        raise InputError("the quantized parameters file must end in .npz", npz)
    if (config.activation_bits or config.needs_calibration) and not calibration:
        raise InputError("activation bits, bias correction and AdaRound need calibration images")
    activations = None
    if config.activation_bits:
        activations = activation_document(detector, config.activation_bits, calibration,
                                          config.activation_range, config.equalize)  # fmt: skip
    elif config.needs_calibration:
        detector.set_calibration(calibration.images(), record=calibration.record())
    weights, doc = quantized_document(detector, config, activations, progress, cancel)
    save_npz(npz, weights)
    side = npz.with_suffix(".json")
    write_json_atomic(side, doc)
    return npz, side
