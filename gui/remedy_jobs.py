"""Remedies that need calibration images (bias correction, AdaRound) as long jobs.

When the compared configs change to one whose remedied weights are not cached
(:meth:`gui.model_handle.ModelHandle.remedies_ready`, on
:func:`engine.quant.remedies.cache.is_cached`), the controller asks this gate before
detecting: it starts a ``remedies`` job on the long lane (progress in the status
bar's job widget, Esc cancels) that computes them on the calibration images of the
one rule (:meth:`gui.controller.Controller.calibration`: the open folder's train
split), and holds every detection of the new configs back until it is done, so
the window keeps the previous result (labelled by :attr:`AppState.remedy_pending`).
Done: the configs are announced again and everything follows with the cached
weights.  Cancelled or refused (another long job runs): the previous configs come
back, nothing of the new ones having been applied.  A config computed once is
cached (memory and disk): switching it back on starts no job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from squeezelens.gui.model_handle import ModelHandle
from squeezelens.gui.provenance import int8_on
from squeezelens.gui.state import AppState

if TYPE_CHECKING:
    from squeezelens.gui.controller import Controller
    from squeezelens.gui.workers import JobContext

LABEL = "remedies"
Settings = tuple  # (quant, quant_b, mode, int8) of AppState


def _settings(state: AppState) -> Settings:
    return state.quant, state.quant_b, state.mode, state.int8


def _names(configs) -> str:
    """'AdaRound and bias correction' for the progress text."""
    names = []
    if any(c.rounding == "adaround" for c in configs):
        names.append("AdaRound")
    if any(c.bias_correction for c in configs):
        names.append("bias correction")
    return " and ".join(names) or "remedies"


class RemedyGate(QObject):
    """Decides whether the compared configs can be detected now or need a remedies job."""

    def __init__(self, controller: Controller) -> None:
        super().__init__(controller)
        self.controller = controller
        self.state = controller.state
        self.applied: Settings = _settings(self.state)  # the settings last detected
        self.pending: Settings | None = None  # the settings waiting for their remedies
        controller.long.stopped.connect(self._on_stopped)

    def missing(self, handle: ModelHandle | None) -> tuple:
        """The compared configs whose remedies are not ready (none for INT8 or no model)."""
        s = self.state
        if handle is None or int8_on(s):
            return ()
        return tuple(c for c in (s.ref_config, s.other_config) if not handle.remedies_ready(c))

    def admit(self) -> bool:
        """Called on every config change: True when detection may go on at once; else a
        remedies job was started (or refused and the previous settings restored)."""
        now = _settings(self.state)
        if self.pending is not None and now == self.pending:
            return False  # that job already runs
        handle = self.controller.handle
        missing = self.missing(handle)
        if not missing:
            self._drop_pending()
            self.applied = now
            return True
        self._drop_pending()
        self.pending = now
        self.state.set_remedy_pending(f"Showing the previous result: computing {_names(missing)}")
        text = f"Computing {_names(missing)} on the calibration images"
        calibration = self.controller.calibration

        def job(ctx: JobContext) -> Settings:
            handle.prepare_remedies(missing, calibration, ctx.progress, ctx.token)
            return now

        if not self.controller.long.submit(job, LABEL, text, on_done=self._done):
            self._restore()
        return False

    def _drop_pending(self) -> None:
        """Forget a running job's settings (it is cancelled; its stop restores nothing)."""
        if self.pending is not None:
            self.pending = None
            self.state.set_remedy_pending("")
            if self.controller.long.running() == LABEL:
                self.controller.long.cancel()

    def _done(self, settings: Settings) -> None:
        if settings != self.pending:
            return
        self.pending = None
        self.state.set_remedy_pending("")
        self.state.quant_changed.emit()  # everything follows, now from the cache

    def _on_stopped(self, label: str, why: str) -> None:
        if label == LABEL and self.pending is not None:
            self._restore()

    def _restore(self) -> None:
        """Back to the settings last detected: the window shows what it showed before."""
        self.pending = None
        self.state.set_remedy_pending("")
        quant, quant_b, mode, int8 = self.applied
        self.state.set_int8(int8)
        self.state.set_quant(quant, quant_b, mode=mode)
