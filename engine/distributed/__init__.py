"""Parallel jobs on Ray: run (config x image shard) tasks on workers, merge detections,
score once.

Ray is an optional dependency (``pip install 'squeezelens[distributed]'``); this
package imports it only when a job starts, and without it raises a one-line
:class:`~engine.errors.InputError` naming the extra.

The service, for any job that scores many quantization configs on a dataset::

    from squeezelens.engine.distributed import ClusterSpec, ModelPayload, open_pool, detect_points

    payload = ModelPayload.from_model(detector)  # weights, spec, activation ranges / INT8 bytes
    with open_pool(payload, ClusterSpec(workers=4)) as pool:  # or ClusterSpec(address="auto")
        for point, dets in detect_points(pool, dataset, [SweepPoint(q) for q in configs],
                                         store=TaskStore(folder, payload.identity,
                                                         payload.class_names)):
            result = evaluate_detections(dataset.records, dets, protocol=..., classes=...)

- each worker (a Ray actor) builds the model once from the payload (shipped through
  Ray's object store: no shared filesystem) and keeps it, and recent shards' prepared
  inputs, across tasks;
- a task is one config on one shard; quantized weights depend only on the config
  and its seed, so sharding never changes a stochastic draw; the parent merges a
  config's shards and scores them once, so results equal the single-process run's;
- finished tasks are saved as they arrive (:class:`TaskStore`) and loaded on a rerun;
  a dead worker is replaced by Ray and its task sent again (:mod:`.pool`); Ctrl+C or a
  cancel token stops the workers and keeps what finished.

The ``sweep`` and ``sensitivity`` jobs plug it in as their detections source
(:func:`point_source`, a :data:`engine.sweep.DetectPoints`), keeping their own point,
row and resume logic; the mixed-precision search scores its candidate configs with a
:class:`PoolScorer` (an :data:`engine.search.Scorer`: one :func:`score_points` call per
round of candidates, which also measures each one's ConvDet output noise on the
workers; the pool kept open between rounds).
"""

from squeezelens.engine.distributed.jobs import (
    JobStatus,
    detect_points,
    evaluate_on_pool,
    open_pool,
    point_source,
    score_points,
)
from squeezelens.engine.distributed.payload import ModelPayload
from squeezelens.engine.distributed.pool import WorkerPool
from squeezelens.engine.distributed.runtime import (
    ClusterSpec,
    WorkerResources,
    default_workers,
    import_ray,
    worker_resources,
)
from squeezelens.engine.distributed.scoring import PoolScorer
from squeezelens.engine.distributed.tasks import Shard, Task, TaskStore, make_shards

__all__ = [
    "ClusterSpec",
    "JobStatus",
    "ModelPayload",
    "PoolScorer",
    "Shard",
    "Task",
    "TaskStore",
    "WorkerPool",
    "WorkerResources",
    "default_workers",
    "detect_points",
    "evaluate_on_pool",
    "import_ray",
    "make_shards",
    "open_pool",
    "point_source",
    "score_points",
    "worker_resources",
]
