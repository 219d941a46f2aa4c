"""Detection errors in the Metrics tab: ΔAP (or counts) per TIDE error type, grouped bars.

One group per type (Cls, Loc, Both, Dupe, Bkg, Missed), the reference model's bar
beside the other model's, for the class and difficulty chosen in the Metrics tab.
The numbers are the engine's :class:`~engine.eval.errors.ClassErrors` of the
evaluation (``EvalState.errors``, computed by Evaluate on the worker with the
function behind ``evaluate --errors``), drawn without any recomputation.  ΔAP is
the AP won by fixing every error of that type (TIDE's oracle), R40 or R11.  The
chart greys out with the rest of the tab when the settings change.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from squeezelens.engine.eval.tide import ERROR_LABELS, ERROR_TYPES
from squeezelens.gui.eval_jobs import error_pair
from squeezelens.gui.palette import CURVE_OTHER, CURVE_REF
from squeezelens.gui.state import AppState

MEASURES = {"ΔAP R40": "dap_r40", "ΔAP R11": "dap_r11", "count": "counts"}
BAR_WIDTH = 0.38
MEASURE_TIP = ("ΔAP: the AP the model would win if every error of that type were fixed "
               "(TIDE's oracle, scored by the devkit); count: how many errors of that type")  # fmt: skip


def chart_values(evaluation, cls: str, diff: str, measure: str) -> list[tuple[str, list[float]]]:
    """[(label, value per ERROR_TYPES)] of the reference and the other model ([] if none)."""
    analyses = error_pair(evaluation)
    if not analyses or any(cls not in a.errors for a in analyses):
        return []
    field = MEASURES[measure]
    out = []
    for label, analysis in zip((evaluation.ref_label, evaluation.other_label), analyses):
        values = getattr(analysis.errors[cls][diff], field)
        out.append((label, [float(values[t]) for t in ERROR_TYPES]))
    return out


class ErrorChart(QWidget):
    """The grouped bar chart, its measure chooser and its Export button."""

    def __init__(self, state: AppState, class_combo: QComboBox, diff_combo: QComboBox,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.state, self.class_combo, self.diff_combo = state, class_combo, diff_combo
        self.measure = QComboBox(objectName="errorMeasureCombo")
        self.measure.addItems(list(MEASURES))
        self.measure.setToolTip(MEASURE_TIP)
        self.export_button = QPushButton("Export errors…", objectName="exportErrorsButton")
        self.export_button.setToolTip("The error chart as PNG and SVG, every class and "
                                      "difficulty as CSV, with their provenance")  # fmt: skip
        self.plot = pg.PlotWidget(title="Detection errors")
        self.plot.setObjectName("errorPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(y=True, alpha=0.25)
        self.plot.getAxis("bottom").setTicks(
            [list(enumerate(ERROR_LABELS[t] for t in ERROR_TYPES))]
        )
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # ΔAP is a fraction, never "m"
        # the legend sits in the title row's right end, never over a bar
        self.legend = pg.LegendItem(colCount=2, offset=None, labelTextSize="10pt")
        self.legend.setParentItem(self.plot.getPlotItem())
        self.legend.anchor((1, 0), (1, 0), offset=(-6, 0))
        self.bars: list[pg.BarGraphItem] = []
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Show"))
        top.addWidget(self.measure)
        top.addStretch(1)
        top.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)
        for combo in (self.measure, class_combo, diff_combo):
            combo.currentIndexChanged.connect(self.redraw)
        state.eval_changed.connect(self.redraw)
        self.redraw()

    def values(self) -> list[tuple[str, list[float]]]:
        """What the chart shows now: [(model label, value per error type)]."""
        return chart_values(self.state.evaluation, self.class_combo.currentText(),
                            self.diff_combo.currentText(), self.measure.currentText())  # fmt: skip

    def redraw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.bars = []
        measure = self.measure.currentText()
        self.plot.setLabel("left", "errors" if measure == "count" else measure)
        groups = self.values()
        cls, diff = self.class_combo.currentText(), self.diff_combo.currentText()
        if not groups:
            self.plot.setTitle("Detection errors (not evaluated yet: press Evaluate)")
            return
        x = np.arange(len(ERROR_TYPES), dtype=float)
        for k, ((label, values), color) in enumerate(zip(groups, (CURVE_REF, CURVE_OTHER))):
            bar = pg.BarGraphItem(x=x + (k - 0.5) * BAR_WIDTH, height=values, width=BAR_WIDTH,
                                  brush=pg.mkBrush(color), pen=pg.mkPen("#333333", width=0.6),
                                  name=label)  # fmt: skip
            self.plot.addItem(bar)
            self.legend.addItem(bar, label)
            self.bars.append(bar)
        top = max(max(v) for _, v in groups)
        self.plot.setXRange(-0.55, len(ERROR_TYPES) - 0.45, padding=0)
        self.plot.setYRange(0, top * 1.1 if top > 0 else 1, padding=0)
        self.plot.setTitle(f"Errors by type · {cls}, {diff}", justify="left")
