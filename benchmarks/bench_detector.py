"""Float forward latency and evaluation throughput of the Detector (medians).

Usage: python benchmarks/bench_detector.py [--repeats N]
Prints: the median float forward of one 1248x384 image (target <= 80 ms), the tracing
count after all calls (must stay 1: no retracing), and evaluate throughput as a
fraction of forward-only throughput on the shared KITTI val split (target >= 85%), for each
way of loading images (medians of interleaved rounds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def print_stages(det, ds) -> None:
    """Median cost of the work besides the forward pass, per image of the split (one thread)."""
    from squeezelens.engine.data.images import read_image_bgr

    paths = [r.path for r in ds.records[:20]]
    images = [read_image_bgr(p) for p in paths]
    prepared = [det.preprocess(im) for im in images]
    raws = [det.forward(x[None])[0] for x, _ in prepared]

    def per_image(fn, items) -> float:
        return median_ms(lambda: [fn(i) for i in items], 3) / len(items)

    decode = per_image(read_image_bgr, paths)
    prep = per_image(det.preprocess, images)
    post = per_image(lambda k: det.decode(raws[k], prepared[k][1]), range(len(raws)))
    print(
        f"besides the forward, per image: PNG decode {decode:.1f} ms, preprocess {prep:.1f} ms, "
        f"post-processing {post:.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--eval-rounds", type=int, default=3, help="evaluations per loading mode")
    args = ap.parse_args()
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.model.spec import ArchSpec, expected_shapes

    spec = ArchSpec()
    rng = np.random.default_rng(0)
    weights = {
        k: (rng.standard_normal(s) * 0.05).astype(np.float32)
        for k, s in expected_shapes(spec).items()
    }
    det = Detector(spec, weights)
    x = rng.uniform(-100, 100, (1, 384, 1248, 3)).astype(np.float32)
    det.forward(x)
    fwd = median_ms(lambda: det.forward(x), args.repeats)
    print(
        f"float forward 1248x384 (official SqueezeDet, 3x3 ConvDet): median {fwd:.1f} ms over {args.repeats} runs"
    )
    print(
        f"tf.function traces after {args.repeats + 1} calls: {det._forward_float.experimental_get_tracing_count()}"
    )
    image = rng.integers(0, 255, (375, 1242, 3), dtype=np.uint8)
    det.cache_size = 0  # measure the uncached path
    counter = iter(range(10**9))

    def fresh_detect():
        image[0, 0, 0] = next(counter) % 255  # a new image each time
        det.detect(image)

    full = median_ms(fresh_detect, 10)
    print(f"detect (preprocess + forward + post-processing), uncached: median {full:.1f} ms")
    kitti = SHARED / "kitti"
    if not kitti.exists():
        print("shared KITTI absent: evaluate throughput skipped")
        return
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.evaluate import LOADERS, LOADING, evaluate

    ds = open_dataset(kitti, "val")
    print_stages(det, ds)
    evaluate(det, ds)  # warm the file cache
    rates: dict[str, list[float]] = {name: [] for name in LOADERS}
    for _ in range(args.eval_rounds):  # the loading modes interleaved, forward-only between
        for name in LOADERS:
            t = time.perf_counter()
            evaluate(det, ds, loading=name)
            rates[name].append(len(ds) / (time.perf_counter() - t))
        rates.setdefault("forward", []).append(1000.0 / median_ms(lambda: det.forward(x), 10))
    fwd_only = statistics.median(rates.pop("forward"))
    for name, values in rates.items():
        ev = statistics.median(values)
        print(
            f"evaluate, loading={name}{' (default)' if name == LOADING else ''}: {ev:.2f} images/s "
            f"over {len(ds)} images; forward-only {fwd_only:.2f} images/s; "
            f"ratio {100 * ev / fwd_only:.0f}% (target >= 85%)"
        )


if __name__ == "__main__":
    main()
