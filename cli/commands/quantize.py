"""``squeezelens quantize``: write a checkpoint's quantized parameters and their grids.

FILE.npz holds float32 values on the grid, keyed by the official tensor names
(kernels HWIO), loadable as a checkpoint; FILE.json records per tensor (or per
channel) min, max, step, number of levels and the zero index or fractional
length, plus provenance (checkpoint hash, config, seed, versions).  The GUI's
export writes the same files (engine.quant.export.write_quantized).

With ``--activation-bits N`` FILE.json also records the calibrated activation
formats: per layer output its largest magnitude and fractional length, from
the calibration images (--calib, else the train split of --kitti-root, else the
bundled sample data).  ``--int8`` is refused: this command writes simulated
grid values; ``export --int8 --out model.tflite`` writes the integer model.
"""

from __future__ import annotations

import json
from pathlib import Path

from squeezelens.cli.common import (
    add_model_arguments,
    add_quant_arguments,
    calibration_source,
    load_detector,
    say,
    warn_range_hijacks,
)
from squeezelens.engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "quantize",
        help="write quantized parameters (.npz) and their grids (.json)",
        description=__doc__,
    )
    add_model_arguments(p)
    add_quant_arguments(p)
    p.add_argument(
        "--kitti-root",
        metavar="ROOT",
        help="KITTI folder whose train split calibrates --activation-bits (default: --calib, "
        "else the bundled sample data)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE.npz",
        help="output .npz (a .json is written beside it)",
    )
    p.set_defaults(func=run)


def _calibration(args, quant):
    """The CalibrationSet when activations are quantized, else None."""
    if not quant.activation_bits:
        if args.calib or args.kitti_root:
            raise InputError("--calib and --kitti-root are only used with --activation-bits N")
        return None
    return calibration_source(args).resolve()


def run(args) -> int:
    from squeezelens.cli.quant_args import quant_config_from_args
    from squeezelens.engine.quant.export import write_quantized

    if args.out.suffix != ".npz":
        raise InputError("--out must end in .npz", args.out)
    if args.int8:
        raise InputError(
            "quantize writes simulated grid values, not an INT8 model: "
            "use export --int8 --out model.tflite"
        )
    quant = quant_config_from_args(args)  # validate before the slow model load
    calibration = _calibration(args, quant)
    detector = load_detector(args)
    warn_range_hijacks(detector, [quant])
    if calibration is not None:
        say(f"calibrating activations on {len(calibration)} images ({calibration.source})")
    npz, side = write_quantized(args.out, detector, quant, calibration)
    tensors = json.loads(side.read_text())["tensors"]
    n = sum(1 for info in tensors.values() if info["quantized"])
    print(f"wrote {npz} ({n} of {len(tensors)} tensors quantized: {quant.describe()}) and {side}")
    return 0
