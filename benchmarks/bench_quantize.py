"""Speed of engine.quant.quantize_weights on the full SqueezeDet model (2,082,120 weights),
against the low-precision fork's algorithm written out straightforwardly.

Random weights of the official shapes (He-like scales).  First the engine: for
bits x rounding x reserve_zero (default bits 3, 6, 8, 11, 16) the median and
minimum over repeated calls (nothing is cached between calls: every call
builds its grids and level tables anew), whether the compiled kernels ran
(numba) and, with --numpy, the same without them.

Then the fork's algorithm, independent of the engine: the quantized tensors
(every kernel and bias but conv1's), their range (global: min over all of them
and max(0, max over all); groups: one range for the conv layers, one for the
fire layers), the 2^N levels ``lo + i*step``, ``step = (hi-lo)/(2^N-1)``, in
float64 (the engine evaluates ``lo + (i*(hi-lo))/(2^N-1)``: the levels may
differ in the last float64 bit, the float32 results must not) with the
level closest to 0 replaced by 0 when zero is reserved, and rounding in a
Python loop over the elements as the fork does (per element, the closest level
by float64 distance, a tie to the lower; stochastic: end levels kept, else up
iff u < (v - lower)/(upper - lower)).  Its stochastic draws are the engine's
documented per-tensor draws (``uniform_draws(seed, name, shape)``), fed in, so
both must give the same bits.  The loop is timed on the full model at
--loop-bits (a smaller --loop-fraction extrapolates, and says so) and checked
bit for bit there; at every benchmarked width it is checked on the first
--check-fraction of every tensor.

    .venv/bin/python benchmarks/bench_quantize.py                      # full-model loop at 8 bits
    .venv/bin/python benchmarks/bench_quantize.py --bits 3-11 --loop-bits 6
    .venv/bin/python benchmarks/bench_quantize.py --scale channel --bits 8 --loop-fraction 0
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from squeezelens.engine.quant import (  # noqa: E402
    QuantConfig,
    kernels,  # noqa: E402
    quantize_weights,
    uniform_draws,
)

FIRES = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256),
         (96, 384), (96, 384)]  # fmt: skip
TABLE_BITS = "3,6,8,11,16"


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
    fn: Callable[[], object],
    repeats: int,
    before: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Times (ms, wall unless ``clock`` says otherwise) of ``repeats`` calls after two warm-up
    calls; ``before`` runs untimed."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if before:
            before()
        start = clock()
        fn()
        times.append((clock() - start) * 1000.0)
    return times


# --- the fork's algorithm, written out (no engine code) ----------------------------------


def fork_units(weights: dict[str, np.ndarray], scale: str) -> dict[str, list[str]]:
    """Range unit -> tensor names: every kernel and bias but conv1's, in one unit ("global")
    or two ("groups": layers named conv*, layers named fire*)."""
    units: dict[str, list[str]] = {}
    for name in weights:
        layer, _, kind = name.rpartition("/")
        if kind not in ("kernels", "biases") or layer == "conv1":
            continue
        unit = "all" if scale == "global" else ("conv" if layer.startswith("conv") else "fire")
        units.setdefault(unit, []).append(name)
    return units


def fork_levels(lo: float, hi: float, bits: int, reserve_zero: bool) -> list[float]:
    """The 2^bits levels lo + i*step, step = (hi-lo)/(2^bits-1), in Python floats (float64),
    the step computed first as in the fork's code; with reserve_zero the level closest to
    0 (the first on a tie) becomes exactly 0."""
    n = 2**bits
    step = (hi - lo) / (n - 1)
    levels = [lo + i * step for i in range(n)]
    if reserve_zero:
        closest = 0
        for i, level in enumerate(levels):
            if abs(level) < abs(levels[closest]):
                closest = i
        levels[closest] = 0.0
    return levels


def fork_round(value: float, levels: np.ndarray, u: float | None) -> float:
    """One element, as the fork rounds it: the closest level by float64 distance (the
    lower on a tie); stochastic (u given): an end level stays, else between the two
    neighbouring levels lower <= v < upper, up iff u < (v - lower) / (upper - lower)."""
    k = int(np.argmin(np.abs(levels - value)))
    if u is None or k == 0 or k == len(levels) - 1:
        return float(levels[k])
    lower = k if value >= levels[k] else k - 1
    p_up = (value - float(levels[lower])) / (float(levels[lower + 1]) - float(levels[lower]))
    return float(levels[lower + 1] if u < p_up else levels[lower])


def fork_quantize(
    weights: dict[str, np.ndarray], config: QuantConfig, fraction: float = 1.0
) -> tuple[dict[str, np.ndarray], float, int]:
    """The fork's quantization of the first ``fraction`` of every quantized tensor.

    Returns (float32 outputs by name, seconds of the element loop, elements done).
    """
    out, done, seconds = {}, 0, 0.0
    for names in fork_units(weights, config.scale).values():
        lo = min(float(weights[n].min()) for n in names)
        hi = max(0.0, max(float(weights[n].max()) for n in names))
        levels = np.array(fork_levels(lo, hi, config.bits, config.reserve_zero))
        for name in names:
            flat = weights[name].ravel()
            count = max(1, int(round(flat.size * fraction)))
            draws = None
            if config.rounding == "stochastic":
                draws = uniform_draws(config.seed, name, weights[name].shape).ravel().tolist()
            values = flat[:count].tolist()
            start = time.perf_counter()
            result = [fork_round(v, levels, None if draws is None else draws[e])
                      for e, v in enumerate(values)]  # fmt: skip
            seconds += time.perf_counter() - start
            out[name] = np.array(result, dtype=np.float32)
            done += count
    return out, seconds, done


def same_bits(engine: dict[str, np.ndarray], fork: dict[str, np.ndarray]) -> bool:
    """The engine's outputs equal the fork's on every element the fork computed (bit for bit)."""
    return all(
        np.array_equal(engine[n].ravel()[: f.size].view(np.uint32), f.view(np.uint32))
        for n, f in fork.items()
    )


# --- benchmarks -----------------------------------------------------------------------------


def parse_bits(text: str) -> list[int]:
    """'3,6,8' or '3-11' (or a mix) to a list of widths."""
    bits: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        bits.extend(range(int(first), int(last or first) + 1))
    return bits


def bench_grid(
    weights: dict[str, np.ndarray], bits_list: list[int], repeats: int, scale: str
) -> dict[QuantConfig, float]:
    """Print the median (min) time of every bits x rounding x reserve_zero; returns the
    medians by config."""
    print(f"{'bits':>4} {'rounding':>10} {'zero':>5} {'median (min) ms':>18}")
    medians: dict[QuantConfig, float] = {}
    for bits in bits_list:
        for rounding in ("nearest", "stochastic"):
            for reserve_zero in (False, True):
                config = QuantConfig(
                    bits=bits, rounding=rounding, reserve_zero=reserve_zero, scale=scale
                )
                times = timed_ms(lambda c=config: quantize_weights(weights, c), repeats)
                medians[config] = statistics.median(times)
                print(f"{bits:>4} {rounding:>10} {'on' if reserve_zero else 'off':>5} "
                      f"{statistics.median(times):>10.2f} ({min(times):5.2f})")  # fmt: skip
    print(f"worst median: {max(medians.values()):.2f} ms")
    return medians


def bench_loop(
    weights: dict[str, np.ndarray], bits: int, fraction: float, repeats: int, scale: str
) -> None:
    """Time the fork's element loop (full model unless ``fraction`` < 1) against the engine."""
    quantized = sum(weights[n].size for ns in fork_units(weights, scale).values() for n in ns)
    for rounding in ("nearest", "stochastic"):
        config = QuantConfig(bits=bits, rounding=rounding, reserve_zero=True, scale=scale)
        fork, seconds, done = fork_quantize(weights, config, fraction)
        same = same_bits(quantize_weights(weights, config), fork)
        engine_ms = statistics.median(
            timed_ms(lambda c=config: quantize_weights(weights, c), repeats)
        )
        full_s = seconds * quantized / done
        how = ("measured on the full model" if done == quantized
               else f"EXTRAPOLATED from {done:,} weights ({done / quantized:.1%})")  # fmt: skip
        print(f"fork loop, {bits}-bit {rounding}, zero reserved: {full_s:.1f} s ({how}); "
              f"engine {engine_ms:.2f} ms; ratio {full_s * 1000 / engine_ms:,.0f}x; "
              f"identical bits: {same}")  # fmt: skip
    print(f"(the loop covers the {quantized:,} quantized weights: conv1 stays float)")


def check_widths(weights: dict[str, np.ndarray], bits_list: list[int], fraction: float,
                 scale: str) -> bool:  # fmt: skip
    """Bit-exact check of the engine against the fork's loop on a fraction of every tensor."""
    ok = True
    for bits in bits_list:
        for rounding in ("nearest", "stochastic"):
            for reserve_zero in (False, True):
                config = QuantConfig(
                    bits=bits, rounding=rounding, reserve_zero=reserve_zero, scale=scale
                )
                fork, _, done = fork_quantize(weights, config, fraction)
                same = same_bits(quantize_weights(weights, config), fork)
                ok &= same
                print(f"  {bits:>2}-bit {rounding:>10} zero {'on ' if reserve_zero else 'off'}: "
                      f"{done:,} elements, identical bits: {same}")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bits", default=TABLE_BITS, help="widths, e.g. 3,6,8,11,16 or 3-11")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--scale", default="global", help="global | groups (fork) or layer | channel"
    )
    parser.add_argument("--loop-bits", type=int, default=8, help="bits of the timed fork loop")
    parser.add_argument(
        "--loop-fraction",
        type=float,
        default=1.0,
        help="share of each tensor the timed loop does (< 1 extrapolates; 0 skips)",
    )
    parser.add_argument("--numpy", action="store_true",
                        help="without the compiled kernels (the numpy fallback)")  # fmt: skip
    parser.add_argument("--check-fraction", type=float, default=0.01,
                        help="share of each tensor checked at every width (0 skips)")  # fmt: skip
    args = parser.parse_args()
    if args.numpy:
        os.environ[kernels.DISABLE_ENV] = "1"
    print("rounding: " + ("compiled kernels (numba)" if kernels.compiled() else "numpy passes"))
    weights = random_weights()
    total = sum(w.size for w in weights.values())
    print(f"SqueezeDet weights: {total:,} in {len(weights)} tensors; scale={args.scale}; "
          f"median (min) of {args.repeats} calls, ms")  # fmt: skip
    bits_list = parse_bits(args.bits)
    bench_grid(weights, bits_list, args.repeats, args.scale)
    if args.scale not in ("global", "groups"):
        print("(the fork's algorithm has global and groups ranges only: no loop, no check)")
        return 0
    if args.loop_fraction > 0:
        bench_loop(weights, args.loop_bits, args.loop_fraction, args.repeats, args.scale)
    if args.check_fraction > 0:
        print(f"bit-exact check on the first {args.check_fraction:.1%} of every tensor:")
        if not check_widths(weights, bits_list, args.check_fraction, args.scale):
            print("MISMATCH: the engine differs from the fork's algorithm")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
