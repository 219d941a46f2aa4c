"""Latency of "new QuantConfig -> quantized detections for one 1248x384 image".

What the GUI pays when the user moves a quantization control: quantize the
float weights under the new config, assign them into the model's variables,
run the forward pass and post-process the ConvDet output into detections.
The image is decoded and pre-processed once (the GUI keeps it).  Every
iteration uses a config not seen before (bits 2-16 cycle together with
rounding, scale and seed); quantization caches nothing between configs.

    .venv/bin/python benchmarks/bench_quant_latency.py [--iterations N]

Runs a random-weight SqueezeDet of the official shapes and, when ../shared is
present, the real checkpoint (input size forced to 1248x384).  Prints, per
model: median and p90 (ms) of the end-to-end path through the public API
(``Detector.forward`` + ``Detector.decode``) and the median of each stage
timed separately (quantize / assign / forward / post-process).  Target:
median <= 120 ms.  Beside the forward right after the swap, a second forward
on the same weights (not part of the path) tells whether a swap slows the
next forward down (on this TensorFlow it does not: oneDNN reorders the
weights at every call unless they are declared frozen).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# random weights give huge logits: the sigmoid's exp overflows to the right answer (0), loudly
warnings.filterwarnings("ignore", "overflow encountered in exp", RuntimeWarning)
SHARED = REPO.parent / "shared"
REAL_CKPT = SHARED / "checkpoints" / "squeezedet_kitti_tf1" / "model.ckpt-87000"
REAL_IMAGE = SHARED / "kitti" / "training" / "image_2" / "000010.png"
SIZE = (1248, 384)
TARGET_MS = 120.0
ROUNDINGS = ("nearest", "stochastic")
SCALES = ("global", "groups", "layer", "channel")


def configs(count: int, offset: int = 0) -> Iterator:
    """``count`` distinct QuantConfigs; bits change at every step (2..16, cycling)."""
    from squeezelens.engine.quant import QuantConfig

    for i in range(offset, offset + count):
        yield QuantConfig(
            bits=2 + i % 15,
            rounding=ROUNDINGS[i % 2],
            scale=SCALES[(i // 2) % len(SCALES)],
            reserve_zero=(i // 3) % 2 == 1,
            seed=i,
        )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - start) * 1000.0


def end_to_end(det, x: np.ndarray, scale, quant) -> float:
    """ms for one config through the public path: forward(quant) (quantize + assign + run) + decode."""
    start = time.perf_counter()
    dets = det.decode(det.forward(x[None], quant)[0], scale)
    elapsed = (time.perf_counter() - start) * 1000.0
    assert dets is not None
    return elapsed


def stages(det, x: np.ndarray, scale, quant) -> tuple[float, float, float, float, float]:
    """ms of each stage for one config, each timed on its own, then of a second
    forward on the same weights (steady state, for comparison)."""
    weights, t_q = timed(lambda: det.quantized_weights(quant))
    _, t_a = timed(lambda: det._assign(weights))
    det._loaded_key = quant  # the variables now hold this config: forward must not redo it
    raw, t_f = timed(lambda: det.forward(x[None], quant))
    _, t_p = timed(lambda: det.decode(raw[0], scale))
    _, t_again = timed(lambda: det.forward(x[None], quant))
    return t_q, t_a, t_f, t_p, t_again


def measure(det, x: np.ndarray, scale, iterations: int):
    """Alternate end-to-end and per-stage timing config by config (a neighbour's load on the
    shared CPU then hits both alike).  Returns (end-to-end ms, {stage: ms}, configs staged)."""
    total: list[float] = []
    parts: dict[str, list[float]] = {
        "quantize": [],
        "assign": [],
        "forward": [],
        "post-process": [],
        "forward again": [],
    }
    staged = []
    for i, quant in enumerate(configs(2 * iterations, offset=1000)):
        if (i // 8) % 2 == 0:  # blocks of 8 hold every rounding x scale, and both modes get them
            total.append(end_to_end(det, x, scale, quant))
        else:
            staged.append(quant)
            for name, t in zip(parts, stages(det, x, scale, quant)):
                parts[name].append(t)
    return total, parts, staged


def bench(name: str, det, image: np.ndarray, iterations: int) -> None:
    x, scale = det.preprocess(image)
    _, t_pre = timed(lambda: det.preprocess(image))
    det.forward(x[None])  # trace the float function
    for quant in configs(3, offset=9000):  # warm-up: trace, thread pool, allocator
        det.decode(det.forward(x[None], quant)[0], scale)
    total, parts, staged = measure(det, x, scale, iterations)
    med = statistics.median(total)
    print(f"\n{name}: {det.summary()}")
    print(f"  new config -> detections, {iterations} distinct configs:")
    verdict = "meets" if med <= TARGET_MS else "misses"
    print(
        f"    median {med:.1f} ms, p90 {percentile(total, 90):.1f} ms "
        f"({verdict} the {TARGET_MS:.0f} ms target)"
    )
    print("    median per stage (timed separately):")
    path = [stage for stage in parts if stage != "forward again"]
    for stage in path:
        print(f"      {stage:<13}{statistics.median(parts[stage]):8.1f} ms")
    print(f"      {'sum':<13}{sum(statistics.median(parts[s]) for s in path):8.1f} ms")
    print(
        f"    forward again on the same weights (not in the path): "
        f"{statistics.median(parts['forward again']):.1f} ms"
    )
    by_rounding = {r: [] for r in ROUNDINGS}
    for quant, t in zip(staged, parts["quantize"]):
        by_rounding[quant.rounding].append(t)
    print(
        "    quantize median by rounding: "
        + ", ".join(f"{r} {statistics.median(v):.1f} ms" for r, v in by_rounding.items() if v)
    )
    print(f"    (pre-processing, done once per image: {t_pre:.1f} ms)")
    print(
        f"    tf.function traces: float {det._forward_float.experimental_get_tracing_count()}, "
        f"activation-quant {det._forward_actq.experimental_get_tracing_count()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=40, help="configs per measurement")
    args = ap.parse_args()

    from squeezelens.engine.detector import Detector
    from squeezelens.engine.model.spec import ArchSpec, expected_shapes

    if REAL_IMAGE.exists():
        from squeezelens.engine.data.images import read_image_bgr

        image = read_image_bgr(REAL_IMAGE)
    else:
        image = np.random.default_rng(1).integers(0, 255, (375, 1242, 3), dtype=np.uint8)
    from squeezelens.engine.tf_runtime import import_tf

    tf = import_tf()
    print(
        f"CPU threads: {os.cpu_count()}, TF intra-op {tf.config.threading.get_intra_op_parallelism_threads()}"
        f", image {image.shape[1]}x{image.shape[0]}"
    )
    spec = ArchSpec().with_input_size(SIZE)
    rng = np.random.default_rng(0)
    weights = {
        k: (rng.standard_normal(s) * 0.05).astype(np.float32)
        for k, s in expected_shapes(spec).items()
    }
    bench("random weights", Detector(spec, weights), image, args.iterations)
    if REAL_CKPT.parent.exists():
        det = Detector.from_checkpoint(REAL_CKPT, input_size=SIZE)
        bench(f"real checkpoint {REAL_CKPT.name}", det, image, args.iterations)
    else:
        print("\n../shared absent: real checkpoint skipped")


if __name__ == "__main__":
    main()
