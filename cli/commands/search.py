"""``squeezelens search``: per-layer bit widths (or float) of least size within an mAP drop.

From the per-layer sensitivities (each layer alone at each --bits width: the noise
it adds to the ConvDet output), the trade-offs between size and predicted noise
are proposed and the proposals verified by full evaluations on --split (train by
default: never the split the result is evaluated on): the smallest verified model
within --max-drop of the float mAP, and the front of size (KB) against mAP.  The other quantization flags (--scale, --range, --grid,
--equalize, ...) are the base every point shares.  Written as measured, so
rerunning the same command resumes: DIR/sensitivity.csv, DIR/search.csv (every
verified point), DIR/front.csv (the front, with each point's --layer-bits value),
DIR/search.json, DIR/front.png and DIR/front.svg.

Cost: layers x widths + about 15 passes over the split; use a small split, or spread
them over Ray workers (--workers N / --ray ADDRESS: the same files to the last bit;
DIR/tasks keeps finished tasks until the search ends, DIR/cluster.json records the runs).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from squeezelens.cli.common import (
    add_model_arguments,
    add_quant_arguments,
    load_detector,
    resolve_kitti_root,
    say,
)
from squeezelens.cli.distributed import ParallelJob, add_parallel_arguments, parallel_spec
from squeezelens.cli.outputs import add_wait_argument, locked_out_folder
from squeezelens.cli.progress import ProgressBar
from squeezelens.engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("search", help="mixed-precision search: smallest model within an mAP drop",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_model_arguments(p)
    p.add_argument(
        "--kitti-root", metavar="ROOT", help="KITTI folder (default: bundled sample data)"
    )
    p.add_argument("--split", default="train",
                   help="split to search on (default train: like calibration, the search never "
                   "chooses on the split it is evaluated on; evaluate the result on val)")  # fmt: skip
    p.add_argument("--protocol", choices=("official", "squeezedet"), default="official")
    p.add_argument("--max-drop", type=float, default=0.01, metavar="D",
                   help="largest mAP drop from float allowed (default 0.01)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the csv files, search.json and the front plot")  # fmt: skip
    add_quant_arguments(p)
    add_wait_argument(p)
    add_parallel_arguments(p)
    p.set_defaults(func=run)


def _base_and_bits(args):
    """(base config, candidate widths) from the flags; --bits is the list of widths."""
    from squeezelens.cli.quant_args import parse_bits_list, quant_config_from_args

    if not args.quant_bits:
        raise InputError("search needs the candidate widths: --bits 2,3,4,6,8")
    if args.quant_layer_bits:
        raise InputError("search chooses the per-layer widths itself: drop --layer-bits")
    bits = sorted(set(parse_bits_list(args.quant_bits)))
    base = quant_config_from_args(argparse.Namespace(**{**vars(args), "quant_bits": None}))
    base = base.replace(bits=max(bits))
    if args.int8 or base.activation_bits:
        raise InputError("search chooses weight widths only: drop --int8 / --activation-bits")
    return base, bits


@locked_out_folder
def run(args) -> int:
    from squeezelens.cli.runner import calibrate
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.search import run_search
    from squeezelens.engine.sweep import sweep_meta

    base, bits = _base_and_bits(args)
    if not 0 <= args.max_drop < 1:
        raise InputError(f"--max-drop must be in [0, 1), got {args.max_drop}")
    spec = parallel_spec(args)  # --workers / --ray: checked before the slow work
    dataset = open_dataset(resolve_kitti_root(args), args.split)
    if not dataset.has_labels:
        raise InputError("cannot search: the folder has no KITTI labels", dataset.root)
    calibration = _calibration(args, base)
    detector = load_detector(args)
    if calibration is not None:
        calibrate(detector, base, calibration)
    meta = sweep_meta(detector, dataset, args.protocol, calibration)
    par = spec and ParallelJob(spec, detector, "search", args.out / "tasks",
                               args.out / "cluster.json")  # fmt: skip
    start = time.perf_counter()
    say(f"searching widths {','.join(map(str, bits))} over {base.describe()} on "
        f"{len(dataset)} images ({dataset.split})")  # fmt: skip
    with contextlib.ExitStack() as stack:
        score = par and stack.enter_context(par.scorer(dataset, args.protocol))
        result = run_search(detector, dataset, base, bits, args.max_drop, args.out, meta,
                            args.protocol, score=score, progress=_progress(par))  # fmt: skip
    _report(result, meta, dataset, args)
    if par:
        par.finish()
    say(f"search took {time.perf_counter() - start:.0f} s")
    return 0


def _progress(par):
    """progress(phase, done, total): a bar per phase, or on Ray the phase shown on the one
    bar over all workers (images done)."""
    bars: dict[str, ProgressBar] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if par:
            par.stage = f"{phase} {done}/{total}"
        else:
            bars.setdefault(phase, ProgressBar(f"search: {phase}", unit="eval"))(done, total)

    return progress


def _calibration(args, base):
    from squeezelens.cli.common import calibration_if

    return calibration_if(args, base.needs_calibration, "--bias-correction or --rounding adaround")


def _report(result, meta: dict, dataset, args) -> None:
    """front.csv, the plot and a table of the front."""
    from squeezelens.cli.plots import provenance_caption, render_front
    from squeezelens.engine.atomic import write_text_atomic
    from squeezelens.engine.search_files import FRONT_CSV

    lines = ["size_kb,map_r11,drop,bits,layer_bits"]
    lines += [f"{p.size_kb:.3f},{p.map_r11:.6f},{p.drop:.6f},{p.config.bits},\"{p.layer_bits}\""
              for p in result.front]  # fmt: skip
    write_text_atomic(args.out / FRONT_CSV, "\n".join(lines) + "\n")
    title = f"{Path(meta['checkpoint'] or 'model').name}: size vs mAP on {dataset.split} ({len(dataset)} images)"
    render_front(result, args.out / "front.png", args.out / "front.svg", title,
                 caption=provenance_caption(meta))  # fmt: skip
    print(f"float: {result.float_kb:.1f} KB, mAP {result.float_map:.4f}")
    print(f"{'size KB':>10} {'mAP':>8} {'drop':>8}  widths")
    for p in result.front:
        print(f"{p.size_kb:>10.1f} {p.map_r11:>8.4f} {p.drop:>+8.4f}  --bits {p.config.bits} "
              f"--layer-bits {p.layer_bits}")  # fmt: skip
    if result.best is None:
        print(f"no mixed precision stays within {result.max_drop} of float")
    else:
        b = result.best
        print(f"smallest within {result.max_drop} on {dataset.split}: {b.size_kb:.1f} KB, mAP "
              f"{b.map_r11:.4f}: --bits {b.config.bits} --layer-bits {b.layer_bits}")  # fmt: skip
        print("score it on another split: squeezelens evaluate --split val " +
              " ".join(b.config.to_cli_args()))  # fmt: skip
    print(
        f"wrote {args.out / FRONT_CSV}, search.csv, sensitivity.csv, search.json, front.png, front.svg"
    )
