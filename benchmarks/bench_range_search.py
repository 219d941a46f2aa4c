"""Speed of the weight range search (``--range mse``, ``percentile:P``) on the whole model.

For each scale and width, the median and minimum over repeated calls of
``plan_quantization`` (grids only: the search is there) and of ``quantize_weights``
(grids and rounding), with ``range="minmax"`` and the searched ranges, on the
bundled model's weights (2,082,120 weights; or --checkpoint).  The search's own
cost is the difference of the planning times.  Nothing is cached between calls.
The last column is the search's CPU time on one thread (the planning pool set to
one worker; process time, so other work on a shared machine does not count):
what it takes on a core of its own.  Target: the search within 50 ms per
channel-wise config.

    .venv/bin/python benchmarks/bench_range_search.py
    .venv/bin/python benchmarks/bench_range_search.py --scale channel --bits 4 --repeats 21
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quantize import timed_ms  # noqa: E402

from squeezelens.engine.checkpoint import load_checkpoint  # noqa: E402
from squeezelens.engine.quant import QuantConfig, plan_quantization, quantize_weights  # noqa: E402
from squeezelens.engine.samples import default_checkpoint  # noqa: E402


def cpu_ms(fn, repeats: int) -> float:
    """Median single-thread CPU time (ms) of ``fn`` with the planning pool at one worker."""
    from squeezelens.engine.quant import apply

    workers, apply._WORKERS = apply._WORKERS, 1
    try:
        return statistics.median(timed_ms(fn, repeats, clock=time.process_time))
    finally:
        apply._WORKERS = workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="default: the bundled sample model")
    parser.add_argument("--scale", default="channel,layer,global", help="scales, comma-separated")
    parser.add_argument("--bits", default="4,8", help="widths, comma-separated")
    parser.add_argument("--ranges", default="mse,percentile:99.9", help="searched ranges")
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    weights = load_checkpoint(args.checkpoint or default_checkpoint()).weights
    count = sum(v.size for k, v in weights.items() if k.endswith(("kernels", "biases")))
    print(f"{count:,} weights; median (min) ms over {args.repeats} calls")
    print(f"{'scale':<8}{'bits':>5}  {'range':<16}{'plan':>16}{'quantize':>16}{'search':>10}"
          f"{'search, 1 cpu':>15}")  # fmt: skip
    for scale in args.scale.split(","):
        for bits in map(int, args.bits.split(",")):
            base = QuantConfig(bits=bits, scale=scale)
            plain = timed_ms(lambda b=base: plan_quantization(weights, b), args.repeats)
            plan0 = statistics.median(plain)
            cpu0 = cpu_ms(lambda b=base: plan_quantization(weights, b), args.repeats)
            for name in ["minmax", *args.ranges.split(",")]:
                config = base.replace(range=name)
                plan = timed_ms(lambda c=config: plan_quantization(weights, c), args.repeats)
                full = timed_ms(lambda c=config: quantize_weights(weights, c), args.repeats)
                search = statistics.median(plan) - plan0
                cpu = cpu_ms(lambda c=config: plan_quantization(weights, c), args.repeats) - cpu0
                print(f"{scale:<8}{bits:>5}  {name:<16}"
                      f"{statistics.median(plan):>9.1f} ({min(plan):>4.0f})"
                      f"{statistics.median(full):>9.1f} ({min(full):>4.0f}){search:>10.1f}"
                      f"{cpu:>15.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
