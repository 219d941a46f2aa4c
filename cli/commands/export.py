"""``squeezelens export``: float weights as .npz / TF1 checkpoint, or a deployable INT8 .tflite.

The format comes from --format, else from the --out suffix: ``.npz`` -> npz,
``.tflite`` -> INT8 TFLite, no suffix or ``.ckpt*`` -> TF1 checkpoint prefix.
``--int8`` (or ``--format tflite``) converts with TFLite full-integer
post-training quantization, calibrated on --calib images (default: the train
split of --kitti-root, else the bundled sample data), and writes the model
plus a ``<out>.json`` sidecar (classes, anchors, input size, BGR means, I/O
quantization) that a deployment needs to pre- and post-process, with its
provenance (checkpoint hash, conversion settings, calibration set, versions).
With --int8, --equalize, --bias-correction and --rounding adaround shape the
weights the converter quantizes (squeezelens.engine.quant.remedies.int8); the
sidecar records them.
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
    add_int8_remedy_arguments(p)
    p.add_argument(
        "--kitti-root",
        metavar="ROOT",
        help="without --calib, calibrate on this KITTI folder's train split "
        "(default: the bundled sample data)",
    )
    add_calibration_arguments(p)
    p.set_defaults(func=run)


def add_int8_remedy_arguments(p) -> None:
    """The remedies that shape the weights the INT8 converter quantizes."""
    group = p.add_argument_group("remedies (with --int8)")
    for flag, what in (
        ("equalize", "cross-layer equalization before converting"),
        ("bias-correction", "bias correction against TFLite's int8 weight grid"),
    ):
        group.add_argument(f"--{flag}", dest=f"quant_{flag.replace('-', '_')}", nargs="?",
                           const="on", metavar="on|off", help=what)  # fmt: skip
    group.add_argument(
        "--rounding",
        dest="quant_rounding",
        metavar="adaround",
        help="adaround: AdaRound onto TFLite's int8 weight grid",
    )
    group.add_argument("--adaround-iterations", dest="quant_adaround_iterations", metavar="N")
    group.add_argument("--seed", dest="quant_seed", metavar="S", help="AdaRound's seed")
    p.set_defaults(quant_multi=False)  # fmt: skip


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


def export_int8(detector, args, calibration, quant=None) -> int:
    """Convert (or reuse the cached conversion), copy it to --out, write the sidecar, report sizes.

    calibration: the CalibrationSet (engine.calibration) of --calib / --kitti-root;
    quant: the remedies flags (engine.quant.remedies.int8), or None.
    """
    from squeezelens.cli.runner import convert_int8
    from squeezelens.engine.checkpoint.writers import write_sidecar
    from squeezelens.engine.quant.remedies.int8 import int8_config

    say(f"INT8: {len(calibration)} calibration images, {calibration.source} "
        "(conversions are cached per checkpoint, remedies, size and set)")  # fmt: skip
    start = time.perf_counter()
    int8 = convert_int8(detector, quant, calibration)
    out = copy_atomic(int8.model_path, args.out)
    extra = _sidecar_extra(detector, int8, calibration)
    remedies = int8_config(quant)
    extra["provenance"]["config"]["remedies"] = None if remedies is None else remedies.to_dict()
    write_sidecar(out, detector.spec, extra)
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
    from squeezelens.cli.runner import quant_from_args
    from squeezelens.engine.quant.remedies.int8 import int8_config

    fmt = resolve_format(args.out, args.format, args.int8)
    check_out_file(args.out)
    if (args.calib or args.kitti_root) and fmt != "tflite":
        raise InputError("--calib and --kitti-root are only used with --int8")
    quant = quant_from_args(args)
    if quant is not None and fmt != "tflite":
        raise InputError("the remedies apply to --int8 (quantize / adaround write the others)")
    int8_config(quant)  # before the slow load
    calibration = calibration_source(args).resolve() if fmt == "tflite" else None
    detector = load_detector(args)
    if calibration is not None:
        return export_int8(detector, args, calibration, quant)
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
