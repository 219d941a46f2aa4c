"""``squeezelens quantize``: write a checkpoint's quantized parameters and their grids.

FILE.npz holds float32 values on the grid, keyed by the official tensor names
(kernels HWIO), loadable as a checkpoint; FILE.json records per tensor (or per
channel) min, max, step, number of levels and the zero index or fractional
length, plus provenance (checkpoint hash, config, seed, versions).

With ``--activation-bits N`` FILE.json also records the calibrated activation
formats: per layer output its largest magnitude and fractional length, from
the calibration images (--calib, else the train split of --kitti-root, else the
bundled sample data).  ``--int8`` is refused: this command writes simulated
grid values; ``export --int8 --out model.tflite`` writes the integer model.
"""

from __future__ import annotations

from pathlib import Path

from cli.common import add_model_arguments, add_quant_arguments, load_detector, say, write_json
from engine.errors import InputError


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


def quantize_document(detector, quant, activations: dict | None = None) -> tuple[dict, dict]:
    """(quantized weights, the JSON document describing their grids and provenance).

    activations: the calibrated activation formats (see :func:`activation_document`), or None.
    """
    from engine.provenance import checkpoint_record, versions
    from engine.quant import quantization_report, quantize_weights

    weights = quantize_weights(detector.float_weights, quant)
    report = quantization_report(detector.float_weights, quant)
    doc = {
        **detector.spec.to_dict(),  # doubles as the checkpoint sidecar: FILE.npz loads as a model
        "checkpoint": checkpoint_record(detector),
        "quant": quant.to_dict(),
        "seed": quant.seed,
        "versions": versions(),
        "tensors": {name: info.to_dict() for name, info in report.items()},
        "activations": activations,
    }
    return weights, doc


def activation_document(detector, bits: int, paths: list, source: str) -> dict:
    """Calibrate the detector's activations on ``paths`` and describe the formats at ``bits``."""
    from engine.activations import activation_formats
    from engine.data.images import read_image_bgr
    from engine.provenance import calibration_record

    ranges = detector.calibrate_activations([read_image_bgr(p) for p in paths])
    return {
        "bits": bits,
        "calibration": calibration_record(paths, source),
        "layers": activation_formats(ranges, bits),
    }


def _calibration(args, quant) -> tuple[list, str] | None:
    """(calibration image paths, where they came from) when activations are quantized."""
    from cli.common import resolve_kitti_root
    from cli.runner import calibration_paths, kitti_train_images

    if not quant.activation_bits:
        if args.calib or args.kitti_root:
            raise InputError("--calib and --kitti-root are only used with --activation-bits N")
        return None
    if args.calib:
        return calibration_paths(args, None), "--calib " + " ".join(args.calib)
    root = resolve_kitti_root(args)
    return calibration_paths(args, kitti_train_images(root)), f"train split of {root}"


def run(args) -> int:
    from engine.checkpoint import save_npz
    from engine.quant.cli_args import quant_config_from_args

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
    activations = None
    if calibration is not None:
        say(f"calibrating activations on {len(calibration[0])} images ({calibration[1]})")
        activations = activation_document(detector, quant.activation_bits, *calibration)
    weights, doc = quantize_document(detector, quant, activations)
    save_npz(args.out, weights)
    write_json(args.out.with_suffix(".json"), doc)
    n = sum(1 for info in doc["tensors"].values() if info["quantized"])
    print(
        f"wrote {args.out} ({n} of {len(weights)} tensors quantized: {quant.describe()}) and {args.out.with_suffix('.json')}"
    )
    return 0
