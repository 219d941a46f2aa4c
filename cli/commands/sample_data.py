"""``squeezelens sample-data``: write a folder of synthetic KITTI-format scenes.

KITTI itself cannot be redistributed; these scenes let a user try every
other command (and train a default detector) without downloading anything.
"""

from __future__ import annotations

import argparse
import sys
import time

from squeezelens.cli.outputs import check_out_folder
from squeezelens.engine.errors import InputError


def register(subparsers) -> None:
    """Add the ``sample-data`` parser to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "sample-data",
        help="generate synthetic KITTI-format road scenes",
        description="Write COUNT synthetic road scenes with KITTI labels to DIR "
        "(training/image_2, training/label_2, ImageSets/{train,val,trainval}.txt).",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (empty, new, or a previous sample-data output)",
    )
    parser.add_argument("--count", required=True, type=int, metavar="N", help="number of scenes")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument(
        "--format",
        dest="image_format",
        default="png",
        choices=("png", "jpg"),
        help="image format (default png)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.5,
        metavar="F",
        help="fraction of scenes in val.txt (default 0.5)",
    )
    parser.set_defaults(func=run)


def _progress_printer(stream=None):
    """A progress callback printing one line per ~10 % (and at the end).

    ``stream`` defaults to whatever ``sys.stdout`` is when a line is printed (not when this module
    was imported), so redirected or captured output sees the progress too.
    """
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        """Print when ``done`` crosses a 10 % step."""
        step = max(1, total // 10)
        if done % step == 0 or done == total:
            rate = done / max(time.perf_counter() - start, 1e-9)
            print(
                f"sample-data: {done}/{total} scenes ({rate:.1f}/s)",
                file=stream or sys.stdout,
                flush=True,
            )

    return report


def run(args: argparse.Namespace) -> int:
    """Generate the scenes; bad values raise InputError (exit code 2)."""
    if args.count <= 0:
        raise InputError(f"--count must be positive, got {args.count}")
    if args.seed < 0:
        raise InputError(f"--seed must be non-negative, got {args.seed}")
    if not 0.0 <= args.val_fraction <= 1.0:
        raise InputError(f"--val-fraction must be in [0, 1], got {args.val_fraction}")
    check_out_folder(args.out)
    from squeezelens.engine.synth import write_kitti_tree  # keeps `squeezelens --help` light

    out = write_kitti_tree(
        args.out,
        args.count,
        args.seed,
        args.val_fraction,
        args.image_format,
        progress=_progress_printer(),
    )
    print(f"sample-data: wrote {args.count} scenes to {out}")
    return 0
