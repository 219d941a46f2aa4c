"""Throughput of evaluate and a 4-point sweep on Ray workers vs the single-process path.

Usage: python benchmarks/bench_distributed.py [--images N] [--repeats R] [--workers 1,2]
                                              [--data DIR] [--checkpoint CKPT]

Generates a synthetic val split of N images (``squeezelens sample-data --count N
--val-fraction 1``; kept in --data DIR to be reused), then times, as medians over R
runs: the single-process ``evaluate`` and ``sweep`` (float + 6-bit stochastic seeds
0 and 1 + 8-bit nearest: 4 points), and the same on a local Ray runtime with each
worker count (the pool started once per count; its start-up is printed apart).
Prints images/s, the fraction of single-process throughput (target for 2 workers on
a 2-core machine: >= 0.90), the scaling efficiency (throughput / (workers x
1-worker throughput)), Ray's per-task overhead (median of wall time minus the
worker's own time per task), and the per-image costs the README's projection uses.
Scale up with e.g. ``--images 3741`` (the KITTI val split's size).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(fn, repeats: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeats))


def dataset_of(args):
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.synth import write_kitti_tree

    folder = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="bench-dist-"))
    try:
        return open_dataset(folder, "val")
    except Exception:  # noqa: BLE001 - not generated yet (or another size): make it
        write_kitti_tree(folder, args.images, seed=0, val_fraction=1.0)
        return open_dataset(folder, "val")


def points():
    from squeezelens.engine.quant import QuantConfig
    from squeezelens.engine.sweep import sweep_points

    stochastic = QuantConfig(bits=6, rounding="stochastic")
    return sweep_points([stochastic, QuantConfig(bits=8)], repeats=2)


def meta(detector, dataset) -> dict:
    return {"checkpoint_sha256": detector.checkpoint.sha256, "kitti_root": str(dataset.root),
            "split": "val", "protocol": "official",
            "input_size": list(detector.spec.input_size)}  # fmt: skip


def sweep_once(detector, dataset, detect=None) -> None:
    from squeezelens.engine.sweep import run_sweep

    with tempfile.TemporaryDirectory() as out:
        run_sweep(detector, dataset, points(), Path(out), meta(detector, dataset), detect=detect)


def single_process(detector, dataset, repeats: int) -> dict:
    from squeezelens.engine.evaluate import evaluate

    evaluate(detector, dataset)  # warm-up (tracing)
    return {
        "evaluate": median_of(lambda: evaluate(detector, dataset), repeats),
        "sweep": median_of(lambda: sweep_once(detector, dataset), repeats),
    }


def on_ray(detector, dataset, workers: int, repeats: int, threads: int | None) -> dict:
    """Timings on ``workers`` Ray workers; ``threads`` per worker (None: the resource rule)."""
    import ray

    from squeezelens.engine.distributed import ClusterSpec, ModelPayload, WorkerPool, open_pool
    from squeezelens.engine.distributed.runtime import Runtime, WorkerResources

    payload = ModelPayload.from_model(detector)
    start = time.perf_counter()
    if threads is None:
        with open_pool(payload, ClusterSpec(workers=workers)) as pool:
            return _measure(pool, detector, dataset, repeats, time.perf_counter() - start, ray)
    runtime = Runtime(ClusterSpec(workers=workers)).__enter__()  # the benchmark's runtime
    with WorkerPool(runtime, payload, workers, WorkerResources(threads, 0, threads)) as pool:
        return _measure(pool, detector, dataset, repeats, time.perf_counter() - start, ray)


def _measure(pool, detector, dataset, repeats: int, started: float, ray) -> dict:
    from squeezelens.engine.distributed import detect_points, evaluate_on_pool

    evaluate_on_pool(pool, dataset)  # warm-up (tracing in every worker)
    evaluate_s = median_of(lambda: evaluate_on_pool(pool, dataset), repeats)
    per_image = [t["compute_s"] / t["images"] for t in pool.timings]  # evaluate's tasks

    def sweep_seconds() -> float:
        ray.get([a.drop_caches.remote() for a in pool.actors])  # inputs prepared once per sweep
        source = lambda pts: detect_points(pool, dataset, pts)  # noqa: E731
        return timed(lambda: sweep_once(detector, dataset, source))

    return {
        "evaluate": evaluate_s,
        "sweep": statistics.median(sweep_seconds() for _ in range(repeats)),
        "start": started,
        "threads": pool.resources.threads,
        "overhead": statistics.median(t["wall_s"] - t["compute_s"] for t in pool.timings),
        "task_s": statistics.median(per_image),
    }


def scoring_cost(detector, dataset) -> float:
    """Seconds per image of the parent's scoring (one devkit run over one point's detections)."""
    from squeezelens.engine.eval import evaluate_detections
    from squeezelens.engine.evaluate import detect_dataset

    dets = detect_dataset(detector, dataset)
    seconds = median_of(
        lambda: evaluate_detections(dataset.records, dets, classes=detector.class_names), 3
    )
    return seconds / len(dataset)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=48, help="synthetic val images (default 48)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per measure (median)")
    ap.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    ap.add_argument("--data", help="folder to keep (or reuse) the generated set in")
    ap.add_argument("--checkpoint", help="default: the bundled sample model")
    args = ap.parse_args()

    import ray

    from squeezelens.engine.detector import Detector
    from squeezelens.engine.prefetch import usable_cpus
    from squeezelens.engine.samples import default_checkpoint

    dataset, counts = dataset_of(args), _counts(args.workers)
    detector = Detector.from_checkpoint(args.checkpoint or default_checkpoint())
    n, n_points, cores = len(dataset), len(points()), usable_cpus()
    print(f"{n} synthetic images, {detector.spec.input_size[0]}x{detector.spec.input_size[1]} "
          f"input, {n_points}-point sweep, {cores} usable cores, medians of {args.repeats} runs "
          "(timings on a shared machine are noisy)")  # fmt: skip
    base = single_process(detector, dataset, args.repeats)
    ray.init(address="local", num_cpus=cores, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)  # fmt: skip
    try:
        runs = {}
        for w in counts:  # the resource rule's threads, and 1 thread where the rule gives more
            for threads in dict.fromkeys([max(1, cores // w), 1]):
                pinned = None if threads == max(1, cores // w) else threads
                runs[(w, threads)] = on_ray(detector, dataset, w, args.repeats, pinned)
    finally:
        ray.shutdown()
    report(base, runs, n, n_points, scoring_cost(detector, dataset))


def _counts(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def report(base: dict, runs: dict, n: int, n_points: int, score_s: float) -> None:
    """runs: (workers, threads per worker) -> timings."""
    rate = {"evaluate": n, "sweep": n * n_points}
    print(f"{'':<20}{'evaluate img/s':>15}{'vs single':>10}{'sweep img/s':>13}{'vs single':>10}"
          f"{'scaling':>9}{'task overhead':>15}{'start':>8}")  # fmt: skip
    print(f"{'single process':<20}{rate['evaluate'] / base['evaluate']:>15.2f}{1:>10.2f}"
          f"{rate['sweep'] / base['sweep']:>13.2f}{1:>10.2f}")  # fmt: skip
    for (w, threads), r in runs.items():
        ev, sw = rate["evaluate"] / r["evaluate"], rate["sweep"] / r["sweep"]
        one = runs.get((1, threads))
        scale = "" if one is None else f"{ev / (w * rate['evaluate'] / one['evaluate']):.2f}"
        name = f"{w} worker(s) x{threads} thr"
        print(f"{name:<20}{ev:>15.2f}{base['evaluate'] / r['evaluate']:>10.2f}"
              f"{sw:>13.2f}{base['sweep'] / r['sweep']:>10.2f}{scale:>9}"
              f"{r['overhead'] * 1000:>12.1f} ms{r['start']:>7.1f}s")  # fmt: skip
    print(
        "scaling: evaluate img/s / (workers x the same threads' 1-worker img/s); task "
        "overhead: median of (wall - worker time) per task; start: workers up, model loaded"
    )
    for (w, _), r in runs.items():
        print(
            f"{w} worker(s) x{r['threads']}t: {r['task_s'] * 1000:.1f} ms of worker time per "
            f"image = {r['task_s'] * r['threads'] * 1000:.1f} core-ms"
        )
    print("worker time per image: evaluate's tasks (decode, preprocess, forward, decode boxes)")
    print(f"parent scoring: {score_s * 1000:.2f} ms per image per point (one devkit run)")


if __name__ == "__main__":
    main()
