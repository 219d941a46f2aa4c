"""The Export… menu and its save dialogs.

One menu serves File ▸ Export, the toolbar's Export button and Ctrl+E (where
it pops up under the button, or at the mouse when the toolbar is hidden).
Each entry asks for a file name, then hands over to :mod:`gui.export` (plots,
canvas, AP table) or to :class:`gui.analysis.Analysis` (the quantized
parameters, written on the worker).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QFileDialog, QMenu, QToolButton

from squeezelens.engine.errors import InputError
from squeezelens.gui import export
from squeezelens.gui.actions import EXPORT_ACTIONS


class ExportDialogs(QObject):
    """Owns the export menu and runs one export per chosen entry."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window, self.state = window, window.state
        a = window.actions_
        self.menu = QMenu("&Export", window, objectName="exportMenu")
        for name in EXPORT_ACTIONS:
            self.menu.addAction(getattr(a, name))
        self.button: QToolButton | None = None
        for action, slot in ((a.export_any, self.popup), (a.export_canvas, self.ask_canvas),
                             (a.export_pr, self.ask_pr), (a.export_errors, self.ask_errors),
                             (a.export_sweep, self.ask_sweep),
                             (a.export_ap, self.ask_ap), (a.export_params, self.ask_params),
                             (a.export_window, self.ask_window)):  # fmt: skip
            action.triggered.connect(slot)

    def tool_button(self) -> QToolButton:
        """The toolbar's Export button: a click opens the menu."""
        self.button = QToolButton(objectName="exportToolButton")
        self.button.setDefaultAction(self.window.actions_.export_any)
        self.button.setMenu(self.menu)
        self.button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        return self.button

    def popup(self) -> None:
        """Ctrl+E: the chooser, under the toolbar button (or at the mouse)."""
        if self.button is not None and self.button.isVisible():
            pos = self.button.mapToGlobal(QPoint(0, self.button.height()))
        else:
            pos = QCursor.pos()
        self.menu.popup(pos)

    # --------------------------------------------------------------- helpers
    def _ask_save(self, title: str, name: str, filt: str) -> str:
        start = str(Path(self.window.dialog_dir("session")) / name)
        path, _ = QFileDialog.getSaveFileName(self.window, title, start, filt)
        return path

    def _guard(self, fn: Callable[[], list | Path], what: str) -> None:
        try:
            out = fn()
        except (InputError, OSError, RuntimeError) as exc:
            self.state.error.emit(f"{what}: {exc}")
            return
        paths = out if isinstance(out, list) else [out]
        self.state.message.emit("Wrote " + ", ".join(str(p) for p in paths))

    # --------------------------------------------------------------- entries
    def ask_pr(self) -> None:
        if self.state.evaluation.ref is None:
            self.state.error.emit("Nothing to export: run Evaluate first")
            return
        path = self._ask_save("Export PR curves (writes .png, .svg and .csv)", "pr_curves.png",
                              export.PLOT_FILTER)  # fmt: skip
        if path:
            plot, evaluation = self.window.metrics_panel.plot, self.state.evaluation
            self._guard(lambda: export.export_pr(evaluation, plot, path), "PR export")

    def ask_errors(self) -> None:
        if self.state.evaluation.errors is None:
            self.state.error.emit("Nothing to export: run Evaluate first")
            return
        path = self._ask_save("Export detection errors (writes .png, .svg and .csv)",
                              "detection_errors.png", export.PLOT_FILTER)  # fmt: skip
        if path:
            plot, evaluation = self.window.metrics_panel.errors.plot, self.state.evaluation
            self._guard(lambda: export.export_errors(evaluation, plot, path), "Error export")

    def ask_sweep(self) -> None:
        if not self.state.sweep.points:
            self.state.error.emit("Nothing to export: run a sweep first")
            return
        path = self._ask_save("Export sweep (writes .png, .svg, .csv and .json)", "sweep.png",
                              export.PLOT_FILTER)  # fmt: skip
        if path:
            self.window.sweep_panel.redraw(force=True)  # drawn even if its tab is hidden
            plot, sweep = self.window.sweep_panel.plot, self.state.sweep
            self._guard(lambda: export.export_sweep(sweep, plot, path), "Sweep export")

    def ask_canvas(self) -> None:
        stem = self.state.record.stem if self.state.record else "canvas"
        path = self._ask_save("Export canvas", f"{stem}_boxes.png", "PNG image (*.png)")
        if path:
            graphics = self.window.canvas.graphics
            self._guard(lambda: export.export_widget_png(graphics, path), "Canvas export")

    def ask_window(self) -> None:
        path = self._ask_save("Window screenshot", "squeezelens.png", "PNG image (*.png)")
        if path:
            self._guard(lambda: export.export_widget_png(self.window, path), "Screenshot")

    def ask_ap(self) -> None:
        path = self._ask_save("Export AP table (writes .csv and .json)", "ap_table.csv",
                              "CSV (*.csv);;JSON (*.json)")  # fmt: skip
        if path:
            self._guard(lambda: export.export_ap_table(self.state.evaluation, path), "AP export")

    def ask_params(self) -> None:
        if self.state.other_config is None:
            self.state.error.emit(
                "The float model has nothing quantized to export: choose bits first"
            )
            return
        path = self._ask_save(
            "Export quantized parameters", "quantized.npz", "NumPy archive (*.npz)"
        )
        if path:
            self.window.analysis.export_quantized(path if path.endswith(".npz") else path + ".npz")
