"""``squeezelens gui --screenshot PATH``: drive the window to a state, save it, quit.

Steps run one after another, each waiting until the workers are idle: load,
optionally pick an image, set bits, switch the view or tab, evaluate, sweep, then
grab the whole window as PNG.

A step that does not end within ``--screenshot-timeout`` seconds (a long sweep on a
busy machine) is never passed over silently: the window says which step was still
running and how far it got (the error banner, so the screenshot shows it), the same
line goes to stderr, and the process exits with :data:`EXIT_TIMEOUT`; a sweep that
stopped early (failed or cancelled) is shown with its reason and exits with
:data:`EXIT_STOPPED`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer

POLL_MS = 200
EXIT_TIMEOUT = 3  # a step was still running at the time limit
EXIT_STOPPED = 4  # the sweep stopped before its last point


class ScreenshotDriver(QObject):
    """Runs the screenshot steps on a timer (never blocks the event loop)."""

    def __init__(self, window: Any, args: Any) -> None:
        super().__init__(window)
        self.window, self.args = window, args
        self.deadline = time.monotonic() + float(getattr(args, "screenshot_timeout", 180))
        self.steps: list[tuple[str, Callable[[], None], Callable[[], bool]]] = self._plan()
        self._started = False
        self.exit_code = 0
        self.timer = QTimer(self, interval=POLL_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _idle(self) -> bool:
        return self.window.controller.is_idle()

    def _loaded(self) -> bool:
        s = self.window.state
        ready = s.model is not None and s.result is not None
        return (ready and self._idle()) or (
            s.model is None and s.dataset is not None and self._idle()
        )

    def _show_tab(self, tab: str) -> None:
        """A bottom tab by its session name; ``errors``: the Metrics tab's error chart."""
        w = self.window
        w.show_tab("metrics" if tab == "errors" else tab)
        if tab == "errors":
            w.metrics_panel.plots.setCurrentWidget(w.metrics_panel.errors)

    def _plan(self) -> list:
        a, w, s = self.args, self.window, self.window.state
        steps: list = [("load", lambda: None, self._loaded)]
        if getattr(a, "image", None) is not None:
            steps.append(("image", lambda: w.controller.go_to(int(a.image)), self._idle))
        if getattr(a, "bits", None):
            steps.append(("bits", lambda: self._set_bits(int(a.bits)), self._idle))
        if getattr(a, "view", None):
            steps.append(("view", lambda: s.set_view_mode(a.view), self._idle))
        if getattr(a, "tab", None):
            steps.append(("tab", lambda: self._show_tab(a.tab), self._idle))
        if getattr(a, "front", None):
            steps.append(("front", lambda: w.front_panel.open(a.front),
                          lambda: w.front_panel.saved is not None and self._idle()))  # fmt: skip
        if getattr(a, "evaluate", False):
            steps.append(("evaluate", w.analysis.evaluate,
                          lambda: s.evaluation.ref is not None and self._idle()))  # fmt: skip
        if getattr(a, "sweep", None):
            steps.append(("sweep", self._run_sweep, self._sweep_ended))
        steps.append(("settle", lambda: None, self._idle))
        return steps

    def _sweep_ended(self) -> bool:
        """The sweep finished, or stopped early (then the screenshot shows why)."""
        sweep = self.window.state.sweep
        ended = not sweep.running and (bool(sweep.points) or bool(sweep.failure))
        if ended and self._idle() and sweep.failure:
            self._report(f"the sweep stopped ({sweep.failure})", EXIT_STOPPED)
        return ended and self._idle()

    def _report(self, text: str, code: int) -> None:
        """Say why the screenshot is not of the finished state: in the window and on stderr."""
        self.exit_code = self.exit_code or code
        self.window.state.error.emit(f"Screenshot: {text}")
        print(f"screenshot: {text}", file=sys.stderr, flush=True)

    def _timed_out(self, step: str) -> None:
        long = self.window.controller.long
        job = long.running()
        where = f"the {job} job was still running" if job else "the window was still busy"
        if not self._started:
            where += f" (the {step!r} step had not started)"
        shown = self.window.statusBar().findChild(QObject, "jobProgress")
        if job and shown is not None and shown.maximum() > 0:
            where += f" ({shown.value()} of {shown.maximum()} done)"
        limit = getattr(self.args, "screenshot_timeout", 180)
        self._report(f"taken after the {limit:.0f} s limit while waiting for the {step!r} "
                     f"step: {where}; raise --screenshot-timeout to wait longer", EXIT_TIMEOUT)  # fmt: skip

    def _run_sweep(self) -> None:
        panel, a = self.window.sweep_panel, self.args
        panel.current.setChecked(a.sweep in ("current", "both"))
        panel.fork.setChecked(a.sweep in ("fork", "both"))
        if getattr(a, "sweep_bits", None):
            panel.bits_from.setValue(a.sweep_bits[0])
            panel.bits_to.setValue(a.sweep_bits[1])
        panel.run()

    def _set_bits(self, bits: int) -> None:
        panel = self.window.quant_panel
        panel.bits.setValue(bits)
        panel.float_button.setChecked(False)
        panel.apply()

    def _tick(self) -> None:
        if time.monotonic() > self.deadline and self.steps:
            self._timed_out(self.steps[0][0])
            self.steps = []
        if self.steps:
            name, start, done = self.steps[0]
            if not self._started:
                start()
                self._started = True
                return
            if not done():
                return
            self.steps.pop(0)
            self._started = False

            if self.steps:
                return
        self.timer.stop()
        QTimer.singleShot(400, self._save)

    def _save(self) -> None:
        path = self.args.screenshot
        ok = self.window.grab().save(str(path), "PNG")
        print(f"screenshot: {'wrote' if ok else 'FAILED to write'} {path}", flush=True)
        self.window.close()
