"""``squeezelens export``: float weights as .npz / TF1 checkpoint, or a deployable INT8 .tflite.

The format comes from --format, else from the --out suffix: ``.npz`` -> npz,
``.tflite`` -> INT8 TFLite, no suffix or ``.ckpt*`` -> TF1 checkpoint prefix.
``--int8`` (or ``--format tflite``) converts with TFLite full-integer
post-training quantization, calibrated on --calib images (default: the train
split of --kitti-root, else the bundled sample data), and writes the model
plus a ``<out>.json`` sidecar (classes, anchors, input size, BGR means, I/O
quantization) that a deployment needs to pre- and post-process, with its
provenance (checkpoint hash, conversion settings, calibration set, versions).
"""

from __future__ import annotations

import time
from pathlib import Path

from squeezelens.cli.common import (
    add_calibration_arguments,
    add_model_arguments,
    calibration_source,
    load_detector,
    say,
)
from squeezelens.cli.outputs import check_out_file
from squeezelens.cli.progress import ProgressBar
from squeezelens.engine.atomic import copy_atomic
from squeezelens.engine.errors import InputError

FORMATS = ("npz", "tf1", "tflite")


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="export weights (npz, TF1) or an INT8 .tflite", description=__doc__
    )
    add_model_arguments(p)
    p.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="output file or TF1 prefix"
    )
    p.add_argument(
        "--format", choices=FORMATS, help="output format (default: from the --out suffix)"
    )
    p.add_argument("--int8", action="store_true", help="write the full-integer INT8 TFLite model")
    p.add_argument(
        "--kitti-root",
        metavar="ROOT",
        help="without --calib, calibrate on this KITTI folder's train split "
        "(default: the bundled sample data)",
    )
    add_calibration_arguments(p)
    p.set_defaults(func=run)


def _suffix_format(out: Path) -> str | None:
    """The format an --out suffix names (None: no suffix or an unknown one)."""
    suffix = out.suffix.lower()
    if suffix in (".npz", ".tflite"):
        return suffix[1:]
    if suffix == ".index" or suffix.startswith(".ckpt"):
        return "tf1"
    return None


def resolve_format(out: Path, fmt: str | None, int8: bool) -> str:
    """The output format from the flags and the --out suffix; InputError when they disagree."""
    if int8 and fmt not in (None, "tflite"):
        raise InputError(f"--int8 writes a .tflite model, not --format {fmt}")
    chosen = "tflite" if int8 else fmt
    implied = _suffix_format(out)
    if chosen and implied and implied != chosen:
        raise InputError(f"--out {out.name} names a {implied} file, but the export is {chosen}")
    if chosen or implied:
        return chosen or implied
    if out.suffix == "":
        return "tf1"
    raise InputError(f"cannot tell the export format from the suffix {out.suffix!r}: pass --format")


def export_int8(detector, args, calibration) -> int:
    """Convert (or reuse the cached conversion), copy it to --out, write the sidecar, report sizes.

    calibration: the CalibrationSet (engine.calibration) of --calib / --kitti-root.
    """
    from squeezelens.engine.checkpoint.writers import write_sidecar
    from squeezelens.engine.int8 import Int8Detector

    say(f"INT8: {len(calibration)} calibration images, {calibration.source} "
        "(conversions are cached per checkpoint, size and set)")  # fmt: skip
    images = calibration.images()
    start = time.perf_counter()
    int8 = Int8Detector.from_detector(
        detector, images, progress=ProgressBar("INT8 conversion", unit="step")
    )
    out = copy_atomic(int8.model_path, args.out)
    write_sidecar(out, detector.spec, _sidecar_extra(detector, int8, calibration))
    report = int8.size_report()
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    print(report.format())
    return 0


def _sidecar_extra(detector, int8, calibration) -> dict:
    """What a deployment needs beside the model, and where the model came from."""
    from squeezelens.engine.provenance import checkpoint_record, versions

    in_scale, in_zero = int8.input_quantization
    out_scale, out_zero = int8.output_quantization
    return {
        "format": "tflite-int8",
        "bgr_means": list(detector.spec.bgr_means),
        "input_quantization": {"scale": float(in_scale), "zero_point": int(in_zero)},
        "output_quantization": {"scale": float(out_scale), "zero_point": int(out_zero)},
        "checkpoint_sha256": detector.checkpoint.sha256 if detector.checkpoint else None,
        "calibration_images": len(calibration),
        "provenance": {
            "checkpoint": checkpoint_record(detector),
            "config": {"int8": True, "method": "TFLite full-integer post-training quantization",
                       "calibration": calibration.record()},
            "versions": versions(),
        },
    }  # fmt: skip


def run(args) -> int:
    fmt = resolve_format(args.out, args.format, args.int8)
    check_out_file(args.out)
    if (args.calib or args.kitti_root) and fmt != "tflite":
        raise InputError("--calib and --kitti-root are only used with --int8")
    # before the slow load
    calibration = calibration_source(args).resolve() if fmt == "tflite" else None
    detector = load_detector(args)
    if calibration is not None:
        return export_int8(detector, args, calibration)
    from squeezelens.engine.checkpoint import save_npz, save_tf1

    weights, spec = detector.float_weights, detector.spec
    if fmt == "npz":
        path = save_npz(args.out, weights, spec)
    else:
        out = args.out.with_suffix("") if args.out.suffix == ".index" else args.out
        path = save_tf1(out, weights, spec)
    mb = sum(v.nbytes for v in weights.values()) / 2**20
    print(f"wrote {path} ({fmt}, {detector.num_parameters:,} float32 parameters, {mb:.2f} MB)")
    return 0
