"""``squeezelens quantize``: write a checkpoint's quantized parameters and their grids.

FILE.npz holds float32 values on the grid, keyed by the official tensor names
(kernels HWIO), loadable as a checkpoint; FILE.json records per tensor (or per
channel) min, max, step, number of levels and the zero index or fractional
length, plus provenance (checkpoint hash, config, seed, versions).  The GUI's
export writes the same files (engine.quant.export.write_quantized).

With ``--activation-bits N`` FILE.json also records the calibrated activation
formats: per layer output its largest magnitude and fractional length, from
the calibration images (--calib, else the train split of --kitti-root, else the
bundled sample data).  The remedies (--range mse, --equalize, --bias-correction,
--rounding adaround) apply; those that use calibration images record them.
``--int8`` is refused: this command writes simulated grid values;
``export --int8 --out model.tflite`` writes the integer model.

``--report`` prints, per quantized layer, the share of weights clipped and the
error split into clipping and rounding (MSE and dB beside the SQNR); with
``--out`` it also writes FILE.clipping.csv (per layer and per output channel).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from squeezelens.cli.common import (
    add_model_arguments,
    add_quant_arguments,
    calibration_if,
    load_detector,
    say,
    uses_calibration,
)
from squeezelens.cli.hijacks import warn_range_hijacks
from squeezelens.cli.outputs import check_out_file
from squeezelens.cli.progress import ProgressBar
from squeezelens.engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "quantize",
        help="write quantized parameters (.npz) and their grids (.json)",
        description=__doc__,
    )
    add_output_arguments(p, report=True)
    p.set_defaults(func=run)


def add_output_arguments(p, report: bool = False) -> None:
    """The model, quantization and calibration flags, --kitti-root and --out FILE.npz of the
    commands that write quantized weights (quantize, adaround)."""
    add_model_arguments(p)
    add_quant_arguments(p)
    p.add_argument(
        "--kitti-root",
        metavar="ROOT",
        help="KITTI folder whose train split calibrates --activation-bits and the remedies "
        "(default: --calib, else the bundled sample data)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE.npz",
        help="output .npz (a .json sidecar is written beside it)"
        + ("; needed unless --report is given" if report else ""),
        required=not report,
    )
    if report:
        p.add_argument(
            "--report",
            action="store_true",
            help="print clipping vs rounding per layer (with --out: FILE.clipping.csv, per "
            "channel too)",
        )


def _report(args, detector, quant) -> None:
    from squeezelens.engine.model.spec import layer_names
    from squeezelens.engine.quant.clipping import (
        clipping_report,
        format_clipping_table,
        write_clipping_csv,
    )

    order = layer_names(detector.spec.variant)
    rows = clipping_report(detector.float_weights, quant, order=order)
    print(format_clipping_table(rows))
    if args.out is not None:
        path = write_clipping_csv(args.out.with_suffix(".clipping.csv"), rows)
        print(f"wrote {path}")


def _calibration(args, quant):
    """The CalibrationSet when activations are quantized or a remedy needs images, else None."""
    return calibration_if(args, uses_calibration(quant), flags=("--calib", "--kitti-root"))


def write(args, quant, label: str) -> int:
    """Validate, load, (calibrate,) quantize and write FILE.npz with FILE.json; the
    quantize and adaround commands."""
    from squeezelens.engine.quant.export import write_quantized

    if args.out is not None:
        check_out_file(args.out, suffixes=(".npz",))
    calibration = _calibration(args, quant)  # before the slow model load
    detector = load_detector(args)
    warn_range_hijacks(detector.float_weights, [quant])
    if calibration is not None:
        say(f"calibrating on {len(calibration)} images ({calibration.source})")
    if getattr(args, "report", False):
        _report(args, detector, quant)
    if args.out is None:
        return 0
    start = time.perf_counter()
    bar = ProgressBar(label, unit="layer") if quant.needs_model else None
    npz, side = write_quantized(args.out, detector, quant, calibration, progress=bar)
    tensors = json.loads(side.read_text())["tensors"]
    n = sum(1 for info in tensors.values() if info["quantized"])
    print(f"wrote {npz} ({n} of {len(tensors)} tensors quantized: {quant.describe()}) and "
          f"{side} in {time.perf_counter() - start:.1f} s")  # fmt: skip
    return 0


def run(args) -> int:
    from squeezelens.cli.quant_args import quant_config_from_args

    if args.out is None and not args.report:
        raise InputError("give --out FILE.npz, --report, or both")
    if args.int8:
        raise InputError(
            "quantize writes simulated grid values, not an INT8 model: "
            "use export --int8 --out model.tflite"
        )
    quant = quant_config_from_args(args)  # validate before the slow model load
    return write(args, quant, "remedies")
