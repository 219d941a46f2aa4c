"""``squeezelens compare-int8``: the deployed INT8 model vs float and vs its simulation, per layer.

Converts the checkpoint to a full-integer TFLite model (cached, calibrated as
``export --int8``: --calib, else the train split of --kitti-root, else the
bundled sample data), runs it in LiteRT keeping every intermediate tensor, and
compares each layer's dequantized output with the float model and with the
INT8 model simulated in float (its own int8 weights, int32 biases and
activation scales).  The table gives SQNR and cosine per layer, the share of
values where deployment and simulation differ by more than one step, the
layer's own mismatch (recomputed from its deployed input) and the first layer
where they part (more than 1% of values off by more than one step).
"""

from __future__ import annotations

from pathlib import Path

from squeezelens.cli.common import (
    add_calibration_arguments,
    add_model_arguments,
    calibration_source,
    load_detector,
    say,
)
from squeezelens.cli.outputs import check_out_folder
from squeezelens.engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "compare-int8",
        help="deployed INT8 vs float and vs its simulation, layer by layer",
        description=__doc__,
    )
    add_model_arguments(p)
    p.add_argument("--images", nargs="+", metavar="PATH",
                   help="images to compare on, files and/or folders (default: bundled sample images)")  # fmt: skip
    p.add_argument("--count", type=int, default=4, metavar="N",
                   help="compare on the first N images in name order (default 4)")  # fmt: skip
    p.add_argument("--kernels", choices=("xnnpack", "reference"), default="xnnpack",
                   help="LiteRT's XNNPACK kernels (what the INT8 detector runs; default) or "
                   "TFLite's reference kernels")  # fmt: skip
    p.add_argument("--kitti-root", metavar="ROOT",
                   help="without --calib, calibrate on this KITTI folder's train split "
                   "(default: the bundled sample data)")  # fmt: skip
    add_calibration_arguments(p)
    p.add_argument("--out", type=Path, metavar="DIR", help="write int8_layers.csv here")
    p.set_defaults(func=run)


def _images(args) -> list:
    from squeezelens.cli.commands.detect import _image_paths

    if args.count < 1:
        raise InputError(f"--count must be at least 1, got {args.count}")
    return _image_paths(args)[: args.count]


def run(args) -> int:
    from squeezelens.cli.progress import ProgressBar
    from squeezelens.engine.data.images import read_image_bgr
    from squeezelens.engine.int8 import get_or_convert_int8
    from squeezelens.engine.int8.compare_layers import compare_int8_layers

    paths = _images(args)
    calibration = calibration_source(args).resolve()  # bad flags fail before the slow load
    if args.out is not None:
        check_out_folder(args.out)
    detector = load_detector(args)
    say(
        f"INT8: {len(calibration)} calibration images, {calibration.source} (conversions are cached)"
    )
    model = get_or_convert_int8(
        detector, calibration.images(),
        progress=ProgressBar("INT8 conversion", unit="step"),
    )  # fmt: skip
    images = [read_image_bgr(p) for p in paths]
    bar = ProgressBar(f"comparing on {len(images)} images ({args.kernels})", unit="img")
    result = compare_int8_layers(detector, model, images, args.kernels, progress=bar)
    print(result.format_table())
    if args.out is not None:
        print(f"wrote {result.write_csv(args.out / 'int8_layers.csv')}")
    return 0
