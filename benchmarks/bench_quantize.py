"""Speed of engine.quant.quantize_weights on the full SqueezeDet model (2,082,120 weights).

Random weights of the official shapes (He-like scales), one global range (the
fork's default).  For bits x rounding x reserve_zero it prints the median and
the minimum over repeated calls, warm (lookup tables cached from the previous
call, as when the GUI or a sweep requantizes) and cold (cache cleared first).
Then the fork's algorithm as the fork runs it, a Python loop over elements
(distances to all levels with numpy per element), on the full model or on a
fraction of it (then extrapolated, and said so), with the speed ratio and a
check that both give identical bits.

    .venv/bin/python benchmarks/bench_quantize.py                  # bits 3..11, loop on 5 %
    .venv/bin/python benchmarks/bench_quantize.py --loop-fraction 1 --loop-bits 8
    .venv/bin/python benchmarks/bench_quantize.py --scale channel --bits 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.quant import QuantConfig, plan_quantization, quantize_weights, uniform_draws  # noqa: E402
from engine.quant.rounding import clear_table_cache  # noqa: E402

FIRES = [
    (16, 64),
    (16, 64),
    (32, 128),
    (32, 128),
    (48, 192),
    (48, 192),
    (64, 256),
    (64, 256),
    (96, 384),
    (96, 384),
]


def official_shapes() -> dict[str, tuple[int, ...]]:
    """Tensor shapes of SqueezeDet (KITTI, 3 classes, 9 anchors): 64 tensors, 2,082,120 weights."""
    shapes: dict[str, tuple[int, ...]] = {"conv1/kernels": (3, 3, 3, 64), "conv1/biases": (64,)}
    channels = 64
    for index, (squeeze, expand) in enumerate(FIRES, start=2):
        shapes[f"fire{index}/squeeze1x1/kernels"] = (1, 1, channels, squeeze)
        shapes[f"fire{index}/squeeze1x1/biases"] = (squeeze,)
        shapes[f"fire{index}/expand1x1/kernels"] = (1, 1, squeeze, expand)
        shapes[f"fire{index}/expand1x1/biases"] = (expand,)
        shapes[f"fire{index}/expand3x3/kernels"] = (3, 3, squeeze, expand)
        shapes[f"fire{index}/expand3x3/biases"] = (expand,)
        channels = 2 * expand
    shapes["conv12/kernels"] = (3, 3, channels, 72)
    shapes["conv12/biases"] = (72,)
    assert sum(int(np.prod(s)) for s in shapes.values()) == 2_082_120
    return shapes


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """He-scaled normal kernels, small biases, float32."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in official_shapes().items():
        std = np.sqrt(2.0 / np.prod(shape[:3])) if name.endswith("kernels") else 0.05
        weights[name] = (rng.standard_normal(shape) * std).astype(np.float32)
    return weights


def timed_ms(
    fn: Callable[[], object], repeats: int, before: Callable[[], None] | None = None
) -> list[float]:
    """Wall times (ms) of ``repeats`` calls after two warm-up calls; ``before`` runs untimed."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def fork_loop(
    weights: dict[str, np.ndarray], config: QuantConfig, fraction: float
) -> tuple[dict, float, int]:
    """The fork's per-element loop over the first ``fraction`` of every quantized tensor.

    Returns (outputs by name, seconds, elements done).  Same ranges, levels,
    draws and float64 arithmetic as the fork; one Python iteration per weight.
    """
    plans = plan_quantization(weights, config)
    out, done = {}, 0
    start = time.perf_counter()
    for name, plan in plans.items():
        levels = plan.grid.levels
        n = levels.size
        flat = plan.values.ravel()
        count = max(1, int(round(flat.size * fraction)))
        u = uniform_draws(config.seed, name, plan.values.shape).ravel()
        result = np.empty(count, np.float32)
        for e in range(count):
            v = float(flat[e])
            k = int(np.argmin(np.abs(levels - v)))
            if config.rounding == "stochastic" and 0 < k < n - 1:
                lower = int(np.searchsorted(levels, v, side="right")) - 1
                p_up = (v - levels[lower]) / (levels[lower + 1] - levels[lower])
                k = lower + 1 if u[e] < p_up else lower
            result[e] = levels[k]
        out[name] = result
        done += count
    return out, time.perf_counter() - start, done


def parse_bits(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def bench_grid(
    weights: dict[str, np.ndarray], bits_list: list[int], repeats: int, scale: str
) -> None:
    """Print warm and cold median (min) times of every bits x rounding x reserve_zero."""
    print(f"{'bits':>4} {'rounding':>10} {'zero':>5} {'warm':>16} {'cold (no cache)':>18}")
    worst = 0.0
    for bits in bits_list:
        for rounding in ("nearest", "stochastic"):
            for reserve_zero in (False, True):
                config = QuantConfig(
                    bits=bits, rounding=rounding, reserve_zero=reserve_zero, scale=scale
                )
                warm = timed_ms(lambda c=config: quantize_weights(weights, c), repeats)
                cold = timed_ms(
                    lambda c=config: quantize_weights(weights, c), repeats, clear_table_cache
                )
                worst = max(worst, statistics.median(warm), statistics.median(cold))
                print(f"{bits:>4} {rounding:>10} {'on' if reserve_zero else 'off':>5} "
                      f"{statistics.median(warm):>8.2f} ({min(warm):5.2f}) "
                      f"{statistics.median(cold):>10.2f} ({min(cold):5.2f})")  # fmt: skip
    print(f"worst median: {worst:.2f} ms")


def bench_loop(
    weights: dict[str, np.ndarray], bits: int, fraction: float, repeats: int, scale: str
) -> None:
    """Print the per-element loop's time (full model, or extrapolated) against the vectorized one."""
    total = sum(w.size for w in weights.values())
    for rounding in ("nearest", "stochastic"):
        config = QuantConfig(bits=bits, rounding=rounding, reserve_zero=True, scale=scale)
        loop_out, seconds, done = fork_loop(weights, config, fraction)
        fast = quantize_weights(weights, config)
        same = all(np.array_equal(fast[n].ravel()[: out.size], out) for n, out in loop_out.items())
        vector_ms = statistics.median(
            timed_ms(lambda c=config: quantize_weights(weights, c), repeats)
        )
        quantized = sum(p.values.size for p in plan_quantization(weights, config).values())
        full_s = seconds * quantized / done
        how = (
            "measured on the full model"
            if done == quantized
            else f"extrapolated from {done:,} weights ({done / quantized:.1%})"
        )
        print(f"per-element loop, {bits}-bit {rounding}, zero reserved: {full_s:.1f} s ({how}); "
              f"vectorized {vector_ms:.2f} ms; ratio {full_s * 1000 / vector_ms:,.0f}x; identical bits: {same}")  # fmt: skip
    print(f"(the loop covers the {quantized:,} quantized weights of {total:,}: conv1 stays float)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bits", default="3-11", help="bit widths, e.g. 3-11 or 8")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--scale", default="global")
    parser.add_argument("--loop-bits", type=int, default=8, help="bits for the per-element loop")
    parser.add_argument(
        "--loop-fraction", type=float, default=0.05, help="share of each tensor the loop does"
    )
    args = parser.parse_args()
    weights = random_weights()
    total = sum(w.size for w in weights.values())
    print(f"SqueezeDet weights: {total:,} in {len(weights)} tensors; scale={args.scale}; "
          f"median (min) of {args.repeats} calls, ms")  # fmt: skip
    bench_grid(weights, parse_bits(args.bits), args.repeats, args.scale)
    if args.loop_fraction > 0:
        bench_loop(weights, args.loop_bits, args.loop_fraction, args.repeats, args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
