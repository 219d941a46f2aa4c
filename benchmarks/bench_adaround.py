"""Wall time of AdaRound on the whole model, and where it goes (one run: it takes minutes).

Loads the checkpoint (default: the bundled model), takes the calibration images by
the project's rule (--calib, else the train split of --kitti-root, else the bundled
sample data; --count of them), and rounds every quantized layer by AdaRound
(``engine.quant.remedies.pipeline.remedied_weights``, no cache) at --iterations
steps per layer, reporting the total, the time per layer (walk + optimisation)
and the settings: input size, images, rows sampled per layer, batch, BLAS threads.
Target: the whole model within 15 minutes with 32 calibration images on 2 cores.

    .venv/bin/python benchmarks/bench_adaround.py --count 32 --calib DIR
    .venv/bin/python benchmarks/bench_adaround.py --checkpoint CKPT --kitti-root ROOT --count 32
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from squeezelens.engine.calibration import default_calibration  # noqa: E402
from squeezelens.engine.detector import Detector  # noqa: E402
from squeezelens.engine.model.topology import conv_layers  # noqa: E402
from squeezelens.engine.quant import QuantConfig  # noqa: E402
from squeezelens.engine.quant.remedies import adaround  # noqa: E402
from squeezelens.engine.quant.remedies.pipeline import remedied_weights  # noqa: E402
from squeezelens.engine.samples import default_checkpoint  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="default: the bundled sample model")
    parser.add_argument("--kitti-root", help="calibrate on its train split")
    parser.add_argument("--calib", nargs="+", help="calibration images (files or folders)")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--scale", default="channel")
    parser.add_argument("--range", default="mse")
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args()
    detector = Detector.from_checkpoint(args.checkpoint or default_checkpoint())
    calibration = default_calibration(args.kitti_root, args.calib or (), args.count)
    start = time.perf_counter()
    images = calibration.images()
    inputs = np.stack([detector.preprocess(im)[0] for im in images])
    prepared = time.perf_counter() - start
    config = QuantConfig(bits=args.bits, scale=args.scale, range=args.range,
                         rounding="adaround", adaround_iterations=args.iterations)  # fmt: skip
    names = [layer.name for layer in conv_layers(detector.spec.variant)]
    stamps = [time.perf_counter()]
    remedied_weights(detector.float_weights, detector.spec.variant, config, inputs,
                     progress=lambda done, total: stamps.append(time.perf_counter()))  # fmt: skip
    total = stamps[-1] - stamps[0]
    w, h = detector.spec.input_size
    print(f"{config.describe()}")
    print(f"input {w}x{h}, {len(inputs)} calibration images ({calibration.source}), "
          f"{args.iterations} iterations per layer, {adaround.ROWS} rows per layer, batch "
          f"{adaround.BATCH}, BLAS threads {adaround.BLAS_THREADS}")  # fmt: skip
    print(f"images read and preprocessed: {prepared:.1f} s")
    for name, t0, t1 in zip(names, stamps, stamps[1:]):
        print(f"  {name:<20} {t1 - t0:7.1f} s")
    print(f"AdaRound, whole model: {total:.1f} s ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
