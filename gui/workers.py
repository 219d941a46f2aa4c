"""LatestJobRunner: one worker thread, prioritised lanes, the latest request wins.

The detector is not thread-safe, so one thread owns it and runs every job that
touches it.  Jobs are submitted to *lanes* (e.g. ``detect``, ``scan``, ``long``),
listed from highest to lowest priority.  Each lane holds at most one pending
job: a new submission replaces the pending one and cancels the running one of
the same lane (its :class:`~engine.jobs.CancelToken` is set), so a burst of
slider moves costs at most one stale forward pass.

Every submission gets a new *generation* number; a result is only emitted when
its generation is still the lane's latest, and receivers re-check with
:meth:`LatestJobRunner.is_current` because a newer request may arrive while the
signal is queued.

A job is ``fn(ctx) -> value``.  If it returns a generator, the worker iterates
it step by step and emits every yielded value as ``partial``; between steps
(and whenever a long job reports progress through ``ctx.progress``) pending
jobs of higher-priority lanes run first, so a slider move stays live during an
evaluation.

Where a result goes is said where the job is submitted: ``submit(..., on_done=f,
on_partial=g)`` binds the handlers, and the runner calls them on the UI thread
(the thread it lives in) with the job's value, only while the job's generation is
still the lane's latest: a stale result is dropped here, in one place.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from squeezelens.engine.errors import Cancelled, InputError
from squeezelens.engine.jobs import CancelToken

Handler = Callable[[Any], None]  # receives a job's value (or one partial value) on the UI thread


# The UI thread (and Qt's raster threads, which it waits on while painting) must win
# the CPU over every background thread at once.  Measured during an evaluation, the
# longest UI stall was 43-65 ms at nice 4, 32-43 ms at nice 10 and 24-39 ms at
# nice 17, with the same evaluation time; 10 keeps the model from being starved by
# other programs on a busy desktop.
WORKER_NICE = 10


def lower_thread_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority by ``nice`` (Linux, where a thread id names
    the thread; elsewhere it could name the process, so nothing is done)."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError:
        pass


@dataclass
class Job:
    """One submitted unit of work, with the handlers its results go to."""

    lane: str
    generation: int
    fn: Callable[[JobContext], Any]
    label: str = ""
    text: str = ""  # what a progress bar says while it runs
    token: CancelToken = field(default_factory=CancelToken)
    on_done: Handler | None = None
    on_partial: Handler | None = None


@dataclass(frozen=True)
class JobProgress:
    """Progress of a running job: ``done`` of ``total`` steps, with its text."""

    lane: str
    generation: int
    label: str
    text: str
    done: int
    total: int


@dataclass(frozen=True)
class JobResult:
    """What a job produced (value) or why it failed (error), tagged with its generation;
    ``handler`` is where the runner delivers ``value`` (the job's on_done or on_partial)."""

    lane: str
    generation: int
    label: str
    value: Any = None
    error: str = ""
    handler: Handler | None = field(default=None, compare=False, repr=False)


class ServicingToken(CancelToken):
    """A cancel token whose checks are also yield points for higher-priority lanes.

    Engine loops call ``check(cancel)`` between images or batches; with this
    token each such check first runs pending live requests (a slider move
    during an evaluation) on the worker thread, then raises if cancelled.
    """

    def __init__(self, ctx: JobContext) -> None:
        super().__init__()
        self._ctx = ctx

    def cancel(self) -> None:
        super().cancel()
        self._ctx.cancel.cancel()

    @property
    def cancelled(self) -> bool:
        return self._ctx.cancel.cancelled

    def raise_if_cancelled(self) -> None:
        self._ctx.checkpoint()


class JobContext:
    """Handed to a running job: its cancel token, progress reporting, a yield point."""

    def __init__(self, runner: LatestJobRunner, job: Job) -> None:
        self._runner = runner
        self.job = job
        self.cancel = job.token
        self.token = ServicingToken(self)  # pass this one to engine calls

    def emit_partial(self, value: Any) -> None:
        """Hand an intermediate result to the GUI (e.g. one finished sweep point)."""
        self._runner._emit(self._runner.partial, self.job, value=value,
                           handler=self.job.on_partial)  # fmt: skip

    def checkpoint(self) -> None:
        """Run pending higher-priority jobs, then raise Cancelled if this job was cancelled."""
        self._runner._service_higher(self.job.lane)
        self.cancel.raise_if_cancelled()

    def set_text(self, text: str) -> None:
        """Change what the progress bar says (e.g. 'Evaluating quantized')."""
        self.job.text = text

    def progress(self, done: int, total: int) -> None:
        """Report progress (a long job's callback) and act as a yield point."""
        self._runner._emit_progress(self.job, done, total)
        self.checkpoint()


class LatestJobRunner(QObject):
    """A single daemon worker thread running prioritised, latest-wins jobs."""

    finished = Signal(object)  # JobResult with value
    partial = Signal(object)  # JobResult with one yielded value
    failed = Signal(object)  # JobResult with error message
    cancelled = Signal(object)  # JobResult
    progress = Signal(object)  # JobProgress
    busy_changed = Signal(bool)
    lanes_changed = Signal()  # a job was submitted or left a lane (ask is_busy(lane))

    def __init__(
        self,
        lanes: Sequence[str],
        name: str = "worker",
        parent: QObject | None = None,
        nice: int = 0,
    ):
        """``nice`` > 0 lowers the worker thread's CPU priority (Linux), so the UI thread
        wins the CPU on a busy machine; threads it starts (TensorFlow's pools) inherit it."""
        super().__init__(parent)
        self._nice = nice
        self.lanes = tuple(lanes)
        self._rank = {lane: i for i, lane in enumerate(self.lanes)}
        self._cond = threading.Condition()
        self._pending: dict[str, Job] = {}
        self._running: dict[str, Job] = {}
        self._latest: dict[str, int] = dict.fromkeys(self.lanes, 0)
        self._generation = 0
        self._stop = False
        self._busy = False
        self._busy_lock = threading.Lock()
        # queued from the worker, delivered on this object's (the UI) thread
        self.finished.connect(self._deliver)
        self.partial.connect(self._deliver)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------- public API
    def submit(
        self,
        lane: str,
        fn: Callable[[JobContext], Any],
        label: str = "",
        text: str = "",
        *,
        on_done: Handler | None = None,
        on_partial: Handler | None = None,
    ) -> int:
        """Queue ``fn`` on ``lane``; replaces its pending job and cancels its running one.

        ``on_done(value)`` / ``on_partial(value)`` run on the UI thread while this
        submission is still the lane's latest (never for a superseded one)."""
        if lane not in self._rank:
            raise ValueError(f"unknown lane {lane!r}")
        with self._cond:
            self._generation += 1
            job = Job(lane, self._generation, fn, label, text, on_done=on_done,
                      on_partial=on_partial)  # fmt: skip
            self._latest[lane] = job.generation
            old = self._pending.get(lane)
            if old is not None:
                old.token.cancel()
            running = self._running.get(lane)
            if running is not None:
                running.token.cancel()
            self._pending[lane] = job
            self._cond.notify_all()
        self._set_busy(True)
        self._notify_lanes()
        return job.generation

    def cancel(self, lane: str | None = None) -> None:
        """Cancel the pending and running jobs of one lane (or all lanes).

        A running job reports ``cancelled`` when it stops; a pending one, which will
        never run, reports it here at once.
        """
        lanes = self.lanes if lane is None else (lane,)
        dropped = []
        with self._cond:
            for name in lanes:
                self._latest[name] = -1  # nothing in flight is current any more
                job = self._pending.pop(name, None)
                if job is not None:
                    job.token.cancel()
                    dropped.append(job)
                running = self._running.get(name)
                if running is not None:
                    running.token.cancel()
            self._cond.notify_all()
        for job in dropped:
            self._emit(self.cancelled, job, always=True)
        if dropped:
            self._update_busy()
            self._notify_lanes()

    def _deliver(self, result: JobResult) -> None:
        """UI thread: hand a finished or partial value to its handler unless it went stale
        while the signal was queued (a newer submission to its lane)."""
        if result.handler is not None and self.is_current(result.lane, result.generation):
            result.handler(result.value)

    def is_current(self, lane: str, generation: int) -> bool:
        """True while ``generation`` is the latest submission to ``lane``."""
        with self._cond:
            return self._latest.get(lane) == generation

    def is_busy(self, lane: str | None = None) -> bool:
        """Whether a job (of ``lane``, or any) is pending or running."""
        with self._cond:
            if lane is None:
                return bool(self._pending or self._running)
            return lane in self._pending or lane in self._running

    def running_labels(self) -> list[str]:
        """The labels of the jobs running now (outermost first)."""
        with self._cond:
            return [job.label for job in self._running.values()]

    def shutdown(self, timeout: float = 1.0) -> bool:
        """Cancel everything and stop the thread; True when it ended within ``timeout``."""
        with self._cond:
            self._stop = True
        self.cancel()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def thread_alive(self) -> bool:
        return self._thread.is_alive()

    # ---------------------------------------------------------------- worker
    def _take(self, max_rank: int) -> Job | None:
        """The pending job of the highest-priority lane ranked below ``max_rank``."""
        for lane in self.lanes[:max_rank]:
            if lane in self._pending and lane not in self._running:
                job = self._pending.pop(lane)
                self._running[lane] = job
                return job
        return None

    def _loop(self) -> None:
        lower_thread_priority(self._nice)
        while True:
            with self._cond:
                while not self._stop and self._take_ready() is None:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                job = self._take(len(self.lanes))
            if job is not None:
                self._run(job)
            self._update_busy()

    def _take_ready(self) -> str | None:
        return next((lane for lane in self.lanes if lane in self._pending), None)

    def _service_higher(self, lane: str) -> None:
        """Run, on this thread, pending jobs of lanes ranked above ``lane``."""
        if threading.current_thread() is not self._thread:
            return
        while not self._stop:
            with self._cond:
                job = self._take(self._rank[lane])
            if job is None:
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        ctx = JobContext(self, job)
        try:
            if job.token.cancelled:
                raise Cancelled()
            value = job.fn(ctx)
            if inspect.isgenerator(value):
                value = self._drive(ctx, value)
            job.token.raise_if_cancelled()
            self._emit(self.finished, job, value=value, handler=job.on_done)
        except Cancelled:
            self._emit(self.cancelled, job, always=True)
        except InputError as exc:
            self._emit(self.failed, job, error=str(exc))
        except Exception as exc:  # never let a job kill the worker
            traceback.print_exc(file=sys.stderr)
            self._emit(self.failed, job, error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._cond:
                if self._running.get(job.lane) is job:
                    del self._running[job.lane]
            self._notify_lanes()

    def _drive(self, ctx: JobContext, gen) -> Any:
        """Iterate a generator job; each yielded value is a partial result."""
        last = None
        for value in gen:
            last = value
            self._emit(self.partial, ctx.job, value=value, handler=ctx.job.on_partial)
            ctx.checkpoint()
        return last

    def _emit(self, signal, job: Job, value: Any = None, error: str = "", always=False,
              handler: Handler | None = None) -> None:  # fmt: skip
        if self._stop or not (always or self.is_current(job.lane, job.generation)):
            return
        try:
            signal.emit(JobResult(job.lane, job.generation, job.label, value, error, handler))
        except RuntimeError:  # the QObject was deleted while the app closes
            pass

    def _emit_progress(self, job: Job, done: int, total: int) -> None:
        if self._stop or not self.is_current(job.lane, job.generation):
            return
        try:
            self.progress.emit(
                JobProgress(job.lane, job.generation, job.label, job.text, int(done), int(total))
            )
        except RuntimeError:
            pass

    def _notify_lanes(self) -> None:
        if self._stop:
            return
        try:
            self.lanes_changed.emit()
        except RuntimeError:  # the QObject was deleted while the app closes
            pass

    def _update_busy(self) -> None:
        self._set_busy(self.is_busy())

    def _set_busy(self, busy: bool) -> None:
        with self._busy_lock:
            if busy == self._busy or self._stop:
                return
            self._busy = busy
            try:
                self.busy_changed.emit(busy)
            except RuntimeError:
                pass
