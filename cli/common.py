"""Arguments and loading shared by the subcommands (model, dataset, quantization)."""

from __future__ import annotations

import argparse
import re
import sys

from squeezelens.engine.errors import InputError


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 1248x384, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--checkpoint", required=required,
        help="TF1 prefix/.index/.data, a folder with one checkpoint, .h5 or .npz "
        "(default: the bundled sample model)",
    )  # fmt: skip
    parser.add_argument(
        "--input-size", type=parse_size, metavar="WxH", help="override the network input size"
    )


PROTOCOL_HELP = "official devkit, or the copy shipped with SqueezeDet (keeps short detections)"


def add_scoring_arguments(parser: argparse.ArgumentParser, protocol_help: str = PROTOCOL_HELP,
                          split_help: str = "split to score (default val)") -> None:  # fmt: skip
    """--kitti-root, --split and --protocol of the commands that score a KITTI split."""
    parser.add_argument(
        "--kitti-root", metavar="ROOT", help="KITTI object folder (default: bundled sample data)"
    )
    parser.add_argument("--split", default="val", help=split_help)
    parser.add_argument("--protocol", choices=("official", "squeezedet"), default="official",
                        help=protocol_help)  # fmt: skip


def add_quant_arguments(parser: argparse.ArgumentParser, multi: bool = False) -> None:
    """The quantization flags shared by detect, evaluate, quantize and sweep."""
    from squeezelens.cli.quant_args import add_config_arguments

    add_config_arguments(parser, multi=multi)
    parser.add_argument(
        "--int8", action="store_true", help="run the integer-only INT8 TFLite model"
    )
    add_calibration_arguments(parser)


def add_calibration_arguments(parser: argparse.ArgumentParser) -> None:
    """--calib and --calib-count: the calibration images of activation bits and INT8."""
    from squeezelens.engine.calibration import CALIBRATION_COUNT, CALIBRATION_RULE

    group = parser.add_argument_group("calibration", f"Calibration images: {CALIBRATION_RULE}.")
    group.add_argument(
        "--calib", nargs="+", metavar="PATH", help="calibration images (files or folders)"
    )
    group.add_argument("--calib-count", type=int, default=CALIBRATION_COUNT, metavar="N",
                       help=f"calibration images to use (default {CALIBRATION_COUNT})")  # fmt: skip


def calibration_source(args):
    """The CalibrationSource of --calib, --calib-count and the command's --kitti-root."""
    from squeezelens.engine.calibration import CalibrationSource

    return CalibrationSource(tuple(args.calib or ()), getattr(args, "kitti_root", None),
                             args.calib_count)  # fmt: skip


CALIBRATED_BY = "--activation-bits N, --bias-correction or --rounding adaround"


def uses_calibration(quant) -> bool:
    """Whether a config needs calibration images (activation bits, bias correction, AdaRound)."""
    return quant is not None and bool(quant.activation_bits or quant.needs_calibration)


def calibration_if(args, needed: bool, used_with: str = CALIBRATED_BY, flags=("--calib",)):
    """The CalibrationSet of the flags when ``needed``; else None, refusing calibration
    ``flags`` that were given but would do nothing (one line naming what uses them)."""
    if needed:
        return calibration_source(args).resolve()
    if any(getattr(args, flag.lstrip("-").replace("-", "_"), None) for flag in flags):
        verb = "is" if len(flags) == 1 else "are"
        raise InputError(f"{' and '.join(flags)} {verb} only used with {used_with}")
    return None


def say(message: str) -> None:
    print(message, file=sys.stderr)


def resolve_checkpoint(args) -> str:
    if args.checkpoint:
        return args.checkpoint
    from squeezelens.engine.samples import default_checkpoint

    path = default_checkpoint()
    if path is None:
        raise InputError("no --checkpoint given and this install has no bundled sample model")
    say(f"using the bundled sample model {path}")
    return str(path)


def resolve_kitti_root(args, attr: str = "kitti_root") -> str:
    value = getattr(args, attr, None)
    if value:
        return value
    from squeezelens.engine.samples import default_kitti_root

    root = default_kitti_root()
    if root is None:
        raise InputError("no --kitti-root given and this install has no bundled sample data")
    say(f"using the bundled sample data {root}")
    return str(root)


def load_detector(args):
    from squeezelens.engine.detector import Detector

    return Detector.from_checkpoint(resolve_checkpoint(args), input_size=args.input_size)
