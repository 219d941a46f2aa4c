"""Jobs on a worker pool: detections of (config x shard) tasks merged per config, scored once.

:func:`detect_points` is the service every job uses: given sweep points (quantization
configs; None is the float model) it runs one task per (point, shard), keeps each
finished task in a :class:`TaskStore` as it arrives, and yields each point's merged
detections (dataset order) as soon as all its shards are in, in the points' order.
The caller scores them once with the devkit, exactly as the single-process job
scores its own detections, so every AP is bit-identical to it.

- :func:`score_points`: the same, plus each point's ConvDet output error against the
  float model (:mod:`engine.output_noise`, summed per image on the workers), for the
  mixed-precision search (:class:`engine.distributed.scoring.PoolScorer`);
- :func:`evaluate_on_pool`: one point, evaluate's per-image pipeline, one EvalResult;
- :func:`point_source`: a :data:`engine.sweep.DetectPoints` for
  :func:`engine.sweep.run_sweep` and :func:`engine.sensitivity.layer_sensitivity`
  (their point, row and resume logic is the single-process one), opening the pool
  only when there is work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.distributed.payload import ModelPayload
from squeezelens.engine.distributed.pool import WorkerPool
from squeezelens.engine.distributed.runtime import ClusterSpec, Runtime
from squeezelens.engine.distributed.tasks import NOISE, Task, TaskStore, make_shards
from squeezelens.engine.jobs import CancelToken, check
from squeezelens.engine.output_noise import OutputError


@dataclass(frozen=True)
class JobStatus:
    """Progress of a job over all workers: tasks and images done of their totals."""

    tasks_done: int
    tasks_total: int
    images_done: int
    images_total: int
    retries: int = 0


OnStatus = Callable[[JobStatus], None]
OnTask = Callable[[Task, dict], None]  # (task, its detections by stem)


class _Tally:
    """Counts finished tasks and images; reports them as a JobStatus."""

    def __init__(self, tasks: Sequence[Task], on_status: OnStatus | None) -> None:
        self.tasks_total, self.images_total = len(tasks), sum(len(t.shard) for t in tasks)
        self.tasks_done = self.images_done = 0
        self.on_status = on_status

    def count(self, task: Task) -> None:
        self.tasks_done += 1
        self.images_done += len(task.shard)

    def report(self, retries: int) -> None:
        if self.on_status is not None:
            self.on_status(JobStatus(self.tasks_done, self.tasks_total, self.images_done,
                                     self.images_total, retries))  # fmt: skip


class _Merger:
    """Collects task results per point; hands points out in order once complete, each
    point's detections (and output errors) merged in dataset order."""

    def __init__(self, points: Sequence, shards: int, prune: TaskStore | None, mode: str) -> None:
        self.points, self.prune, self.mode, self.next = points, prune, mode, 0
        self.parts: list[dict[int, tuple] | None] = [{} for _ in points]
        self.left = [shards] * len(points)

    def add(self, task: Task, dets: dict, error: OutputError | None) -> None:
        self.parts[task.index][task.shard.start] = (dets, error)
        self.left[task.index] -= 1

    def complete(self) -> Iterator[tuple[object, dict, OutputError | None]]:
        while self.next < len(self.points) and self.left[self.next] == 0:
            k, parts = self.next, [self.parts[self.next][s] for s in sorted(self.parts[self.next])]
            merged = {stem: d for dets, _ in parts for stem, d in dets.items()}
            error = OutputError.merge([e for _, e in parts]) if self.mode == NOISE else None
            self.parts[k], self.next = None, k + 1  # freed: the consumer holds them now
            yield self.points[k], merged, error
            if self.prune is not None:
                self.prune.discard(self.points[k], self.mode)


def detect_points(
    pool: WorkerPool,
    dataset,
    points: Sequence,
    store: TaskStore | None = None,
    mode: str = "prepared",
    shard_size: int | None = None,
    on_task: OnTask | None = None,
    on_status: OnStatus | None = None,
    cancel: CancelToken | None = None,
    prune: bool = False,
) -> Generator[tuple[object, dict], None, None]:
    """Yield (point, detections by stem in dataset order) for each point, in the points' order.

    Tasks already in ``store`` are loaded, not run; the others run on the pool and
    are saved to ``store`` as they arrive.  on_task(task, detections) is called once
    per task as it is finished or loaded (evaluate writes its KITTI files there).
    prune: drop a point's task files once the consumer has taken its detections
    (a sweep has written its row by then).
    """
    stream = _run_points(pool, dataset, points, store, mode, shard_size, on_task, on_status,
                         cancel, prune)  # fmt: skip
    with closing(stream):
        for point, dets, _ in stream:
            yield point, dets


def score_points(
    pool: WorkerPool,
    dataset,
    points: Sequence,
    store: TaskStore | None = None,
    shard_size: int | None = None,
    on_status: OnStatus | None = None,
    cancel: CancelToken | None = None,
    prune: bool = False,
) -> Generator[tuple[object, dict, OutputError], None, None]:
    """:func:`detect_points` (prepared inputs) plus each point's output error against the
    float model: yield (point, detections by stem, OutputError), in the points' order.

    Each worker computes the float outputs of a shard once and keeps them with its
    inputs; the per-image sums come back with the detections, so the merged error's
    :meth:`~engine.output_noise.OutputError.noise` equals the single-process value
    bit for bit (:func:`engine.output_noise.detect_with_error`)."""
    yield from _run_points(pool, dataset, points, store, NOISE, shard_size, None, on_status,
                           cancel, prune)  # fmt: skip


def _run_points(pool, dataset, points, store, mode, shard_size, on_task, on_status, cancel,
                prune) -> Generator[tuple[object, dict, OutputError | None], None, None]:  # fmt: skip
    shards = make_shards(dataset.records, shard_size)
    tasks = [Task(i, p, s, mode) for i, p in enumerate(points) for s in shards]
    merger = _Merger(points, len(shards), store if prune else None, mode)
    tally, todo = _Tally(tasks, on_status), []

    def take(task: Task, dets: dict, error: OutputError | None) -> None:
        merger.add(task, dets, error)
        if on_task is not None:
            on_task(task, dets)
        tally.count(task)

    for task in tasks:
        stored = store.load_result(task) if store is not None else None
        todo.append(task) if stored is None else take(task, *stored)
    tally.report(pool.retries)  # what a resumed job starts from
    yield from merger.complete()
    for done in pool.run(todo, cancel):
        if store is not None:
            store.save(done.task, done.detections, done.error)
        pool.timings.append(done.timing())
        take(done.task, done.detections, done.error)
        tally.report(pool.retries)
        yield from merger.complete()


def evaluate_on_pool(
    pool: WorkerPool,
    dataset,
    quant=None,
    protocol: str = "official",
    store: TaskStore | None = None,
    on_image: Callable | None = None,
    on_status: OnStatus | None = None,
    cancel: CancelToken | None = None,
    shard_size: int | None = None,
):
    """The KITTI EvalResult of the pool's model under ``quant`` (None: float, or the INT8
    model) on ``dataset``: what :func:`engine.evaluate.evaluate` returns, bit for bit."""
    from squeezelens.engine.eval import evaluate_detections
    from squeezelens.engine.evaluate import require_labels
    from squeezelens.engine.sweep import SweepPoint

    require_labels(dataset)
    by_stem = {r.stem: r for r in dataset.records}

    def on_task(task: Task, dets: dict) -> None:
        if on_image is not None:
            for stem in task.shard.stems:
                on_image(by_stem[stem], dets[stem])

    source = detect_points(pool, dataset, [SweepPoint(quant)], store, "stream", shard_size,
                           on_task, on_status, cancel)  # fmt: skip
    with closing(source):
        [(_, dets)] = list(source)
    return evaluate_detections(dataset.records, dets, protocol=protocol, classes=pool.class_names)


@contextmanager
def open_pool(
    payload: ModelPayload, spec: ClusterSpec, record: Path | None = None
) -> Iterator[WorkerPool]:
    """Start (or join) Ray, start the workers, yield the pool; stop both at the end (also on
    Ctrl+C).  record: a JSON file (cluster.json) to which this run's cluster, workers and
    per-task timings are appended when it ends, however it ends."""
    started = time.time()
    with Runtime(spec) as runtime:
        workers, resources = runtime.resources()
        pool = WorkerPool(runtime, payload, workers, resources, spec.ships_images)
        try:
            pool.start()
            pool.cluster = runtime.record()
            yield pool
        finally:
            pool.close()
            if record is not None:
                _append_run(record, runtime, pool, started)


def _append_run(path: Path, runtime: Runtime, pool: WorkerPool, started: float) -> None:
    try:
        cluster = runtime.record()
    except Exception as exc:  # noqa: BLE001 - the runtime is going down with the job
        cluster = {**pool.cluster, "error": str(exc).splitlines()[0] if str(exc) else repr(exc)}
    res = pool.resources
    run = {
        "started": started, "seconds": round(time.time() - started, 3), "cluster": cluster,
        "workers": pool.workers, "retries": pool.retries,
        "per_worker": {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus, "threads": res.threads},
        "tasks": pool.timings,
    }  # fmt: skip
    try:
        runs = json.loads(Path(path).read_text()).get("runs", [])
    except (OSError, ValueError, AttributeError):
        runs = []
    write_json_atomic(path, {"runs": [*runs, run]})


def point_source(
    payload: ModelPayload,
    spec: ClusterSpec,
    dataset,
    store: TaskStore | None = None,
    record: Path | None = None,
    on_status: OnStatus | None = None,
    cancel: CancelToken | None = None,
    prune: bool = True,
    shard_size: int | None = None,
    on_pool: Callable[[WorkerPool], None] | None = None,
):
    """A :data:`engine.sweep.DetectPoints` running on Ray: the pool is opened when the
    first points are asked for (not at all when every point is already done), and
    on_pool(pool) is called once it runs."""

    def detect(points: Sequence) -> Generator[tuple[object, dict], None, None]:
        if not points:
            return
        check(cancel)
        with open_pool(payload, spec, record) as pool:
            if on_pool is not None:
                on_pool(pool)
            stream = detect_points(pool, dataset, points, store, "prepared", shard_size,
                                   None, on_status, cancel, prune)  # fmt: skip
            with closing(stream):
                yield from stream

    return detect
