"""Metrics panel: PR curves of the reference vs the other model, the detection errors
(:class:`gui.panels.error_chart.ErrorChart`) and the AP table.

Evaluation runs as a background job (progress and Cancel in the status bar);
the results are the engine's EvalResult objects, drawn here without any
recomputation.  AP and mAP are fractions in [0, 1], as in the CLI's tables.  A
caption names the configs, images and protocol the numbers belong to; when the
settings change, the table and curves grey out and the caption says "settings
changed — Evaluate again".
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from squeezelens.engine.eval.devkit import PROTOCOLS
from squeezelens.gui.palette import CURVE_OTHER, CURVE_REF, OTHER, REF
from squeezelens.gui.panels.error_chart import ErrorChart
from squeezelens.gui.panels.stale import ResultCaption
from squeezelens.gui.provenance import eval_key
from squeezelens.gui.state import AppState

PROTOCOL_TIP = ("Scoring: the official KITTI devkit, or the copy shipped with SqueezeDet "
                "(keeps detections shorter than the min height; what the low-precision fork "
                "scored with)")  # fmt: skip

DIFFS = ("easy", "moderate", "hard")
AP_COLUMNS = [f"{p}\n{d}" for p in ("R11", "R40") for d in ("easy", "mod.", "hard")]


def _delta_brush(delta: float) -> QBrush:
    if abs(delta) < 0.005:
        return QBrush()
    color = QColor("#D55E00" if delta < 0 else "#0072B2")
    color.setAlpha(min(200, int(40 + 600 * abs(delta))))
    return QBrush(color)


class MetricsPanel(QWidget):
    """PR plot (class / difficulty chosen above it) beside the AP table."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.evaluate_button = QPushButton("Evaluate", objectName="evaluateButton")
        self.evaluate_button.setToolTip("KITTI AP of both models on the open split (background)")
        self.export_pr = QPushButton("Export PR…", objectName="exportPrButton")
        self.export_ap = QPushButton("Export AP table…", objectName="exportApButton")
        self.class_combo = QComboBox(objectName="classCombo")
        self.diff_combo = QComboBox(objectName="difficultyCombo")
        self.diff_combo.addItems(DIFFS)
        self.diff_combo.setCurrentText("moderate")
        self.plot = pg.PlotWidget(title="Precision / recall")
        self.plot.setObjectName("prPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "recall")
        self.plot.setLabel("left", "precision")
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1.02), padding=0.02)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(-10, -10))
        self.table = QTableWidget(0, len(AP_COLUMNS), objectName="apTable")
        self.table.setHorizontalHeaderLabels(AP_COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.summary = QLabel("Not evaluated yet: press Evaluate", objectName="evalSummary")
        self.summary.setWordWrap(True)
        self.errors = ErrorChart(state, self.class_combo, self.diff_combo)
        self._build_protocol_and_caption()
        self._build()
        self.caption.greys(self.table, self.plot, self.summary, self.errors.plot)
        self.class_combo.currentIndexChanged.connect(self._draw_curves)
        self.diff_combo.currentIndexChanged.connect(self._draw_curves)
        self.protocol_combo.currentTextChanged.connect(state.set_protocol)
        state.protocol_changed.connect(self._on_protocol)
        state.eval_changed.connect(self._refresh)
        state.model_changed.connect(self._on_model)
        for signal in (state.quant_changed, state.dataset_changed):
            signal.connect(self.update_stale)

    def _build_protocol_and_caption(self) -> None:
        self.protocol_combo = QComboBox(objectName="protocolCombo")
        self.protocol_combo.addItems(PROTOCOLS)
        self.protocol_combo.setToolTip(PROTOCOL_TIP)
        self.caption = ResultCaption("Not evaluated yet: press Evaluate", "Evaluate", "evalCaption")

    def _build(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.evaluate_button)
        top.addWidget(QLabel("Protocol"))
        top.addWidget(self.protocol_combo)
        top.addWidget(QLabel("Class"))
        top.addWidget(self.class_combo)
        top.addWidget(QLabel("Difficulty"))
        top.addWidget(self.diff_combo)
        top.addStretch(1)
        top.addWidget(self.export_pr)
        top.addWidget(self.export_ap)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.table, 1)
        rv.addWidget(self.summary)
        self.plots = QTabWidget(objectName="metricsPlots", documentMode=True)
        self.plots.addTab(self.plot, "PR curves")
        self.plots.addTab(self.errors, "Detection errors")
        split = QSplitter(Qt.Orientation.Horizontal, objectName="metricsSplitter")
        split.addWidget(self.plots)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([500, 500])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(self.caption)
        layout.addWidget(split, 1)

    def _on_model(self) -> None:
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        if self.state.model is not None:
            self.class_combo.addItems(list(self.state.model.class_names))
        self.class_combo.blockSignals(False)
        self._refresh()

    def _refresh(self) -> None:
        self._fill_table()
        self._draw_curves()
        self.update_stale()

    def _on_protocol(self, protocol: str) -> None:
        if self.protocol_combo.currentText() != protocol:
            self.protocol_combo.setCurrentText(protocol)
        self.update_stale()

    def is_stale(self) -> bool:
        """The results shown were computed with other settings than the current ones."""
        tag = self.state.evaluation.tag
        return tag is not None and tag.key != eval_key(self.state, self.state.protocol)

    def update_stale(self) -> None:
        self.caption.show_tag(self.state.evaluation.tag, self.is_stale())

    # ------------------------------------------------------------------ table
    def _fill_table(self) -> None:
        ev = self.state.evaluation
        if ev.ref is None or ev.other is None:
            self.table.setRowCount(0)
            self.summary.setText("Not evaluated yet: press Evaluate")
            return
        rows = []
        for c in ev.ref.classes:
            ref = [getattr(ev.ref.ap[c][d], f"ap_{p}") for p in ("r11", "r40") for d in DIFFS]
            oth = [getattr(ev.other.ap[c][d], f"ap_{p}") for p in ("r11", "r40") for d in DIFFS]
            rows.append((c, ref, oth))
        ref = [ev.ref.map[p][d] for p in ("r11", "r40") for d in DIFFS]
        oth = [ev.other.map[p][d] for p in ("r11", "r40") for d in DIFFS]
        rows.append(("mAP", ref, oth))
        self._set_rows(rows, ev.ref_label, ev.other_label)
        m0, m1 = ev.ref.map["r11"]["all"], ev.other.map["r11"]["all"]
        n = ev.ref.counts
        self.summary.setText(
            f"mAP (all 9 APs, R11): {ev.ref_label} {m0:.4f} → {ev.other_label} {m1:.4f} "
            f"({m1 - m0:+.4f}) · {n.get('images', 0)} images, {n.get('gt_objects', 0)} objects"
        )

    def _set_rows(self, rows: list, ref_label: str, other_label: str) -> None:
        self.table.setRowCount(3 * len(rows))
        labels = []
        for i, (name, ref, oth) in enumerate(rows):
            for k, (tag, values) in enumerate(((ref_label, ref), (other_label, oth))):
                labels.append(f"{name} · {tag}")
                for j, v in enumerate(values):
                    self._cell(3 * i + k, j, f"{v:.4f}")
            labels.append(f"{name} · Δ")
            for j, (a, b) in enumerate(zip(ref, oth)):
                item = self._cell(3 * i + 2, j, f"{b - a:+.4f}")
                item.setBackground(_delta_brush(b - a))
        self.table.setVerticalHeaderLabels(labels)

    def _cell(self, r: int, c: int, text: str) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.table.setItem(r, c, item)
        return item

    # ----------------------------------------------------------------- curves
    def _draw_curves(self) -> None:
        self.plot.clear()
        self.legend.clear()
        ev = self.state.evaluation
        cls, diff = self.class_combo.currentText(), self.diff_combo.currentText()
        if ev.ref is None or cls not in ev.ref.ap:
            self.plot.setTitle("Precision / recall (not evaluated yet)")
            return
        tag = ev.tag
        configs = (tag.ref_config, tag.other_config) if tag is not None else ("", "")
        for result, label, config, color, style in (
            (ev.ref, ev.ref_label, configs[0], CURVE_REF, REF.style),
            (ev.other, ev.other_label, configs[1], CURVE_OTHER, OTHER.style),
        ):
            curve = result.ap[cls][diff]
            keep = ~np.isnan(curve.recall)
            pen = pg.mkPen(color, width=2.5, style=style)
            name = f"{label}" + (f" ({config})" if config and config != label.lower() else "")
            self.plot.plot(curve.recall[keep], curve.precision[keep], pen=pen,
                           name=f"{name}: AP R11 {curve.ap_r11:.4f}, R40 {curve.ap_r40:.4f}")  # fmt: skip
        self.plot.setTitle(f"Precision / recall · {cls}, {diff}")
