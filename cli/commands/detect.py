"""``squeezelens detect``: boxes for images, as JSON (files or JSON Lines) or KITTI txt.

Without --out, results go to stdout: JSON Lines (one object per image), or with
--format kitti one KITTI result line per detection, prefixed by the image's
file name and a tab (``000042.png<TAB>Car -1 -1 -10 x1 y1 x2 y2 ... score``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from squeezelens.cli.common import (
    add_model_arguments,
    add_quant_arguments,
    load_detector,
    resolve_kitti_root,
)
from squeezelens.cli.outputs import check_out_folder
from squeezelens.cli.runner import build_runner, calibration_used, check_quant_flags
from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("detect", help="detect objects in images", description=__doc__)
    add_model_arguments(p)
    p.add_argument(
        "--images",
        nargs="+",
        metavar="PATH",
        help="image files and/or folders (default: bundled sample images)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write one file per image here (default: stdout, JSON Lines or "
        "tab-prefixed KITTI lines)",
    )
    p.add_argument(
        "--format",
        choices=("json", "kitti"),
        default="json",
        help="output format (default json); kitti on stdout: '<image name><TAB><KITTI line>'",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        help="minimum score to report (default 0: all kept boxes)",
    )
    p.add_argument(
        "--kitti-root",
        metavar="ROOT",
        help="KITTI folder whose train split calibrates --int8 / --activation-bits, and whose "
        "images are detected without --images (default: the bundled sample data)",
    )
    add_quant_arguments(p)
    p.set_defaults(func=run)


def _image_paths(args) -> list[Path]:
    from squeezelens.engine.data.images import list_images

    if not args.images:
        root = Path(resolve_kitti_root(args))
        args.images = [str(root / "training" / "image_2")]
    paths = list_images(args.images)
    if not paths:
        raise InputError(f"no images found in {' '.join(args.images)}")
    return paths


def _emit(path: Path, dets, args, provenance: dict) -> None:
    from squeezelens.engine.eval.kitti_io import format_kitti_lines, write_kitti_detections

    if args.out is None and args.format == "kitti":
        text = "".join(f"{path.name}\t{line}\n" for line in format_kitti_lines(dets))
        print(text, end="", flush=True)
    elif args.out is None:
        print(json.dumps({"image": path.name, "detections": dets.to_records()}), flush=True)
    elif args.format == "kitti":
        write_kitti_detections(args.out, {path.stem: dets})
    else:
        record = {"image": path.name, "detections": dets.to_records(), "provenance": provenance}
        write_json_atomic(args.out / f"{path.stem}.json", record)


def run(args) -> int:
    from squeezelens.engine.data.images import read_image_bgr
    from squeezelens.engine.prefetch import prefetch
    from squeezelens.engine.provenance import checkpoint_record, versions

    if not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.out is not None:
        check_out_folder(args.out)
    paths = _image_paths(args)
    check_quant_flags(args)  # bad flags fail before the slow model load
    detector = load_detector(args)
    runner, quant, _ = build_runner(args, detector)
    provenance = {
        "checkpoint": checkpoint_record(detector),
        "quant": None if quant is None else quant.to_dict(),
        "int8": bool(args.int8),
        "calibration": calibration_used(detector),
        "versions": versions(),
    }
    if args.out is not None and args.format == "kitti":
        write_json_atomic(args.out / "provenance.json", provenance)
    for path, image in prefetch(paths, read_image_bgr):
        if isinstance(image, BaseException):
            if isinstance(image, InputError):
                raise image
            raise InputError(f"cannot read image ({image})", path)
        _emit(path, runner.detect(image, threshold=args.threshold), args, provenance)
    if args.out is not None:
        print(f"wrote {len(paths)} {args.format} files to {args.out}", file=sys.stderr)
    return 0
