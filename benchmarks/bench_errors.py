"""What ``evaluate --errors`` costs on top of ``evaluate``, and the per-image box reasons.

In process (no start-up time, so the ratios are stricter than the commands'),
alternating the runs, median over --repeats of the wall time and of the
process's CPU time (all its threads: steadier than wall time on a shared
machine, where other processes take cores at random):

* float: ``evaluate`` vs ``evaluate_errors`` (one detection pass either way;
  the difference is the error typing and the oracle's re-scoring);
* quantized (``--bits``, ``--scale``, ``--rounding``): ``evaluate`` of the
  quantized model vs ``evaluate_errors`` comparing float and quantized (the
  float model runs too: compared with the quantized evaluation alone, and
  with the two evaluations it replaces, float then quantized);
* the analysis alone: ``analyse_errors`` vs ``evaluate_detections`` on the
  same detections;
* per image: ``explain_changes`` (reasons of the lost and new boxes at the
  display threshold 0.4), median over the split's images.

    .venv/bin/python benchmarks/bench_errors.py                       # bundled model and scenes
    .venv/bin/python benchmarks/bench_errors.py --checkpoint CKPT --kitti-root ROOT --bits 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from squeezelens.engine.box_reasons import explain_changes  # noqa: E402
from squeezelens.engine.data.kitti import open_dataset  # noqa: E402
from squeezelens.engine.detector import Detector  # noqa: E402
from squeezelens.engine.error_eval import evaluate_errors  # noqa: E402
from squeezelens.engine.eval import evaluate_detections  # noqa: E402
from squeezelens.engine.eval.errors import analyse_errors  # noqa: E402
from squeezelens.engine.evaluate import detect_dataset, evaluate  # noqa: E402
from squeezelens.engine.quant import QuantConfig  # noqa: E402
from squeezelens.engine.samples import default_checkpoint, default_kitti_root  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_both(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def medians(runs: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Run each callable ``repeats`` times, alternating, after one warm-up; median
    (wall, CPU) seconds."""
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(timed_both(fn))
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in times.items()}  # fmt: skip


def overhead(t: dict, new: str, *base: str) -> str:
    """'+x.x% wall, +y.y% CPU' of run ``new`` over the sum of runs ``base``."""
    parts = [t[new][i] / sum(t[b][i] for b in base) - 1 for i in (0, 1)]
    return f"{parts[0]:+.1%} wall, {parts[1]:+.1%} CPU"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(default_checkpoint()))
    p.add_argument("--kitti-root", default=str(default_kitti_root()))
    p.add_argument("--split", default="val")
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--scale", default="channel")
    p.add_argument("--rounding", default="nearest")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    det = Detector.from_checkpoint(args.checkpoint)
    ds = open_dataset(args.kitti_root, args.split)
    quant = QuantConfig(bits=args.bits, scale=args.scale, rounding=args.rounding)
    print(f"{len(ds)} images of {args.kitti_root} ({args.split}); {quant.describe()}; "
          f"median of {args.repeats} (machine shared: expect noise)")  # fmt: skip
    t = medians({
        "evaluate float": lambda: evaluate(det, ds),
        "--errors float": lambda: evaluate_errors(det, ds),
        "evaluate quantized": lambda: evaluate(det, ds, quant),
        "--errors float+quantized": lambda: evaluate_errors(det, ds, det, quant),
    }, args.repeats)  # fmt: skip
    for k, (wall, cpu) in t.items():
        print(f"  {k:<26}{wall:8.2f} s wall {cpu:8.2f} s CPU")
    joint = "--errors float+quantized"
    print("overhead, float only:", overhead(t, "--errors float", "evaluate float"))
    print("overhead vs quantized evaluate:", overhead(t, joint, "evaluate quantized"),
          "(the float model runs too)")  # fmt: skip
    print("overhead vs float + quantized evaluate:",
          overhead(t, joint, "evaluate float", "evaluate quantized"))  # fmt: skip
    dets = detect_dataset(det, ds, quant)
    a = medians({"devkit": lambda: evaluate_detections(ds.records, dets),
                 "errors": lambda: analyse_errors(ds.records, dets)}, args.repeats)  # fmt: skip
    print(f"analysis alone: devkit {a['devkit'][0] * 1e3:.1f} ms, "
          f"analyse_errors {a['errors'][0] * 1e3:.1f} ms (wall)")  # fmt: skip
    floats = detect_dataset(det, ds)
    per_image = []
    for r in ds.records:
        f, q = floats[r.stem].above(0.4), dets[r.stem].above(0.4)
        explain_changes(f, q, r.objects)
        per_image.append(
            statistics.median(
                timed(lambda f=f, q=q, o=r.objects: explain_changes(f, q, o)) for _ in range(5)
            )
        )
    print(f"box reasons per image (GUI live loop): median {statistics.median(per_image) * 1e3:.2f} ms, "
          f"max {max(per_image) * 1e3:.2f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
