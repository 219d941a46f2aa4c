"""Layers panel: per-layer table, weight histogram with grid levels, activation SQNR.

The table shows the engine's per-layer report (params, range, step, SQNR,
sensitivity); its Bits column edits the config's per-layer ``overrides``.
Selecting a row shows that layer's weight histograms
(:class:`~gui.panels.histograms.WeightHistograms`); the second tab shows the float
vs quantized activation SQNR of every layer on the current image.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from squeezelens.gui.analysis import Analysis
from squeezelens.gui.palette import HIST_QUANT
from squeezelens.gui.panels.histograms import WeightHistograms, cache_axes
from squeezelens.gui.state import AppState

COLUMNS = ("Layer", "Params", "Range", "Step", "Levels", "SQNR dB", "Sens. ΔmAP", "Bits")
BITS_COL = COLUMNS.index("Bits")
SENS_COL = COLUMNS.index("Sens. ΔmAP")
BITS_CHOICES = ["default", "float", *(str(b) for b in range(1, 17))]


def _num(value: float, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return format(value, fmt)


def _sensitivity_tip(state: AppState, layer: str) -> str:
    """'mAP R11 lost with only this layer quantized: 5 bits 0.0312 · 6 bits 0.0040 …'."""
    drops = state.sensitivity_by_bits.get(layer)
    if not drops:
        return "mAP (R11, a fraction) lost with only this layer quantized: Compute sensitivity"
    widths = " · ".join(f"{b} bits {d:+.4f}" for b, d in sorted(drops.items()))
    return f"mAP (R11, a fraction) lost with only this layer quantized: {widths}"


class BitsDelegate(QStyledItemDelegate):
    """A combo box editor for the Bits column: default, float, 1…16."""

    def createEditor(self, parent, option, index):  # noqa: N802
        combo = QComboBox(parent)
        combo.addItems(BITS_CHOICES)
        return combo

    def setEditorData(self, editor, index):  # noqa: N802
        text = str(index.data() or "default")
        editor.setCurrentText("default" if text.startswith("default") else text)

    def setModelData(self, editor, model, index):  # noqa: N802
        model.setData(index, editor.currentText())


class LayersPanel(QWidget):
    """Table | (float histogram with levels, quantized histogram) / activation SQNR."""

    def __init__(self, state: AppState, analysis: Analysis, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.analysis = state, analysis
        self.table = self._make_table()
        self.sens_button = QPushButton("Compute sensitivity", objectName="sensitivityButton")
        self.sens_button.setToolTip("mAP cost of quantizing each layer alone (background job)")
        self.apply_button = QPushButton(
            "Apply recommendation", objectName="applyRecommendationButton"
        )
        self.apply_button.setEnabled(False)  # until a sensitivity of the current config
        self.histograms = WeightHistograms(state, analysis)
        # the histogram page's parts, by the names tests and automation use
        h = self.histograms
        self.hist, self.qhist, self.log_check = h.hist, h.qhist, h.log_check
        self.channel_label, self.channel_spin = h.channel_label, h.channel_spin
        self.act_plot = pg.PlotWidget(title="Activation SQNR on this image (dB)")
        self.act_plot.setObjectName("activationPlot")
        self.act_plot.setMenuEnabled(False)
        cache_axes(self.act_plot)
        self._filling = False
        self._sized_for: tuple = ()
        self._build()
        self._connect()

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS), objectName="layerTable")
        table.setHorizontalHeaderLabels(COLUMNS)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        table.setItemDelegateForColumn(BITS_COL, BitsDelegate(table))
        table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        table.itemSelectionChanged.connect(self._on_select)
        table.itemChanged.connect(self._on_item_changed)
        return table

    def _connect(self) -> None:
        state, analysis = self.state, self.analysis
        self.sens_button.clicked.connect(analysis.sensitivity)
        self.apply_button.clicked.connect(analysis.apply_recommendation)
        analysis.recommendation_changed.connect(self.apply_button.setEnabled)
        state.layers_changed.connect(self._fill)
        state.activation_changed.connect(self._draw_activations)

    def _build(self) -> None:
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.table, 1)
        row = QHBoxLayout()
        for w in (self.sens_button, self.apply_button):
            row.addWidget(w)
        row.addStretch(1)
        lv.addLayout(row)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        self.plot_tabs = QTabWidget(objectName="layerPlotTabs")
        self.plot_tabs.setDocumentMode(True)
        self.plot_tabs.addTab(self.histograms, "Weight histogram")
        self.plot_tabs.addTab(self.act_plot, "Activations on this image")
        rv.addWidget(self.plot_tabs, 1)
        self.plot_tabs.currentChanged.connect(self._on_plot_tab)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, objectName="layersSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 6)
        self.splitter.setSizes([500, 600])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter)

    def showEvent(self, event) -> None:  # noqa: N802
        self.analysis.layers_active = True
        self.analysis.request_layers()
        self._on_plot_tab(self.plot_tabs.currentIndex())
        super().showEvent(event)

    def _on_plot_tab(self, index: int) -> None:
        """Activations cost two forward passes per image: only while their tab shows."""
        self.analysis.activations_active = index == 1 and self.isVisible()
        if self.analysis.activations_active:
            self.analysis.request_activations()

    def hideEvent(self, event) -> None:  # noqa: N802
        self.analysis.layers_active = self.analysis.activations_active = False
        super().hideEvent(event)

    # ------------------------------------------------------------------ table
    def _fill(self) -> None:
        rows, report = self.state.layer_rows, self.analysis.report or {}
        config = self.state.other_config
        overrides = dict(getattr(config, "overrides", None) or ())
        self._filling = True
        shape = (len(rows), bool(report))
        fresh, self._sized_for = shape != self._sized_for, shape
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            info = report.get(f"{row.name}/kernels")
            self._set_row(r, row, info, overrides.get(row.name), config)
            if row.name == self.state.selected_layer:
                self.table.selectRow(r)
        if fresh:  # sizing columns costs ~0.1 s: only when rows or float/quantized change
            self.table.resizeColumnsToContents()
        self._filling = False
        self.apply_button.setEnabled(self.analysis.recommendation is not None)

    def _set_row(self, r: int, row, info, override, config) -> None:
        sens = self.state.sensitivity.get(row.name)
        quantized = info is not None and info.quantized
        if not quantized:
            step, levels = "–", "float"
        elif info.per_channel:
            step, levels = "per channel", str(info.n_levels)
        else:
            step, levels = _num(float(info.step), ".2e"), str(info.n_levels)
        if override is not None:
            bits = str(override)
        else:
            bits = (
                f"default ({info.bits if quantized else 'float'})"
                if config is not None
                else "default"
            )
        cells = (row.name, f"{row.params:,}", f"{row.w_min:+.3f} … {row.w_max:+.3f}", step, levels,
                 _num(row.error.sqnr_db, ".1f"), "" if sens is None else f"{sens:+.4f}", bits)  # fmt: skip
        for c, text in enumerate(cells):
            item = self.table.item(r, c)
            if item is None:
                item = QTableWidgetItem()
                if c != BITS_COL:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if c in (1, 3, 4, 5, 6):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
            if item.text() != text:
                item.setText(text)
        self.table.item(r, SENS_COL).setToolTip(_sensitivity_tip(self.state, row.name))

    def _on_select(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and not self._filling:
            self.state.select_layer(self.table.item(rows[0].row(), 0).text())

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        """A Bits edit sets an override of the compared config (B in A-vs-B mode)."""
        if self._filling or item.column() != BITS_COL:
            return
        config = self.state.other_config
        layer, text = self.table.item(item.row(), 0).text(), item.text().strip()
        if config is None:
            self.state.message.emit(
                f"{self.state.other_label} is the float model: choose bits first, "
                f"then set per-layer bits ({layer} unchanged)"
            )
            self._fill()  # restore the cell
            return
        overrides = dict(getattr(config, "overrides", None) or ())
        if text == "" or text.startswith("default"):
            overrides.pop(layer, None)
        elif text == "float":
            overrides[layer] = "float"
        elif text.isdigit() and 1 <= int(text) <= 16:
            overrides[layer] = int(text)
        else:
            self.state.error.emit(f"bits for {layer} must be 'float' or 1–16, got {text!r}")
            self._fill()
            return
        if not self.analysis.set_overrides(overrides):
            self._fill()

    def select_row(self, index: QModelIndex | int) -> None:
        self.table.selectRow(index if isinstance(index, int) else index.row())

    # ------------------------------------------------------------------ plots
    def _draw_activations(self) -> None:
        rows = self.state.activations
        self.act_plot.clear()
        if not rows:
            self.act_plot.setTitle("Activation SQNR on this image (dB): float model or none yet")
            return
        sqnr = np.array([min(r.sqnr_db, 80.0) for r in rows], dtype=float)
        x = np.arange(len(rows))
        self.act_plot.addItem(pg.BarGraphItem(x=x, height=sqnr, width=0.7, brush=HIST_QUANT))
        ticks = [(i, r.name.split("/")[0]) for i, r in enumerate(rows)
                 if "/" not in r.name or r.name.endswith("squeeze1x1")]  # fmt: skip
        self.act_plot.getAxis("bottom").setTicks([ticks])
        worst = min(rows, key=lambda r: r.sqnr_db)
        self.act_plot.setTitle(
            f"Activation SQNR on this image (dB) · worst {worst.name} {worst.sqnr_db:.1f} dB"
        )
