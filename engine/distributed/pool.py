"""A pool of Ray workers (actors), each holding one model built from the shipped payload.

Each worker is a Ray actor with ``max_restarts`` (:data:`MAX_RESTARTS`): when its
process dies (killed, out of memory, node lost) Ray starts a new one, and the pool
sends it the model again (:meth:`WorkerPool.load`).  Tasks run through
:mod:`engine.distributed.scheduler` (retries, progress, cancellation).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from squeezelens.engine.distributed.payload import ModelPayload
from squeezelens.engine.distributed.runtime import Runtime, WorkerResources
from squeezelens.engine.distributed.tasks import Task
from squeezelens.engine.distributed.worker import DetectorWorker
from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken

MAX_RESTARTS = 8  # per worker: Ray replaces a dead worker process this often
WINDOW = 2  # configs whose tasks a free worker may pick (shard affinity within them)


@dataclass(frozen=True)
class Finished:
    """A task's result as the loop hands it out, with its timings.

    wall_s: from sending the task to having its result (queueing and Ray's transport
    included); compute_s: what the worker spent on it.
    """

    task: Task
    detections: dict
    worker: int
    pid: int
    attempt: int
    wall_s: float
    compute_s: float
    error: object = None  # a NOISE task's engine.output_noise.OutputError

    def timing(self) -> dict:
        """The per-task record of the output folder's cluster.json."""
        return {
            "config": self.task.point.key, "shard": self.task.shard.id,
            "images": len(self.task.shard), "worker": self.worker, "pid": self.pid,
            "attempt": self.attempt, "wall_s": round(self.wall_s, 6),
            "compute_s": round(self.compute_s, 6),
        }  # fmt: skip


class WorkerPool:
    """``workers`` Ray actors, each holding the payload's model (build with :meth:`start`)."""

    def __init__(
        self,
        runtime: Runtime,
        payload: ModelPayload,
        workers: int,
        resources: WorkerResources,
        ship_images: bool = False,
    ) -> None:
        self.ray = runtime.ray
        self.payload = payload
        self.resources = resources
        self.ship_images = ship_images
        self.size = workers
        self.actors: list = []
        self.workers: list[dict] = []
        self.retries = 0
        self.timings: list[dict] = []  # Finished.timing() of each task run, as they arrive
        self.busy: dict[int, Task] = {}  # worker -> the task it is running
        self.cluster: dict = {}  # the runtime's record (nodes, CPUs, GPUs) once started
        self.unloaded: set[int] = set()  # workers Ray restarted: to be sent the model again
        self.dead: set[int] = set()  # workers Ray gave up restarting
        self.loading: dict[int, object] = {}  # worker -> ref of its model load still running
        self.held: list[set[str]] = []  # per worker: shard ids whose inputs it keeps
        self._payload_ref = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.payload.class_names

    def start(self) -> None:
        """Start the actors and wait until each holds its model."""
        ray, res = self.ray, self.resources
        self._payload_ref = ray.put(self.payload)  # kept: restarted workers reload from it
        actor = ray.remote(DetectorWorker).options(
            num_cpus=res.num_cpus, num_gpus=res.num_gpus,
            max_restarts=MAX_RESTARTS, max_task_retries=0,
        )  # fmt: skip
        self.actors = [actor.remote(res.threads) for _ in range(self.size)]
        self.held = [set() for _ in self.actors]
        try:
            self.workers = ray.get([self.load(w) for w in range(self.size)])
        except ray.exceptions.RayError as exc:
            self.close()
            raise InputError(f"a Ray worker could not load the model ({first_line(exc)})") from None

    def load(self, worker: int):
        """Send the model to a worker (at start, and after Ray restarted it); returns the ref
        of the call, whose value is the worker's :meth:`DetectorWorker.info`."""
        self.held[worker].clear()
        return self.actors[worker].load.remote([self._payload_ref])

    def recover(self, timeout: float = 300.0, pause: float = 1.0) -> None:
        """Block until every worker Ray restarted holds the model again (the scheduler does
        this without blocking); one not back within ``timeout`` seconds is dropped."""
        deadline = time.monotonic() + timeout
        for worker in sorted(self.unloaded):
            while worker in self.unloaded:
                ref = self.loading.pop(worker, None) or self.load(worker)
                try:
                    self.workers[worker] = self.ray.get(ref)
                    self.unloaded.discard(worker)
                except self.ray.exceptions.RayActorError:
                    if time.monotonic() > deadline:
                        self.unloaded.discard(worker)
                        self.dead.add(worker)
                    time.sleep(pause)

    def close(self) -> None:
        """Stop the actors (their results so far were handed out already)."""
        for a in self.actors:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone, or the runtime is down
                pass
        self.actors, self._payload_ref = [], None

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------------- the loop
    def run(self, tasks: Sequence[Task], cancel: CancelToken | None = None) -> Iterator[Finished]:
        """Run ``tasks``; yield each one's result once, as it arrives."""
        from squeezelens.engine.distributed.scheduler import Scheduler

        return Scheduler(self, list(tasks)).results(cancel)

    def pick(self, worker: int, queue: list[Task]) -> Task:
        """The task a free worker runs next: the first queued one, or one on a shard the
        worker holds among the first :data:`WINDOW` configs' tasks."""
        first = queue[0].index
        for task in queue:
            if task.index >= first + WINDOW:
                break
            if task.shard.id in self.held[worker]:
                return task
        return queue[0]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Ray's run over many lines)."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
