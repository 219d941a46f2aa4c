"""``squeezelens sweep``: mAP vs bits over every combination of quantization settings.

Each finished point is appended to DIR/sweep.csv at once; rerunning the same
command resumes without redoing finished points.  The plot (DIR/sweep.png and
DIR/sweep.svg) follows the low-precision fork's figure: mAP (mean of the 9
class x difficulty APs) against bits, one curve per method.

The fork's four published curves: nearest and stochastic rounding, each without
and with zero reservation, where the fork's "zero" runs also had its separate
conv/fire scales switched on (its sweep script passed the zero flag as the
scales flag).  Reproduce them with:
  --rounding nearest,stochastic --reserve-zero off,on --scale global   (no-zero curves)
  and for the zero curves --reserve-zero on --scale groups.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import (
    add_model_arguments,
    add_quant_arguments,
    load_detector,
    resolve_kitti_root,
    say,
)
from cli.progress import ProgressBar
from engine.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("sweep", help="sweep quantization settings against KITTI mAP", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_model_arguments(p)
    p.add_argument(
        "--kitti-root", metavar="ROOT", help="KITTI object folder (default: bundled sample data)"
    )
    p.add_argument("--split", default="val", help="split to score (default val)")
    p.add_argument("--protocol", choices=("official", "squeezedet"), default="official")
    p.add_argument("--repeats", type=int, default=1, help="seeds per stochastic point (mean ± std)")
    p.add_argument("--fork-curves", action="store_true",
                   help="the fork's four published curves (nearest/stochastic x zero off / zero on + groups)")  # fmt: skip
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for sweep.csv, sweep.png, sweep.svg",
    )
    add_quant_arguments(p, multi=True)
    p.set_defaults(func=run)


def _configs(args) -> list:
    from dataclasses import replace

    from engine.quant.cli_args import quant_configs_from_args

    configs = quant_configs_from_args(args)
    if args.fork_curves:
        configs = [
            replace(c, reserve_zero=z, scale="groups" if z else "global", rounding=r)
            for c in configs for r in ("nearest", "stochastic") for z in (False, True)
        ]  # fmt: skip
    if not configs:
        raise InputError("the sweep has no points: give --bits (e.g. --bits 3,4,5,6,7,9,11)")
    return configs


def run(args) -> int:
    from cli.plots import render_sweep
    from engine.data.kitti import open_dataset
    from engine.provenance import versions
    from engine.sweep import run_sweep, summarize, sweep_points

    if getattr(args, "int8", False):
        raise InputError("--int8 is a single model, not a sweep axis; use evaluate --int8")
    points = sweep_points(_configs(args), repeats=args.repeats)
    root = resolve_kitti_root(args)
    dataset = open_dataset(root, args.split)
    if not dataset.has_labels:
        raise InputError("cannot sweep: the folder has no KITTI labels", dataset.root)
    detector = load_detector(args)
    if any(p.quant is not None and p.quant.activation_bits for p in points):
        from cli.commands.evaluate import _calib_fallback
        from cli.runner import calibration_images

        detector.calibrate_activations(calibration_images(args, _calib_fallback(root)))
    meta = {
        "checkpoint_sha256": detector.checkpoint.sha256 if detector.checkpoint else None,
        "checkpoint": detector.checkpoint.path if detector.checkpoint else None,
        "kitti_root": str(dataset.root), "split": dataset.split, "protocol": args.protocol,
        "input_size": list(detector.spec.input_size), "versions": versions(),
    }  # fmt: skip
    bar = ProgressBar(f"sweep: {len(points)} points x {len(dataset)} images")

    def progress(done, total, row):
        bar(done, total)
        if row is not None:
            say(
                f"  {row['label']:<32} bits {row['bits']:>5} seed {row['seed']:>3}: mAP R11 {float(row['map_r11']):.3f}"
            )

    rows = run_sweep(
        detector, dataset, points, args.out, meta, protocol=args.protocol, progress=progress
    )
    keys = {p.key for p in points}
    curves = summarize([r for r in rows if r["key"] in keys])
    title = f"{Path(meta['checkpoint'] or 'model').name} on {dataset.split} ({len(dataset)} images, {args.protocol})"
    render_sweep(curves, args.out / "sweep.png", args.out / "sweep.svg", title)
    _print_table(curves)
    print(f"wrote {args.out / 'sweep.csv'}, sweep.png, sweep.svg")
    return 0


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
