"""The loop that runs tasks on a worker pool: one call per free worker, results as they come.

Fault tolerance (our own retry loop over Ray's actor restarts, rather than Ray's
``max_task_retries``, so that every retry is visible and bounded):

- actor calls are never retried by Ray (``max_task_retries=0``); when a worker dies
  during a task (``RayActorError``) the task goes back to the head of the queue and
  runs again on the next free worker, at most :data:`MAX_ATTEMPTS` times, after
  which the job fails with a one-line message;
- the dead worker gets no task while Ray restarts it: the loop sends it the model
  again (polling every :data:`RELOAD_PAUSE_S` while Ray reports it restarting) and
  gives it work once that succeeds; one that does not come back within
  :data:`RESTART_TIMEOUT_S` is dropped, and the job fails only when no worker is left;
- results are taken once per task, by the parent only, so a retried task is never
  counted twice; Ctrl+C or a cancel token stops the loop between results and drops
  the calls in flight (their tasks were not finished, so nothing half-done is kept).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from squeezelens.engine.distributed.pool import Finished, WorkerPool, first_line
from squeezelens.engine.distributed.tasks import Task
from squeezelens.engine.distributed.worker import NotLoaded, TaskFailure
from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, check

MAX_ATTEMPTS = 3  # per task: a task whose worker died this often fails the job
RELOAD_PAUSE_S = 1.0  # between attempts to reload a worker Ray is restarting
RESTART_TIMEOUT_S = 300.0  # a worker not back after this long is dropped
WAIT_S = 0.25  # how often the loop wakes up to check cancellation


@dataclass(frozen=True)
class _Call:
    """A call in flight: a task on a worker, or (task None) the model sent to a worker."""

    worker: int
    task: Task | None
    sent: float


class Scheduler:
    """One run of a pool over a list of tasks."""

    def __init__(self, pool: WorkerPool, tasks: list[Task]) -> None:
        self.pool, self.ray, self.queue = pool, pool.ray, tasks
        self.in_flight: dict[object, _Call] = {}
        self.attempts: Counter[str] = Counter()
        self.images: dict[str, object] = {}  # shard id -> ref of its image bytes
        self.uses = Counter(t.shard.id for t in tasks)
        self.reload_at = {w: 0.0 for w in pool.unloaded - set(pool.loading)}  # when to send
        self.down_since = {w: time.monotonic() for w in pool.unloaded}
        for worker, ref in pool.loading.items():  # sent during an earlier run
            self.in_flight[ref] = _Call(worker, None, time.perf_counter())
        self.idle = [w for w in range(pool.size) if w not in pool.unloaded | pool.dead]

    def results(self, cancel: CancelToken | None) -> Iterator[Finished]:
        """Yield each task's result once, as it arrives."""
        try:
            while self.queue or any(c.task for c in self.in_flight.values()):
                check(cancel)
                self._reload_due()
                while self.idle and self.queue:
                    self._send(self.idle.pop(0))
                if not self.in_flight:
                    self._require_workers()
                    time.sleep(WAIT_S)
                    continue
                ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    done = self._collect(ref, self.in_flight.pop(ref))
                    if done is not None:
                        yield done
        finally:
            for ref, call in self.in_flight.items():
                if call.task is not None:  # unfinished: dropped (a later call queues behind it)
                    _quietly(self.ray.cancel, ref)  # (model loads stay in pool.loading)
            self.in_flight.clear()
            self.pool.busy.clear()

    # ------------------------------------------------------------------ sending
    def _send(self, worker: int) -> None:
        task = self.pool.pick(worker, self.queue)
        self.queue.remove(task)
        shipped = [self._image_ref(task)] if self.pool.ship_images else []
        ref = self.pool.actors[worker].run.remote(task, shipped)
        self.in_flight[ref] = _Call(worker, task, time.perf_counter())
        self.pool.busy[worker] = task

    def _image_ref(self, task: Task):
        """The object-store ref of a shard's image bytes, put once while its tasks need it."""
        sid = task.shard.id
        if sid not in self.images:
            from squeezelens.engine.data.images import read_image_bytes

            self.images[sid] = self.ray.put([read_image_bytes(p) for p in task.shard.paths])
        return self.images[sid]

    def _reload_due(self) -> None:
        now = time.monotonic()
        for worker, when in list(self.reload_at.items()):
            if when <= now:
                del self.reload_at[worker]
                ref = self.pool.loading[worker] = self.pool.load(worker)
                self.in_flight[ref] = _Call(worker, None, time.perf_counter())

    def _require_workers(self) -> None:
        if len(self.pool.dead) == self.pool.size:
            raise InputError("every Ray worker died and could not be restarted; see Ray's logs")

    # ---------------------------------------------------------------- receiving
    def _collect(self, ref, call: _Call) -> Finished | None:
        if call.task is None:
            self._loaded(ref, call.worker)
            return None
        task, worker = call.task, call.worker
        self.pool.busy.pop(worker, None)
        self.attempts[task.id] += 1
        try:
            out = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:  # the worker died: Ray restarts it
            return self._retry(task, worker, first_line(exc))
        except self.ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, KeyboardInterrupt):  # Ctrl+C reached the worker too
                raise KeyboardInterrupt from None
            raise
        if isinstance(out, NotLoaded):  # Ray restarted it while it was idle
            self.attempts[task.id] -= 1
            return self._retry(task, worker, "restarted")
        if isinstance(out, TaskFailure):
            raise InputError(out.problem, out.path)
        self.idle.append(worker)
        self.pool.held[worker] = set(out.held)
        self._release(task)
        return Finished(task, out.detections, worker, out.pid, self.attempts[task.id],
                        time.perf_counter() - call.sent, out.seconds, out.error)  # fmt: skip

    def _retry(self, task: Task, worker: int, reason: str) -> None:
        """Queue ``task`` again (first) and reload ``worker``; fail after MAX_ATTEMPTS."""
        if self.attempts[task.id] >= MAX_ATTEMPTS:
            raise InputError(
                f"task {task.id} failed {MAX_ATTEMPTS} times: its Ray workers died ({reason})"
            )
        self.pool.retries += 1
        self.queue.insert(0, task)
        self._worker_down(worker)
        return None

    def _worker_down(self, worker: int) -> None:
        self.pool.unloaded.add(worker)
        self.down_since.setdefault(worker, time.monotonic())
        self.reload_at[worker] = time.monotonic()

    def _loaded(self, ref, worker: int) -> None:
        """The model reached a restarted worker, or Ray is still restarting it."""
        self.pool.loading.pop(worker, None)
        try:
            self.pool.workers[worker] = self.ray.get(ref)
        except self.ray.exceptions.RayActorError:
            if time.monotonic() - self.down_since[worker] > RESTART_TIMEOUT_S:
                self.pool.dead.add(worker)
                self._require_workers()
                return
            self.reload_at[worker] = time.monotonic() + RELOAD_PAUSE_S
            return
        self.pool.unloaded.discard(worker)
        self.down_since.pop(worker, None)
        self.idle.append(worker)

    def _release(self, task: Task) -> None:
        self.uses[task.shard.id] -= 1
        if self.uses[task.shard.id] == 0:
            self.images.pop(task.shard.id, None)


def _quietly(fn: Callable, *args) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - best effort while stopping
        pass
