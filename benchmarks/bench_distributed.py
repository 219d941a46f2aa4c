"""Throughput of evaluate and a 4-point sweep on Ray workers vs the single-process path.

Usage: python benchmarks/bench_distributed.py [--images N] [--repeats R] [--workers 1,2]
                                              [--data DIR] [--checkpoint CKPT]

Generates a synthetic val split of N images (``squeezelens sample-data --count N
--val-fraction 1``; kept in --data DIR to be reused), starts one pool of Ray workers
per setting (each worker count with the resource rule's threads, plus 1 thread per
worker where the rule gives more), then times, in interleaved rounds each starting with
another setting (so a machine whose load drifts affects every setting alike), the
single-process ``evaluate`` and ``sweep`` (float + 6-bit stochastic seeds 0 and 1 +
8-bit nearest: 4 points) and the same on each pool.  Prints medians over R rounds: images/s, the fraction of
single-process throughput (target for 2 workers on a 2-core machine: >= 0.90), the
scaling efficiency (throughput / (workers x 1-worker throughput), same threads per
worker), Ray's per-task overhead (median of wall time minus the worker's own time per
task), the pool start-up, the per-image costs, and the README's projection of the fork's
3-seed sweep on the full val split for 2, 8, 32 and 128 cores (see :func:`project`).
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


def dataset_of(args):
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.synth import write_kitti_tree

    folder = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="bench-dist-"))
    try:
        dataset = open_dataset(folder, "val")
        if len(dataset) == args.images:
            return dataset
    except Exception:  # noqa: BLE001 - not generated yet: make it
        pass
    write_kitti_tree(folder, args.images, seed=0, val_fraction=1.0)
    return open_dataset(folder, "val")


def sweep_points_of():
    from squeezelens.engine.quant import QuantConfig
    from squeezelens.engine.sweep import sweep_points

    return sweep_points([QuantConfig(bits=6, rounding="stochastic"), QuantConfig(bits=8)], 2)


def sweep_once(detector, dataset, detect=None) -> None:
    from squeezelens.engine.sweep import run_sweep

    meta = {"checkpoint_sha256": detector.checkpoint.sha256, "kitti_root": str(dataset.root),
            "split": "val", "protocol": "official", "input_size": list(detector.spec.input_size)}  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        run_sweep(detector, dataset, sweep_points_of(), Path(out), meta, detect=detect)


class Setting:
    """One way to run: the single process (pool None) or a pool of workers."""

    def __init__(self, name: str, pool=None, start_s: float = 0.0) -> None:
        self.name, self.pool, self.start_s = name, pool, start_s
        self.seconds: dict[str, list[float]] = {"evaluate": [], "sweep": []}
        self.eval_timings: list[dict] = []

    def evaluate(self, detector, dataset) -> None:
        from squeezelens.engine.distributed import evaluate_on_pool
        from squeezelens.engine.evaluate import evaluate

        if self.pool is None:
            self.seconds["evaluate"].append(timed(lambda: evaluate(detector, dataset)))
            return
        first = len(self.pool.timings)
        self.seconds["evaluate"].append(timed(lambda: evaluate_on_pool(self.pool, dataset)))
        self.eval_timings += self.pool.timings[first:]

    def sweep(self, detector, dataset) -> None:
        from squeezelens.engine.distributed import detect_points

        if self.pool is None:
            self.seconds["sweep"].append(timed(lambda: sweep_once(detector, dataset)))
            return
        import ray

        ray.get([a.drop_caches.remote() for a in self.pool.actors])  # prepared once per sweep
        source = lambda pts: detect_points(self.pool, dataset, pts)  # noqa: E731
        self.seconds["sweep"].append(timed(lambda: sweep_once(detector, dataset, source)))

    def median(self, job: str) -> float:
        return statistics.median(self.seconds[job])


def start_pools(detector, counts: list[int], cores: int) -> list[Setting]:
    """A pool per (workers, threads): the rule's threads, and 1 where the rule gives more."""
    from squeezelens.engine.distributed import ClusterSpec, ModelPayload, WorkerPool
    from squeezelens.engine.distributed.runtime import Runtime, WorkerResources

    payload = ModelPayload.from_model(detector)
    runtime = Runtime(ClusterSpec(workers=1)).__enter__()  # joins the benchmark's runtime
    settings = []
    for workers in counts:
        for threads in dict.fromkeys([max(1, cores // workers), 1]):
            res = WorkerResources(num_cpus=threads, num_gpus=0, threads=threads)
            pool = WorkerPool(runtime, payload, workers, res)
            settings.append(Setting(f"{workers} worker(s) x{threads} thr", pool, timed(pool.start)))
    return settings


def scoring_cost(detector, dataset) -> float:
    """Seconds per image of the parent's scoring (one devkit run over one point's detections)."""
    from squeezelens.engine.eval import evaluate_detections
    from squeezelens.engine.evaluate import detect_dataset

    dets = detect_dataset(detector, dataset)
    runs = [
        timed(lambda: evaluate_detections(dataset.records, dets, classes=detector.class_names))
        for _ in range(3)
    ]
    return statistics.median(runs) / len(dataset)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=48, help="synthetic val images (default 48)")
    ap.add_argument("--repeats", type=int, default=4, help="interleaved rounds (medians)")
    ap.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    ap.add_argument("--data", help="folder to keep (or reuse) the generated set in")
    ap.add_argument("--checkpoint", help="default: the bundled sample model")
    args = ap.parse_args()

    import ray

    from squeezelens.engine.detector import Detector
    from squeezelens.engine.prefetch import usable_cpus
    from squeezelens.engine.samples import default_checkpoint

    dataset, counts = dataset_of(args), [int(v) for v in args.workers.split(",") if v.strip()]
    detector = Detector.from_checkpoint(args.checkpoint or default_checkpoint())
    cores = usable_cpus()
    w, h = detector.spec.input_size
    print(f"{len(dataset)} synthetic images, {w}x{h} input, 4-point sweep, {cores} usable "
          f"cores, medians of {args.repeats} interleaved rounds (a shared machine is noisy)")  # fmt: skip
    # logical CPUs for every pool at once (idle pools use none); threads are set per pool
    ray.init(address="local", num_cpus=cores * 2 * len(counts), include_dashboard=False,
             logging_level="WARNING", log_to_driver=False)  # fmt: skip
    try:
        settings = [Setting("single process"), *start_pools(detector, counts, cores)]
        for s in settings:  # warm-up: tracing in every process
            s.evaluate(detector, dataset)
            s.seconds["evaluate"].clear()
        for r in range(args.repeats):  # each round starts with another setting
            order = settings[r % len(settings) :] + settings[: r % len(settings)]
            for s in order:
                s.evaluate(detector, dataset)
            for s in order:
                s.sweep(detector, dataset)
        report(settings, len(dataset), scoring_cost(detector, dataset))
    finally:
        ray.shutdown()


def report(settings: list[Setting], n: int, score_s: float) -> None:
    rate = {"evaluate": n, "sweep": n * len(sweep_points_of())}
    single = settings[0]
    print(f"{'':<20}{'evaluate img/s':>15}{'vs single':>10}{'sweep img/s':>13}{'vs single':>10}"
          f"{'scaling':>9}{'task overhead':>15}{'start':>8}")  # fmt: skip
    for s in settings:
        ev, sw = rate["evaluate"] / s.median("evaluate"), rate["sweep"] / s.median("sweep")
        line = (f"{s.name:<20}{ev:>15.2f}{single.median('evaluate') / s.median('evaluate'):>10.2f}"
                f"{sw:>13.2f}{single.median('sweep') / s.median('sweep'):>10.2f}")  # fmt: skip
        if s.pool is not None:
            workers, threads = s.pool.size, s.pool.resources.threads
            one = next((o for o in settings[1:] if (o.pool.size, o.pool.resources.threads)
                        == (1, threads)), None)  # fmt: skip
            scale = (
                ""
                if one is None
                else f"{one.median('evaluate') / s.median('evaluate') / workers:.2f}"
            )
            overhead = statistics.median(t["wall_s"] - t["compute_s"] for t in s.pool.timings)
            line += f"{scale:>9}{overhead * 1000:>12.1f} ms{s.start_s:>7.1f}s"
        print(line)
    print(
        "scaling: evaluate img/s / (workers x 1-worker img/s, same threads); task overhead: "
        "median of (wall - worker time) per task; start: workers up, model loaded"
    )
    for s in settings[1:]:
        per_image = statistics.median(t["compute_s"] / t["images"] for t in s.eval_timings)
        threads = s.pool.resources.threads
        print(f"{s.name}: {per_image * 1000:.1f} ms of worker time per image = "
              f"{per_image * threads * 1000:.1f} core-ms (evaluate's tasks: decode, preprocess, "
              "forward, boxes)")  # fmt: skip
    print(f"parent scoring: {score_s * 1000:.2f} ms per image per point (one devkit run)")
    one = next((s for s in settings[1:] if s.pool.resources.threads == 1), None)
    if one is not None:
        per_image = statistics.median(t["compute_s"] / t["images"] for t in one.eval_timings)
        overhead = statistics.median(t["wall_s"] - t["compute_s"] for t in one.pool.timings)
        project(per_image, overhead, one.start_s, score_s)


FORK_PASSES = 1 + 14 + 14 * 3  # float, 14 nearest points once, 14 stochastic x 3 seeds
KITTI_VAL = 3741


def project(per_image: float, overhead: float, start: float, score: float) -> None:
    """Wall time of the fork's sweep with 3 seeds on the full val split, one single-threaded
    worker per core: tasks of 64 images run in waves of one per worker (each wave as long as a
    full task: per-image cost x 64 + per-task overhead), after the workers' start-up; the
    parent's scoring runs beside the workers and only counts where it is longer."""
    from squeezelens.engine.distributed.tasks import default_shard_size

    shard = default_shard_size(KITTI_VAL)
    tasks = FORK_PASSES * -(-KITTI_VAL // shard)
    task_s = shard * per_image + overhead
    scoring = FORK_PASSES * KITTI_VAL * score
    print(f"projection: fork sweep, 3 seeds, {KITTI_VAL} images: {FORK_PASSES} passes, "
          f"{tasks} tasks of <= {shard} images, {task_s:.2f} s per task "
          f"({per_image * 1000:.1f} ms per image per core + {overhead * 1000:.1f} ms), "
          f"start {start:.0f} s, parent scoring {scoring:.0f} s in all")  # fmt: skip
    for cores in (2, 8, 32, 128):
        waves = -(-tasks // cores)
        wall = start + max(waves * task_s, scoring)
        print(
            f"  {cores:>4} cores: {waves:>5} waves -> {wall / 3600:6.2f} h ({wall / 60:7.1f} min)"
        )


if __name__ == "__main__":
    main()
