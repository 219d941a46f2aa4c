"""Entry point of the desktop tool: QApplication, main window, background loading.

The window is shown before TensorFlow is imported: the checkpoint loads on the
model worker while the status bar says so, and the image list fills from the
I/O worker meanwhile.  ``--screenshot PATH`` waits until the view is complete,
saves the window as PNG and quits (for docs, reviews and CI smoke tests).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()


def _defaults(args: Any, settings: Any) -> tuple[str | None, str | None]:
    """What to open: the arguments; else the last files used (if they still exist);
    else the bundled sample model and data."""
    ckpt, root = getattr(args, "checkpoint", None), getattr(args, "kitti_root", None)
    if ckpt or root or getattr(args, "images", None):
        return ckpt, root
    last_ckpt, last_root = settings.last("checkpoint"), settings.last("kitti")
    if last_ckpt and _exists(last_ckpt):
        return last_ckpt, (last_root if last_root and Path(last_root).is_dir() else None)
    from squeezelens.engine.samples import default_checkpoint, default_kitti_root

    ckpt, root = default_checkpoint(), default_kitti_root()
    return (str(ckpt) if ckpt else None), (str(root) if root else None)


def _exists(checkpoint: str) -> bool:
    """A checkpoint path or TF1 prefix that is still there."""
    p = Path(checkpoint)
    return p.exists() or Path(checkpoint + ".index").exists()


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


def run_app(args: Any) -> int:
    """Open the window (and what the arguments name); returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app = make_app()
    from PySide6.QtCore import QTimer

    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import Settings

    settings = Settings.at(args.settings) if getattr(args, "settings", None) else None
    # a folder named on the command line opens with --split; one reopened from the
    # settings with the split chosen last time
    explicit = bool(getattr(args, "kitti_root", None))
    window = MainWindow(settings=settings, split=args.split if explicit else None)
    size = getattr(args, "size", None)
    if size:
        window.resize(*size)
    window.show()
    print(f"SQUEEZELENS_VISIBLE {time.perf_counter() - T0:.3f}", flush=True)
    _report_first_boxes(window)
    ckpt, root = _defaults(args, window.settings)
    _install_excepthook(window)
    split = window.split
    if getattr(args, "images", None):
        root, split = args.images, "all"
    if not ckpt:
        window.state.message.emit("No checkpoint: File ▸ Open checkpoint… (or drop one here)")
    QTimer.singleShot(0, lambda: window.open_initial(ckpt, root, split))
    if getattr(args, "screenshot", None):
        from squeezelens.gui.screenshot import ScreenshotDriver

        window._screenshot = ScreenshotDriver(window, args)  # keep a reference
    code = app.exec()
    shot = getattr(window, "_screenshot", None)
    return _finish(window, code or (shot.exit_code if shot is not None else 0))


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
