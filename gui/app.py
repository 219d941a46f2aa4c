"""Entry point of the desktop tool: QApplication, main window, background loading.

The window is shown before TensorFlow is imported: the checkpoint loads on the
model worker while the status bar says so, and the image list fills from the
I/O worker meanwhile.  ``--screenshot PATH`` waits until the view is complete,
saves the window as PNG and quits (for docs, reviews and CI smoke tests).
With ``SQUEEZELENS_TIMING=1`` in the environment the launch prints timing
markers on stdout (``SQUEEZELENS_VISIBLE s``, ``SQUEEZELENS_READY s``: seconds
from the start to the window shown and to the first boxes; benchmarks read them).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

T0 = time.perf_counter()
TIMING_ENV = "SQUEEZELENS_TIMING"


def timing_requested() -> bool:
    return os.environ.get(TIMING_ENV, "") not in ("", "0")


def _install_excepthook(window: Any) -> None:
    """An unexpected error in a slot becomes a message, never a dead window."""
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        previous(kind, value, tb)
        try:
            window.state.error.emit(f"internal error: {kind.__name__}: {value}")
        except RuntimeError:
            pass

    sys.excepthook = hook


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major", background="w", foreground="k")


def make_app() -> Any:
    """The QApplication (created once), with organisation names for QSettings."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("SqueezeLens")
    app.setApplicationName("SqueezeLens")
    configure_pyqtgraph()
    return app


UI_SWITCH_INTERVAL_S = 0.0005


def show_window(window: Any) -> None:
    """Show the window, first importing what TensorFlow's import (on the model worker, soon
    after) would initialise holding the interpreter lock for up to a second: then, and not
    after the first paint, is when the window can afford it (see engine.tf_runtime)."""
    from squeezelens.engine.quant.kernels import compiled_on_disk, warm_up
    from squeezelens.engine.tf_runtime import import_lock_holders

    import_lock_holders()
    if compiled_on_disk():  # loading the rounding kernels holds the lock ~50 ms at a time
        warm_up()  # (compiling them, on a fresh install, is left to the worker's warm job)
    # The UI thread takes the interpreter lock back every time a Qt call returns; with the
    # default 5 ms switch interval each of those waits up to 5 ms while a worker runs Python
    # (TensorFlow's import, decoding), which adds up to frozen frames.  0.5 ms bounds it.
    sys.setswitchinterval(UI_SWITCH_INTERVAL_S)
    window.show()


def run_app(args: Any) -> int:
    """Open the window (and what the arguments name); returns the exit code."""
    app = make_app()
    window = start(args)
    code = app.exec()
    shot = getattr(window, "_screenshot", None)
    return _finish(window, code or (shot.exit_code if shot is not None else 0))


def start(args: Any) -> Any:
    """Build and show the main window and schedule what opens first (the event loop is the
    caller's)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    make_app()
    from PySide6.QtCore import QTimer

    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import Settings
    from squeezelens.gui.startup import plan_startup

    settings = Settings.at(args.settings) if getattr(args, "settings", None) else None
    window = MainWindow(settings=settings)
    size = getattr(args, "size", None)
    if size:
        window.resize(*size)
    show_window(window)
    if timing_requested():
        print(f"SQUEEZELENS_VISIBLE {time.perf_counter() - T0:.3f}", flush=True)
        _report_first_boxes(window)
    _install_excepthook(window)
    plan = plan_startup(args, window.settings, window.split)
    QTimer.singleShot(0, lambda: window.open_plan(plan))
    if getattr(args, "screenshot", None):
        from squeezelens.gui.screenshot import ScreenshotDriver

        window._screenshot = ScreenshotDriver(window, args)  # keep a reference
    return window


def _report_first_boxes(window: Any) -> None:
    """Print once when the first boxes are on screen (benchmarks read it)."""

    def first() -> None:
        if window.state.result is not None:
            print(f"SQUEEZELENS_READY {time.perf_counter() - T0:.3f}", flush=True)
            window.state.result_changed.disconnect(first)

    window.state.result_changed.connect(first)


def _finish(window: Any, code: int) -> int:
    """Leave promptly even if a worker is still inside a TensorFlow call (saying so: an exit
    that skips the interpreter's shutdown is never silent)."""
    alive = window.controller.model_runner.thread_alive
    if alive:
        jobs = ", ".join(window.controller.model_runner.running_labels()) or "a"
        print(f"squeezelens gui: closed while {jobs} job was still running; exiting without "
              f"waiting for it (exit code {code})", file=sys.stderr)  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    if alive:
        os._exit(code)
    return code
