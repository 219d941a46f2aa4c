"""Where the GUI's sweeps and sensitivity runs compute: this process, or Ray workers.

:class:`ComputeChoice` is the setting ("This process", "Local Ray workers: N",
"Ray cluster: ADDRESS|auto"), kept in QSettings by :mod:`gui.compute_settings`.
:class:`RayCompute` turns it into the ``detect`` source that
:func:`engine.sweep.run_sweep` and :func:`engine.sensitivity.layer_sensitivity`
take (:func:`engine.distributed.detect_points` on a pool of workers), so the
numbers are the engine's, bit for bit the in-process ones.

The pool lives on the model worker's thread: it is started there by the first job
that needs it (never on the UI thread), kept across jobs while the setting and the
model stay the same, stopped when either changes, when a job is cancelled (its
workers are killed, so their tasks stop at once) or fails, and when the app exits.
No Qt here: the UI side is :mod:`gui.compute_settings`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from squeezelens.engine.errors import Cancelled, InputError

WHERE = ("process", "workers", "cluster")
EXTRA_HINT = "pip install 'squeezelens[distributed]'"


@dataclass(frozen=True)
class ComputeChoice:
    """The setting: where = "process" | "workers" (a local Ray runtime with ``workers``
    workers) | "cluster" (join the Ray cluster at ``address``, or "auto")."""

    where: str = "process"
    workers: int = 2
    address: str = "auto"

    @property
    def on_ray(self) -> bool:
        return self.where != "process"

    def spec(self):
        """The engine's ClusterSpec (None: in this process); InputError for a bad value."""
        if not self.on_ray:
            return None
        from squeezelens.engine.distributed import ClusterSpec

        if self.where == "workers":
            return ClusterSpec(workers=self.workers)
        return ClusterSpec(address=self.address.strip())

    def describe(self) -> str:
        """'this process' / '2 local Ray workers' / 'the Ray cluster at auto'."""
        if self.where == "workers":
            return f"{self.workers} local Ray worker{'s' * (self.workers != 1)}"
        if self.where == "cluster":
            return f"the Ray cluster at {self.address.strip() or '?'}"
        return "this process"

    def place(self) -> str:
        """'in this process' / 'on 2 local Ray workers' (what a job's text ends with)."""
        return f"{'on' if self.on_ray else 'in'} {self.describe()}"


def ray_installed() -> bool:
    """Whether Ray (the ``distributed`` extra) can be imported, without importing it."""
    import importlib.util
    import sys

    if "ray" in sys.modules:
        return sys.modules["ray"] is not None  # None: an import known to fail
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


class RayCompute:
    """The chosen place of computation and the Ray runtime and pool kept for it.

    :meth:`set_choice` runs on the UI thread; :meth:`source` builds a job's detections
    source, which starts the pool on the job's (worker) thread when first asked.
    """

    def __init__(self) -> None:
        self.choice = ComputeChoice()
        self._lock = threading.Lock()  # guards the fields below
        self._teardown = threading.Lock()  # held while an old runtime shuts down
        self._runtime: Any = None
        self._pool: Any = None
        self._spec: Any = None
        self._in_use = False

    # --------------------------------------------------------------- UI thread
    def set_choice(self, choice: ComputeChoice) -> None:
        """Use ``choice`` from the next job on; a pool kept for another setting stops now
        (in the background), or when the job using it ends."""
        with self._lock:
            self.choice = choice
            stale = not self._in_use and self._kept_for_other(choice)
            parts = self._detach() if stale else None
        if parts is not None:
            self._stop_in_background(parts)

    def shutdown(self, timeout: float = 3.0) -> None:
        """App exit: stop the pool and the runtime (bounded by ``timeout`` seconds)."""
        with self._lock:
            parts = self._detach()
        self._stop_in_background(parts).join(timeout)

    # ------------------------------------------------------------ worker thread
    def source(self, choice: ComputeChoice, detector, dataset, ctx, what: str) -> Callable | None:
        """A :data:`engine.sweep.DetectPoints` on ``choice``'s Ray workers (None: in this
        process), reporting images done / total and tasks done to ``ctx`` (a JobContext)."""
        spec = choice.spec()
        if spec is None:
            return None
        where = choice.place()

        def on_status(status) -> None:
            retried = f", {status.retries} retried" if status.retries else ""
            ctx.set_text(f"{what} {where} · tasks {status.tasks_done}/"
                         f"{status.tasks_total}{retried}")  # fmt: skip
            ctx.progress(status.images_done, status.images_total)

        def detect(points: Sequence) -> Generator[tuple[object, dict], None, None]:
            from squeezelens.engine.distributed import detect_points

            if not points:
                return
            ctx.set_text(f"{what}: starting the Ray workers ({choice.describe()})")
            ctx.progress(0, 1)
            pool = self._acquire(spec, detector)
            try:
                stream = detect_points(pool, dataset, points, None, "prepared",
                                       on_status=on_status, cancel=ctx.token)  # fmt: skip
                with closing(stream):
                    yield from stream
            except (InputError, Cancelled):
                self._release(failed=not ctx.cancel.cancelled, cancelled=True)
                raise
            except Exception as exc:  # Ray's own errors run over many lines
                self._release(failed=True)
                raise InputError(f"the job {where} failed: {_first_line(exc)}") from None
            finally:  # done, or closed early by its consumer
                self._release(failed=False, cancelled=ctx.cancel.cancelled)

        return detect

    def _acquire(self, spec, detector):
        """The pool for ``spec`` holding ``detector``'s model, started here if needed."""
        from squeezelens.engine.distributed import ModelPayload, import_ray

        import_ray()  # the one-line message naming the extra, before any slow work
        payload = ModelPayload.from_model(detector)
        with self._lock:
            self._in_use = True
            old = self._detach() if self._spec not in (None, spec) else None
        if old is not None:
            _stop(*old)
        try:
            return self._start(spec, payload)
        except InputError as exc:
            self._release(failed=True)
            raise InputError(_first_line(exc)) from None
        except Exception as exc:  # Ray could not start: its messages run over many lines
            self._release(failed=True)
            raise InputError(f"cannot start the Ray workers: {_first_line(exc)}") from None
        except BaseException:
            self._release(failed=True)
            raise

    def _start(self, spec, payload):
        from squeezelens.engine.distributed import WorkerPool
        from squeezelens.engine.distributed.runtime import Runtime

        with self._teardown:  # an old runtime still shutting down goes first
            pass
        if self._runtime is None:
            runtime = Runtime(spec)
            runtime.__enter__()
            self._runtime, self._spec = runtime, spec
        pool = self._pool
        if pool is not None and (pool.payload.identity != payload.identity or pool.dead):
            pool.close()
            self._pool = pool = None
        if pool is None:
            workers, resources = self._runtime.resources()
            pool = WorkerPool(self._runtime, payload, workers, resources, spec.ships_images)
            pool.start()
            pool.cluster = self._runtime.record()
            self._pool = pool
        pool.timings.clear()
        return pool

    def _release(self, failed: bool, cancelled: bool = False) -> None:
        """A job is done with the pool: keep it, or stop its workers (cancelled) or it
        and the runtime (failed, or the setting changed meanwhile)."""
        with self._lock:
            if not self._in_use:
                return
            self._in_use = False
            if failed or self._kept_for_other(self.choice):
                parts = self._detach()
            elif cancelled:
                parts, self._pool = (self._pool, None), None
            else:
                return
        _stop(*parts)

    # ---------------------------------------------------------------- internals
    def _kept_for_other(self, choice: ComputeChoice) -> bool:
        if self._spec is None:
            return False
        try:
            return choice.spec() != self._spec
        except InputError:
            return True

    def _detach(self) -> tuple:
        """Take the pool and runtime out (to be stopped by the caller, outside the lock)."""
        parts = (self._pool, self._runtime)
        self._pool = self._runtime = self._spec = None
        return parts

    def _stop_in_background(self, parts: tuple) -> threading.Thread:
        def stop() -> None:
            with self._teardown:
                _stop(*parts)

        thread = threading.Thread(target=stop, name="squeezelens-ray-stop", daemon=True)
        thread.start()
        return thread


def _stop(pool: Any = None, runtime: Any = None) -> None:
    """Kill the pool's workers, then leave (or shut down, if started here) the runtime."""
    for part, stop in ((pool, "close"), (runtime, "__exit__")):
        if part is not None:
            try:
                getattr(part, stop)()
            except Exception:  # noqa: BLE001 - the runtime may be gone already
                pass


def _first_line(exc: BaseException) -> str:
    from squeezelens.engine.distributed.pool import first_line

    return first_line(exc)
