"""Training steps with and without TensorFlow's op determinism (medians), and reproducibility.

Usage: python benchmarks/bench_train_determinism.py [--rounds R] [--steps N] [--size WxH] [--batch B]
Each round runs two child processes, one per mode (``tf.config.experimental.
enable_op_determinism()`` off / on: it is process-wide), alternating which goes first.  A
child trains N steps (plus one untimed warm-up step) on the bundled sample data with the
same seed and prints its per-step times and the losses.  Prints the median step time of
each mode and whether every run gave bit-identical losses (same seed, same data, same
machine: they must, in both modes, on a CPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(deterministic: bool, steps: int, size: tuple[int, int], batch: int) -> None:
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.model.spec import ArchSpec
    from squeezelens.engine.samples import default_kitti_root
    from squeezelens.engine.tf_runtime import import_tf
    from squeezelens.engine.train import TrainConfig, Trainer
    from squeezelens.engine.train.data import BatchSource
    from squeezelens.engine.train.state import init_weights

    tf = import_tf()
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    spec = ArchSpec().with_input_size(size)
    config = TrainConfig(steps=steps + 1, batch=batch, seed=7)
    records = open_dataset(default_kitti_root(), "train").records
    source = BatchSource(records, spec, batch, config.seed, config.augmentation)
    trainer = Trainer(spec, init_weights(spec, config.seed), config)
    times, losses = [], []
    for step in range(steps + 1):
        batch_ = source.batch_at(step)
        start = time.perf_counter()
        terms = trainer.step(batch_, config.lr_at(step))
        if step:  # the first step traces the graph
            times.append(time.perf_counter() - start)
        losses.append(terms["total"])
    print(json.dumps({"times": times, "losses": losses}))


def run_child(deterministic: bool, args) -> dict:
    argv = [sys.executable, __file__, "--child", "on" if deterministic else "off",
            "--steps", str(args.steps), "--size", args.size, "--batch", str(args.batch)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--size", default="624x192")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--child", choices=("on", "off"))
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    if args.child:
        child(args.child == "on", args.steps, (w, h), args.batch)
        return
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for r in range(args.rounds):
        for deterministic in (False, True) if r % 2 == 0 else (True, False):
            runs[deterministic].append(run_child(deterministic, args))
    print(f"{args.rounds} rounds x {args.steps} steps, batch {args.batch} at {w}x{h}, seed 7")
    for deterministic, results in runs.items():
        times = [t for res in results for t in res["times"]]
        label = "op determinism on " if deterministic else "op determinism off"
        print(f"{label}: median step {statistics.median(times) * 1000:.0f} ms")
    all_losses = [res["losses"] for results in runs.values() for res in results]
    same = all(losses == all_losses[0] for losses in all_losses)
    print(f"bit-identical losses in all {len(all_losses)} runs (both modes): {same}")
    print(f"losses: {all_losses[0]}")


if __name__ == "__main__":
    main()
