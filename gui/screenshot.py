"""``squeezelens gui --screenshot PATH``: drive the window to a state, save it, quit.

Steps run one after another, each waiting until the workers are idle: load,
optionally pick an image, set bits, switch the view or tab, evaluate, then
grab the whole window as PNG.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer

POLL_MS = 200


class ScreenshotDriver(QObject):
    """Runs the screenshot steps on a timer (never blocks the event loop)."""

    def __init__(self, window: Any, args: Any) -> None:
        super().__init__(window)
        self.window, self.args = window, args
        self.deadline = time.monotonic() + float(getattr(args, "screenshot_timeout", 180))
        self.steps: list[tuple[str, Callable[[], None], Callable[[], bool]]] = self._plan()
        self._started = False
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
            names = {"layers": w.layers_panel, "metrics": w.metrics_panel, "sweep": w.sweep_panel}
            steps.append(("tab", lambda: w.tabs.setCurrentWidget(names[a.tab]), self._idle))
        if getattr(a, "evaluate", False):
            steps.append(("evaluate", w.analysis.evaluate,
                          lambda: s.evaluation.ref is not None and self._idle()))  # fmt: skip
        if getattr(a, "sweep", None):
            steps.append(("sweep", self._run_sweep,
                          lambda: not s.sweep.running and bool(s.sweep.points) and self._idle()))  # fmt: skip
        steps.append(("settle", lambda: None, self._idle))
        return steps

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
        if time.monotonic() > self.deadline:
            print("screenshot: timed out waiting; saving what is shown", flush=True)
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
