"""Sweep panel: mAP vs bits, one curve per method, growing point by point.

mAP is a fraction in [0, 1] (the y axis spans 0..1), as everywhere in the
project (the CLI's tables and cli/plots.py).

The sweep runs on the engine (:func:`engine.sweep.run_sweep`) in the
background; every finished point arrives as a row and the plot is redrawn from
:func:`engine.sweep.summarize` (mean ± std over seeds).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from squeezelens.cli.plots import draw_sweep_curves, set_sweep_axes
from squeezelens.engine.quant import QuantConfig
from squeezelens.gui.analysis import Analysis
from squeezelens.gui.panels.quant_presets import fork_curves
from squeezelens.gui.state import AppState


class SweepPanel(QWidget):
    """Settings row, then the mAP-vs-bits plot."""

    def __init__(self, state: AppState, analysis: Analysis, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.analysis = state, analysis
        self.bits_from = QSpinBox(objectName="sweepFromSpin", minimum=1, maximum=16, value=3)
        self.bits_to = QSpinBox(objectName="sweepToSpin", minimum=1, maximum=16, value=8)
        self.current = QCheckBox("Current config", objectName="sweepCurrentCheck", checked=True)
        self.fork = QCheckBox("Fork's four curves", objectName="sweepForkCheck")
        self.repeats = QSpinBox(objectName="sweepRepeatsSpin", minimum=1, maximum=10, value=1)
        self.repeats.setToolTip("Seeds per stochastic point (mean ± std)")
        self.button = QPushButton("Run sweep", objectName="sweepButton")
        self.export = QPushButton("Export plot…", objectName="exportSweepButton")
        self.status = QLabel("", objectName="sweepStatus")
        self.plot = pg.PlotWidget(title="mAP vs weight bits")
        self.plot.setObjectName("sweepPlot")
        self.plot.setMenuEnabled(False)
        set_sweep_axes(self.plot.getPlotItem(), [3, 8])  # a fraction in [0, 1], as the CLI's
        self.legend = self.plot.addLegend(offset=(-10, -40))  # bottom right: curves end top right
        self._stale = False  # the plot lags the points (redrawn when the tab shows)
        self._build()
        self.button.clicked.connect(self.run)
        state.sweep_changed.connect(self.redraw)

    def _build(self) -> None:
        row = QHBoxLayout()
        for w in (QLabel("Bits"), self.bits_from, QLabel("to"), self.bits_to, self.current,
                  self.fork, QLabel("Seeds"), self.repeats, self.button):  # fmt: skip
            row.addWidget(w)
        row.addWidget(self.status, 1)
        row.addWidget(self.export)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)

    def configs(self) -> list:
        """The configs the settings describe (one per method and bit width); the fork's
        curves are the engine's presets applied to the current config at each width."""
        lo, hi = sorted((self.bits_from.value(), self.bits_to.value()))
        base = self.state.quant or QuantConfig(bits=8)
        at = [base.replace(bits=b) for b in range(lo, hi + 1)]
        out = list(at) if self.current.isChecked() else []
        if self.fork.isChecked():
            out += [preset.apply(config) for preset in fork_curves() for config in at]
        return out

    def run(self) -> None:
        configs = self.configs()
        if not configs:
            self.state.error.emit("Choose at least one sweep method")
            return
        self.analysis.sweep(configs, repeats=self.repeats.value())

    def showEvent(self, event) -> None:  # noqa: N802
        if self._stale:
            self.redraw()
        super().showEvent(event)

    def redraw(self, force: bool = False) -> None:
        """Redraw every curve from the rows so far (engine.sweep.summarize); while the
        tab is hidden only the status line (the plot is drawn when it shows, or when
        ``force``d, e.g. for an export)."""
        from squeezelens.engine.sweep import summarize

        rows = self.state.sweep.points
        running = " (running…)" if self.state.sweep.running else ""
        self.status.setText(f"{len(rows)} points{running}")
        self._stale = not (self.isVisible() or force)
        if self._stale:
            return
        self.plot.clear()
        self.legend.clear()
        if rows:  # the same drawing as the CLI's sweep.png (palette, labels, float line)
            item = self.plot.getPlotItem()
            set_sweep_axes(item, draw_sweep_curves(item, summarize(rows)))
