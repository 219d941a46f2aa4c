"""The ``long`` lane: one evaluation, sweep, sensitivity analysis or INT8 conversion at a time.

A long job is never pre-empted silently: while one runs, starting another is
refused with a status message ("an evaluation is running — cancel it first").
Progress, cancellation and failure reach AppState here, each checked against
the generation of the job this lane last started, so the late 'cancelled' of
an old job never resets the progress bar of a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from squeezelens.gui.state import AppState
from squeezelens.gui.workers import Handler, JobContext, JobProgress, JobResult, LatestJobRunner

LANE = "long"
TITLES = {
    "evaluate": "Evaluation",
    "sweep": "Sweep",
    "sensitivity": "Sensitivity analysis",
    "int8": "INT8 conversion",
    "int8_layers": "INT8 layer comparison",
}


def title(label: str) -> str:
    return TITLES.get(label, label.capitalize() or "A job")


class LongJobs(QObject):
    """Starts long jobs on the model worker and reports their end to AppState."""

    stopped = Signal(str, str)  # label of the tracked job and why it stopped (cancelled, failed)

    def __init__(self, state: AppState, runner: LatestJobRunner, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.runner = state, runner
        self.generation = 0
        self.label = ""
        runner.progress.connect(self._on_progress)
        runner.finished.connect(self._on_finished)
        runner.cancelled.connect(self._on_cancelled)
        runner.failed.connect(self._on_failed)

    def running(self) -> str:
        """The label of the long job that runs now ('' when none or when it was cancelled)."""
        if self.runner.is_busy(LANE) and self.runner.is_current(LANE, self.generation):
            return self.label
        return ""

    def submit(self, fn: Callable[[JobContext], Any], label: str, text: str, *,
               on_done: Handler | None = None, on_partial: Handler | None = None) -> bool:  # fmt: skip
        """Start ``fn`` unless another long job runs (then say so and return False);
        its value goes to ``on_done`` (and partial values to ``on_partial``)."""
        busy = self.running()
        if busy:
            self.state.message.emit(
                f"{title(busy)} is running — cancel it first (Esc) to start {title(label).lower()}"
            )
            return False
        self.label = label
        self.state.job_progress.emit(text, 0, 1)
        self.generation = self.runner.submit(LANE, fn, label, text, on_done=on_done,
                                             on_partial=on_partial)  # fmt: skip
        return True

    def cancel(self) -> None:
        """Cancel the running long job (the 'cancelled' report follows from the worker)."""
        self.runner.cancel(LANE)
        self.state.job_progress.emit("", 0, 0)

    def _tracked(self, result: JobResult | JobProgress) -> bool:
        return result.lane == LANE and result.generation == self.generation

    def _on_progress(self, p: JobProgress) -> None:
        if self._tracked(p) and self.runner.is_current(p.lane, p.generation):
            self.state.job_progress.emit(p.text, p.done, p.total)

    def _on_finished(self, result: JobResult) -> None:
        if self._tracked(result):
            self.state.job_progress.emit("", 0, 0)

    def _on_cancelled(self, result: JobResult) -> None:
        if self._tracked(result):
            self.state.job_progress.emit("", 0, 0)
            self.state.message.emit(f"{title(result.label)} cancelled")
            self.stopped.emit(result.label, "cancelled")

    def _on_failed(self, result: JobResult) -> None:
        if self._tracked(result):
            self.state.job_progress.emit("", 0, 0)
            self.stopped.emit(result.label, f"stopped: {result.error}")
