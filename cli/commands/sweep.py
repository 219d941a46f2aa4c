"""``squeezelens sweep``: mAP vs bits over every combination of quantization settings.

Each finished point is appended to DIR/sweep.csv at once; rerunning the same
command resumes without redoing finished points (nearest points are not redone
when only --seed changes).  The plot (DIR/sweep.png and DIR/sweep.svg) follows
the low-precision fork's figure: mAP (mean of the 9 class x difficulty APs)
against bits, one curve per method, with a provenance caption.

The fork's four published curves, (a) nearest and (b) stochastic rounding with
no zero and one global range, (c) nearest and (d) stochastic with zero
reservation AND separate conv/fire ranges (its sweep script passed the zero
flag as the scales flag too), scored with SqueezeDet's devkit copy:
  --fork-curves --protocol squeezedet            (bits 3,4,5,6,7,9,11 unless --bits)
or, by hand, two runs into the same --out:
  --bits 3,4,5,6,7,9,11 --rounding nearest,stochastic --reserve-zero off --scale global
  --bits 3,4,5,6,7,9,11 --rounding nearest,stochastic --reserve-zero on  --scale groups
(--reserve-zero off,on --scale global would give zero + global, not the fork's
zero curves.)  Add --repeats R for mean +- std over stochastic seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squeezelens.cli.common import (
    add_model_arguments,
    add_quant_arguments,
    add_scoring_arguments,
    calibration_if,
    load_detector,
    resolve_kitti_root,
    say,
    uses_calibration,
)
from squeezelens.cli.distributed import ParallelJob, add_parallel_arguments, parallel_spec
from squeezelens.cli.hijacks import warn_range_hijacks
from squeezelens.cli.outputs import add_wait_argument, locked_out_folder
from squeezelens.cli.progress import ProgressBar
from squeezelens.engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("sweep", help="sweep quantization settings against KITTI mAP", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_model_arguments(p)
    add_scoring_arguments(p, "official devkit, or SqueezeDet's copy (what the fork scored with)")
    p.add_argument("--repeats", type=int, default=1, help="seeds per stochastic point (mean ± std)")
    p.add_argument("--fork-curves", action="store_true",
                   help="the fork's four curves: nearest/stochastic x (no zero, global | zero, "
                   "groups), at bits 3,4,5,6,7,9,11 unless --bits")  # fmt: skip
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for sweep.csv, sweep.png, sweep.svg",
    )
    add_quant_arguments(p, multi=True)
    add_wait_argument(p)
    add_parallel_arguments(p)
    p.set_defaults(func=run)


def _fork_configs(args) -> list:
    """The fork's four curves at --bits (default the fork's bits); --seed and --layer-bits kept."""
    from squeezelens.cli.quant_args import quant_configs_from_args
    from squeezelens.engine.quant.presets import FORK_BITS, FORK_FIELDS, fork_curve_configs

    given = [f"--{n.replace('_', '-')}" for n in FORK_FIELDS if getattr(args, f"quant_{n}", None)]
    if given:
        raise InputError(f"--fork-curves sets {', '.join(given)} itself: drop them")
    base = quant_configs_from_args(argparse.Namespace(**{**vars(args), "quant_bits": None}))[0]
    bits = [c.bits for c in quant_configs_from_args(args)] if args.quant_bits else FORK_BITS
    return fork_curve_configs(base, tuple(bits))


def _configs(args) -> list:
    from squeezelens.cli.quant_args import quant_configs_from_args

    configs = _fork_configs(args) if args.fork_curves else quant_configs_from_args(args)
    if not configs:
        raise InputError("the sweep has no points: give --bits (e.g. --bits 3,4,5,6,7,9,11)")
    return configs


def _calibration(args, points):
    """The CalibrationSet of the points with activation bits, bias correction or AdaRound,
    None when no point needs one."""
    return calibration_if(args, any(uses_calibration(p.quant) for p in points))


@locked_out_folder
def run(args) -> int:
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.sweep import run_sweep, sweep_meta, sweep_points

    if getattr(args, "int8", False):
        raise InputError("--int8 is a single model, not a sweep axis; use evaluate --int8")
    points = sweep_points(_configs(args), repeats=args.repeats)
    spec = parallel_spec(args)  # --workers / --ray: checked before the slow work
    root = resolve_kitti_root(args)
    dataset = open_dataset(root, args.split)
    if not dataset.has_labels:
        raise InputError("cannot sweep: the folder has no KITTI labels", dataset.root)
    calibration = _calibration(args, points)  # before the slow model load
    detector = load_detector(args)
    warn_range_hijacks(detector.float_weights, [p.quant for p in points])
    if calibration is not None:
        detector.calibrate_activations(calibration.images(), record=calibration.record())
    meta = sweep_meta(detector, dataset, args.protocol, calibration)
    if args.fork_curves and args.protocol != "squeezedet":
        say("note: the fork scored with SqueezeDet's devkit copy (--protocol squeezedet)")
    label = f"sweep: {len(points)} points x {len(dataset)} images"
    par = spec and ParallelJob(spec, detector, label, args.out / "tasks", args.out / "cluster.json")
    bar = par.bar if par else ProgressBar(label)

    def progress(done, total, row):
        if not par:  # on Ray the bar counts images over all workers
            bar(done, total)
        if row is not None:
            bar.write(
                f"  {row['label']:<32} bits {row['bits']:>5} seed {row['seed']:>3}: mAP R11 {float(row['map_r11']):.3f}"
            )

    rows = run_sweep(detector, dataset, points, args.out, meta, protocol=args.protocol,
                     progress=progress, detect=par and par.points(dataset, prune=True))  # fmt: skip
    if par:
        par.finish()
    _report(rows, points, meta, dataset, args)
    return 0


def _report(rows: list, points: list, meta: dict, dataset, args) -> None:
    """Plot the points of this sweep and print their table."""
    from squeezelens.cli.plots import provenance_caption, render_sweep
    from squeezelens.engine.sweep import summarize

    keys = {p.key for p in points}
    curves = summarize([r for r in rows if r["key"] in keys])
    title = f"{Path(meta['checkpoint'] or 'model').name} on {dataset.split} ({len(dataset)} images, {args.protocol})"
    render_sweep(curves, args.out / "sweep.png", args.out / "sweep.svg", title,
                 caption=provenance_caption(meta))  # fmt: skip
    _print_table(curves)
    print(f"wrote {args.out / 'sweep.csv'}, sweep.png, sweep.svg")


def _print_table(curves: dict) -> None:
    bits = sorted({b for c in curves.values() for b in c if b != 32})
    print(f"{'method':<34}" + "".join(f"{b:>13}" for b in bits))
    for label, pts in sorted(curves.items()):
        if label == "float":
            print(f"{'float':<34}{pts[32][0]:>13.3f}")
            continue
        cells = [
            f"{pts[b][0]:.3f}" + (f"±{pts[b][1]:.3f}" if pts[b][2] > 1 else "") if b in pts else ""
            for b in bits
        ]
        print(f"{label:<34}" + "".join(f"{c:>13}" for c in cells))
