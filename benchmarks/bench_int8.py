"""Latency of the float TF forward vs the full-integer LiteRT model of SqueezeDet.

Both run one preprocessed (1, H, W, 3) input on the CPU with the same thread
count; the INT8 figure includes quantizing the input and dequantizing the
output (what Int8Detector.raw_output pays), not preprocessing or decoding.

    .venv/bin/python benchmarks/bench_int8.py                      # random weights, 1248x384
    .venv/bin/python benchmarks/bench_int8.py --checkpoint CKPT --calib DIR
    .venv/bin/python benchmarks/bench_int8.py --investigate        # threads/XNNPACK/IO/per-channel

Prints median latencies (ms), the speed-up and the conversion time.
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each fn, measured in alternating rounds of 5 calls.

    The CPU is shared: alternating spreads a neighbour's transient load over
    all candidates instead of penalising whichever ran during it.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
        fn()
    for _ in range(max(1, repeats // 5)):
        for name, fn in fns.items():
            for _ in range(5):
                t = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t) * 1000.0)
    return {k: statistics.median(v) for k, v in times.items()}


def random_detector(size: tuple[int, int], seed: int = 0):
    """Detector with He-initialised weights of the official shapes (ConvDet scaled down
    so raw outputs stay in a realistic logit range)."""
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.model.spec import ArchSpec, expected_shapes

    spec = ArchSpec().with_input_size(size)
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in expected_shapes(spec).items():
        if name.endswith("kernels"):
            std = np.sqrt(2.0 / np.prod(shape[:3])) * (0.1 if name.startswith("conv12") else 1.0)
            weights[name] = rng.normal(0.0, std, shape).astype(np.float32)
        else:
            weights[name] = rng.normal(0.0, 0.01, shape).astype(np.float32)
    return Detector(spec, weights)


def synthetic_images(n: int, size: tuple[int, int], seed: int = 1) -> list[np.ndarray]:
    """Smooth random BGR scenes (H, W, 3) uint8: low-frequency colour blobs plus noise."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.uniform(0, 255, (max(h // 16, 2), max(w // 16, 2), 3)).astype(np.float32)
        im = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 8, (h, w, 3))
        out.append(np.clip(im, 0, 255).astype(np.uint8))
    return out


def load_inputs(args) -> tuple[object, list[np.ndarray], np.ndarray]:
    """(float detector, calibration images, one test image) from the command line."""
    from squeezelens.engine.data.images import list_images, read_image_bgr
    from squeezelens.engine.detector import Detector

    if args.checkpoint:
        det = Detector.from_checkpoint(args.checkpoint)
    else:
        det = random_detector(tuple(args.size))
    if args.calib:
        paths = list_images(args.calib)[: args.calib_count + 1]
        images = [read_image_bgr(p) for p in paths]
    else:
        images = synthetic_images(args.calib_count + 1, det.spec.input_size)
    return det, images[:-1], images[-1]


def int8_runner(det, data: bytes, x: np.ndarray, threads: int, resolver: str = "AUTO"):
    """A callable running Int8Detector._invoke (quantize, invoke, dequantize) on x (1, H, W, 3).

    resolver "AUTO" applies LiteRT's default XNNPACK delegate;
    "BUILTIN_WITHOUT_DEFAULT_DELEGATES" runs TFLite's own reference-optimised kernels.
    """
    from ai_edge_litert import interpreter as litert

    from squeezelens.engine.int8 import Int8Detector

    q = Int8Detector(det, data, num_threads=threads)
    if resolver != "AUTO":  # rebuild the interpreter without the default delegate
        kind = getattr(litert.OpResolverType, resolver)
        q._interp = litert.Interpreter(
            model_content=data, num_threads=threads, experimental_op_resolver_type=kind
        )
        q._interp.allocate_tensors()
    return lambda: q._invoke(x)


def convert_timed(det, calib, options) -> tuple[bytes, float]:
    """(tflite bytes, seconds) of one uncached conversion."""
    from squeezelens.engine.int8 import convert_int8

    t = time.perf_counter()
    data = convert_int8(det, calib, options=options)
    return data, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="real checkpoint (default: random weights)")
    parser.add_argument("--size", type=int, nargs=2, default=(1248, 384), metavar=("W", "H"))
    parser.add_argument("--calib", nargs="*", help="calibration image files/folders")
    parser.add_argument("--calib-count", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--investigate", action="store_true", help="also time variants")
    args = parser.parse_args(argv)

    from squeezelens.engine.int8 import ConvertOptions
    from squeezelens.engine.tf_runtime import import_tf

    tf = import_tf()  # same thread budget for both runtimes
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    det, calib, test_image = load_inputs(args)
    x = det.preprocess(test_image)[0][None]
    w, h = det.spec.input_size
    source = args.checkpoint or "random weights (official shapes)"
    print(f"SqueezeDet {w}x{h}, {source}, {len(calib)} calibration images, {args.threads} threads")

    data, conv_s = convert_timed(det, calib, ConvertOptions())
    print(f"conversion: {conv_s:.1f} s, {len(data) / 2**20:.2f} MB")
    ms = interleaved_ms(
        {"float": lambda: det.forward(x), "int8": int8_runner(det, data, x, args.threads)},
        args.repeats,
    )
    print(f"float32 TF forward : {ms['float']:8.2f} ms (median of {args.repeats})")
    print(f"int8 LiteRT        : {ms['int8']:8.2f} ms (median of {args.repeats})")
    print(f"speed-up           : {ms['float'] / ms['int8']:8.2f}x")
    if args.investigate:
        investigate(det, calib, x, data, args)
    return 0


def investigate(det, calib, x: np.ndarray, data: bytes, args) -> None:
    """Latency of variants: thread count, XNNPACK on/off, float I/O, per-tensor weights."""
    from squeezelens.engine.int8 import ConvertOptions

    float_io = convert_timed(det, calib, ConvertOptions(io_dtype="float32"))[0]
    per_tensor = convert_timed(det, calib, ConvertOptions(per_channel=False))[0]
    no_xnn = "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
    runners = {
        "int8 I/O, per-channel, XNNPACK, 1 thread": int8_runner(det, data, x, 1),
        f"int8 I/O, per-channel, XNNPACK, {args.threads} threads": int8_runner(
            det, data, x, args.threads
        ),
        "int8 I/O, TFLite builtin kernels (no XNNPACK)": int8_runner(
            det, data, x, args.threads, no_xnn
        ),
        "float I/O (QUANTIZE/DEQUANTIZE in the graph)": int8_runner(det, float_io, x, args.threads),
        "int8 I/O, per-tensor weight scales": int8_runner(det, per_tensor, x, args.threads),
    }
    for label, value in interleaved_ms(runners, args.repeats).items():
        print(f"  {label:48s}: {value:8.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
