"""What the box reasons of "This image" add to the desktop tool's live detect loop.

The window's detect job (:meth:`gui.controller.Controller.request_detection`) now
ends with :func:`gui.image_facts.explain_image`: the comparison at the display
threshold (which the UI thread computed before), the reasons of the lost and new
boxes (:func:`engine.box_reasons.explain_changes`) and the twins.  What it adds to
the loop is explain_image minus the comparison alone.  Per image of the split:
float and quantized detections once, then each call timed --repeats times (median);
printed: the median, 90th percentile and maximum over the images of the added time,
beside the median time of the detections themselves (the loop without reasons).

    .venv/bin/python benchmarks/bench_gui_reasons.py                    # bundled model, 4 bits
    .venv/bin/python benchmarks/bench_gui_reasons.py --checkpoint CKPT --kitti-root ROOT --bits 8
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

from squeezelens.engine.compare import compare_detections  # noqa: E402
from squeezelens.engine.data.images import read_image_bgr  # noqa: E402
from squeezelens.engine.data.kitti import open_dataset  # noqa: E402
from squeezelens.engine.detector import Detector  # noqa: E402
from squeezelens.engine.quant import QuantConfig  # noqa: E402
from squeezelens.engine.samples import default_checkpoint, default_kitti_root  # noqa: E402
from squeezelens.gui.image_facts import explain_image  # noqa: E402

BUDGET_MS = 5.0


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def added_ms(ref, other, t: float, record, repeats: int) -> tuple[float, int]:
    """(explain_image minus compare_detections in ms, how many boxes it explained)."""
    a, b = ref.above(t), other.above(t)
    facts = explain_image(ref, other, t, record, "official")
    full = median_ms(lambda: explain_image(ref, other, t, record, "official"), repeats)
    compare = median_ms(lambda: compare_detections(a, b), repeats)
    return full - compare, len(facts.reasons.lost) + len(facts.reasons.new)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--kitti-root", default=None)
    p.add_argument("--split", default="val")
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--scale", default="channel")
    p.add_argument("--threshold", type=float, default=0.4)
    p.add_argument("--images", type=int, default=30, help="first N images of the split")
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    det = Detector.from_checkpoint(args.checkpoint or default_checkpoint())
    dataset = open_dataset(args.kitti_root or default_kitti_root(), args.split)
    quant = QuantConfig(bits=args.bits, scale=args.scale)
    added, detect_ms, changes = [], [], 0
    for record in dataset.records[: args.images]:
        image = read_image_bgr(record.path)
        x, scale = det.preprocess(image)
        start = time.perf_counter()
        ref = det.decode(det.forward(x[None], None)[0], scale)
        other = det.decode(det.forward(x[None], quant)[0], scale)
        detect_ms.append(1000 * (time.perf_counter() - start))
        ms, explained = added_ms(ref, other, args.threshold, record, args.repeats)
        added.append(ms)
        changes += explained
    added.sort()
    p90 = added[min(len(added) - 1, int(0.9 * len(added)))]
    print(f"{len(added)} images of {dataset.root} ({args.split}), {quant.describe()}, "
          f"threshold {args.threshold}: {changes} lost/new boxes explained")  # fmt: skip
    print(f"added by the reasons and twins per image (median of {args.repeats} runs each): "
          f"median {statistics.median(added):.2f} ms, p90 {p90:.2f} ms, max {added[-1]:.2f} ms "
          f"(budget {BUDGET_MS:g} ms)")  # fmt: skip
    print(
        f"the detections themselves (float + quantized): median {statistics.median(detect_ms):.1f} ms"
    )
    return 0 if statistics.median(added) <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
