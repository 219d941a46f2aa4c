"""The mixed-precision search's scorer on Ray: configs -> :class:`engine.search.Score`.

A :class:`PoolScorer` is an :data:`engine.search.Scorer`: each call runs its configs as
(config x shard) tasks that return detections and the squared differences of the raw
ConvDet outputs from the float model's (:func:`engine.distributed.jobs.score_points`),
and scores each config once in the parent, exactly as :func:`engine.search.local_scorer`
does in one process: every mAP and every noise value is the single-process one to the
last bit.  The pool is opened on the first call and kept open between calls (the search
asks round after round: the sensitivities, the spread points, each bisection step), so
workers keep their model, their shards' inputs and the float outputs throughout::

    with PoolScorer(payload, ClusterSpec(workers=4), dataset, store=store) as score:
        result = run_search(detector, dataset, base, bits, max_drop, out, meta, score=score)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing
from pathlib import Path

from squeezelens.engine.distributed.jobs import OnStatus, open_pool, score_points
from squeezelens.engine.distributed.payload import ModelPayload
from squeezelens.engine.distributed.pool import WorkerPool
from squeezelens.engine.distributed.runtime import ClusterSpec
from squeezelens.engine.distributed.tasks import TaskStore
from squeezelens.engine.jobs import CancelToken, check


class PoolScorer:
    """Scores configs on Ray workers; a context manager that closes the pool it opened.

    pool: an open pool to use (not closed here); else one is opened from ``payload`` and
    ``spec`` on the first call (``record``: its cluster.json; on_pool(pool) once it runs).
    store: where finished tasks are kept (a rerun loads them); prune: drop a config's task
    files once its score is taken (the search has written its row by then).
    """

    def __init__(
        self,
        payload: ModelPayload | None,
        spec: ClusterSpec | None,
        dataset,
        protocol: str = "official",
        store: TaskStore | None = None,
        record: Path | None = None,
        on_status: OnStatus | None = None,
        cancel: CancelToken | None = None,
        prune: bool = True,
        shard_size: int | None = None,
        on_pool: Callable[[WorkerPool], None] | None = None,
        pool: WorkerPool | None = None,
    ) -> None:
        self.payload, self.spec, self.dataset, self.protocol = payload, spec, dataset, protocol
        self.store, self.record, self.on_status, self.cancel = store, record, on_status, cancel
        self.prune, self.shard_size, self.on_pool = prune, shard_size, on_pool
        self.pool = pool
        self._stack = ExitStack()

    def __call__(self, configs: Sequence) -> Iterator:
        """Each config's Score (None: the float model), in order, as soon as it is known."""
        from squeezelens.engine.search import score_of
        from squeezelens.engine.sweep import SweepPoint

        if not configs:
            return
        check(self.cancel)
        pool = self._open()
        stream = score_points(pool, self.dataset, [SweepPoint(c) for c in configs], self.store,
                              self.shard_size, self.on_status, self.cancel, self.prune)  # fmt: skip
        with closing(stream):
            for _, dets, error in stream:
                yield score_of(self.dataset.records, dets, error, self.protocol, pool.class_names)

    def _open(self) -> WorkerPool:
        if self.pool is None:
            self.pool = self._stack.enter_context(open_pool(self.payload, self.spec, self.record))
            if self.on_pool is not None:
                self.on_pool(self.pool)
        return self.pool

    def close(self) -> None:
        """Stop the pool this scorer opened (a given pool stays open)."""
        self._stack.close()

    def __enter__(self) -> PoolScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
