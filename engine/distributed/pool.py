"""A pool of Ray workers holding one model, and the loop that runs tasks on them.

Fault tolerance (our own retry loop over Ray's actor restarts):

- each worker is a Ray actor with ``max_restarts`` (:data:`MAX_RESTARTS`): when its
  process dies (killed, out of memory, node lost), Ray starts a new one, which
  rebuilds the model from the payload still held in the object store;
- actor calls are never retried by Ray (``max_task_retries=0``): the loop sees the
  failed call (``RayActorError``), puts the task back at the head of the queue and
  sends it again (to whichever worker is free), up to :data:`MAX_ATTEMPTS` times
  per task, after which the job fails with a one-line message;
- a task's result is taken once, by task id, so a retried task is never counted
  twice (and a result is only ever written by the parent).

Scheduling: a free worker gets the first queued task, preferring one on a shard it
already holds (its prepared inputs are reused) among the tasks of the earliest
:data:`WINDOW` configs still queued, so results complete roughly in config order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from squeezelens.engine.distributed.payload import ModelPayload
from squeezelens.engine.distributed.runtime import Runtime, WorkerResources
from squeezelens.engine.distributed.tasks import Task
from squeezelens.engine.distributed.worker import (
    DetectorWorker,
    NotLoaded,
    TaskFailure,
    TaskOutput,
)
from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, check

MAX_RESTARTS = 8  # per worker: Ray replaces a dead worker process this often
MAX_ATTEMPTS = 3  # per task: a task whose worker died this often fails the job
WINDOW = 2  # configs whose tasks a free worker may pick (shard affinity within them)
WAIT_S = 0.25  # how often the loop wakes up to check cancellation


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
        self.unloaded: set[int] = set()  # workers Ray restarted: reload before their next task
        self._held: list[set[str]] = []
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
        self._held = [set() for _ in self.actors]
        try:
            ray.get([self.load(w) for w in range(self.size)])
            self.workers = ray.get([a.info.remote() for a in self.actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise InputError(
                f"a Ray worker could not load the model ({_first_line(exc)})"
            ) from None

    def load(self, worker: int):
        """Send the model to a worker (at start, and after Ray restarted it); returns the call's ref."""
        self._held[worker].clear()
        self.unloaded.discard(worker)
        return self.actors[worker].load.remote([self._payload_ref])

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
        return _Loop(self, list(tasks)).results(cancel)

    def _pick(self, worker: int, queue: list[Task]) -> Task:
        first = queue[0].index
        for task in queue:
            if task.index >= first + WINDOW:
                break
            if task.shard.id in self._held[worker]:
                return task
        return queue[0]


class _Loop:
    """One run of the pool over a list of tasks (queue, in-flight calls, retries)."""

    def __init__(self, pool: WorkerPool, tasks: list[Task]) -> None:
        self.pool, self.queue = pool, tasks
        self.in_flight: dict = {}  # ref -> (task, worker, sent at)
        self.attempts: Counter[str] = Counter()
        self.images: dict[str, object] = {}  # shard id -> ref of its image bytes
        self.uses = Counter(t.shard.id for t in tasks)

    def results(self, cancel: CancelToken | None) -> Iterator[Finished]:
        ray, idle = self.pool.ray, list(range(self.pool.size))
        try:
            while self.queue or self.in_flight:
                check(cancel)
                while idle and self.queue:
                    self._send(idle.pop(0))
                ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    task, worker, sent = self.in_flight.pop(ref)
                    idle.append(worker)
                    self.pool.busy.pop(worker, None)
                    done = self._collect(ref, task, worker, sent)
                    if done is not None:
                        yield done
        finally:
            for ref in self.in_flight:
                _quietly(ray.cancel, ref)
            self.in_flight.clear()
            self.pool.busy.clear()

    def _send(self, worker: int) -> None:
        task = self.pool._pick(worker, self.queue)
        self.queue.remove(task)
        if worker in self.pool.unloaded:  # runs before the task: an actor runs calls in order
            self.pool.load(worker)
        shipped = [self._image_ref(task)] if self.pool.ship_images else []
        ref = self.pool.actors[worker].run.remote(task, shipped)
        self.in_flight[ref] = (task, worker, time.perf_counter())
        self.pool.busy[worker] = task

    def _image_ref(self, task: Task):
        """The object-store ref of a shard's image bytes, put once while tasks need it."""
        sid = task.shard.id
        if sid not in self.images:
            from squeezelens.engine.data.images import read_image_bytes

            blobs = [read_image_bytes(p) for p in task.shard.paths]
            self.images[sid] = self.pool.ray.put(blobs)
        return self.images[sid]

    def _release(self, task: Task) -> None:
        self.uses[task.shard.id] -= 1
        if self.uses[task.shard.id] == 0:
            self.images.pop(task.shard.id, None)

    def _collect(self, ref, task: Task, worker: int, sent: float) -> Finished | None:
        ray = self.pool.ray
        self.attempts[task.id] += 1
        try:
            out = ray.get(ref)
        except ray.exceptions.RayActorError as exc:  # the worker died: Ray restarts it
            return self._retry(task, worker, _first_line(exc))
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise
        if isinstance(out, NotLoaded):  # restarted while idle
            return self._retry(task, worker, "its worker had been restarted")
        if isinstance(out, TaskFailure):
            raise InputError(out.problem, out.path)
        assert isinstance(out, TaskOutput)
        self.pool._held[worker] = set(out.held)
        self._release(task)
        return Finished(
            task, out.detections, worker, out.pid, self.attempts[task.id],
            time.perf_counter() - sent, out.seconds,
        )  # fmt: skip

    def _retry(self, task: Task, worker: int, reason: str) -> None:
        """Queue ``task`` again (first) and reload ``worker``; fail after MAX_ATTEMPTS."""
        if self.attempts[task.id] >= MAX_ATTEMPTS:
            raise InputError(
                f"task {task.id} failed {MAX_ATTEMPTS} times: its Ray workers died ({reason})"
            )
        self.pool.retries += 1
        self.pool.unloaded.add(worker)
        self.queue.insert(0, task)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _quietly(fn: Callable, *args) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - best effort while stopping
        pass
