"""Layers panel: per-layer table, weight histogram with grid levels, activation SQNR.

The table shows the engine's per-layer report (params, range, step, SQNR, the mAP
drop of the layer alone with its bootstrap noise); its Bits column edits the config's
per-layer ``overrides``.  Any column sorts (the Layer column by forward order); the
most sensitive layers and the layers whose range another tensor hijacks
(engine.quant.hijack) are highlighted.  Selecting a row shows that layer's weight
histograms (:class:`~gui.panels.histograms.WeightHistograms`); the second tab shows
the float vs quantized activation SQNR of every layer on the current image
(:class:`~gui.panels.activation_chart.ActivationChart`), or with TFLite INT8 on the
deployed INT8 model vs float and vs its simulation
(:class:`~gui.panels.int8_layers_view.Int8LayersView`).
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from squeezelens.gui.analysis import Analysis
from squeezelens.gui.panels.activation_chart import ActivationChart
from squeezelens.gui.panels.histograms import WeightHistograms
from squeezelens.gui.panels.int8_layers_view import ActivationPage, Int8LayersView
from squeezelens.gui.panels.layer_rows import SORT_ROLE, SortItem, row_cells, sensitivity_tip
from squeezelens.gui.provenance import sensitivity_key, stale_text
from squeezelens.gui.state import AppState

COLUMNS = ("Layer", "Params", "Range", "Step", "Levels", "SQNR dB", "Clipped", "Clip dB",
           "Round dB", "mAP drop", "Bits")  # fmt: skip
HEADER_TIPS = {
    "Params": "Weights of the layer (kernel and bias)",
    "Range": "Weights' min … max (kernel and bias)",
    "Step": "Distance between neighbouring grid levels of the kernel",
    "Levels": "Number of grid levels of the kernel",
    "SQNR dB": "Signal to quantization noise of the layer's weights: 10 log10(Σw² / Σ(w − q)²)",
    "Clipped": "Share of the layer's weights (kernel and bias) beyond its grid's end levels: "
    "they land on the end level (clipping); every other weight is rounded",
    "Clip dB": "The clipping part of the weight error, in dB beside SQNR: 10 log10(Σw² / Σ over "
    "clipped weights of (w − q)²). ∞: nothing clipped. Lower = more error",
    "Round dB": "The rounding part of the weight error: 10 log10(Σw² / Σ over the other weights "
    "of (w − q)²). The two parts add up to the SQNR's error (squeezelens quantize --report)",
    "Bits": "Bits of this layer: the config's default, an override, or float (edit to change)",
}
BITS_COL = COLUMNS.index("Bits")
SENS_COL = COLUMNS.index("mAP drop")
RANGE_COL = COLUMNS.index("Range")
BITS_CHOICES = ["default", "float", *(str(b) for b in range(1, 17))]
MOST_SENSITIVE = 3  # layers highlighted: the largest drops that stand out of the noise
MIN_DROP = 0.005  # ... and exceed this (the engine's recommendation tolerance)
SENSITIVE_BRUSH = QColor(213, 94, 0, 70)  # vermillion, translucent
HIJACK_BRUSH = QColor(230, 159, 0, 110)  # orange
STALE_COLOR = QColor("#9a9a9a")
WARNING = QStyle.StandardPixmap.SP_MessageBoxWarning


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
        self.act_plot = ActivationChart()
        self.int8_view = Int8LayersView(state, analysis.int8_layers)
        self.act_page = ActivationPage(state, self.act_plot, self.int8_view)
        self.sens_caption = QLabel("", objectName="sensitivityCaption", wordWrap=True)
        self._filling = False
        self._sized_for: tuple = ()
        self._shown_tag: object = None  # the sensitivity whose column was brought into view
        self._build()
        self._connect()

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS), objectName="layerTable")
        table.setHorizontalHeaderLabels(COLUMNS)
        for c, name in enumerate(COLUMNS):
            if name in HEADER_TIPS:
                table.horizontalHeaderItem(c).setToolTip(HEADER_TIPS[name])
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        table.horizontalHeader().setSortIndicatorShown(True)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # forward order
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        table.setItemDelegateForColumn(BITS_COL, BitsDelegate(table))
        table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        table.itemSelectionChanged.connect(self._on_select)
        table.itemChanged.connect(self._on_item_changed)
        return table

    def _connect(self) -> None:
        state, analysis = self.state, self.analysis
        self.sens_button.clicked.connect(analysis.sensitivity.run)
        self.apply_button.clicked.connect(analysis.sensitivity.apply_recommendation)
        analysis.sensitivity.recommendation_changed.connect(self.apply_button.setEnabled)
        state.layers_changed.connect(self._fill)
        state.hijacks_changed.connect(self._fill)
        for signal in (state.protocol_changed, state.dataset_changed):  # config changes: via
            signal.connect(self._on_settings)  # SensitivityJobs.config_changed
        state.activation_changed.connect(lambda: self.act_plot.set_rows(state.activations))
        state.quant_changed.connect(self._name_activation_tab)

    def _build(self) -> None:
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.table, 1)
        lv.addWidget(self.sens_caption)
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
        self.plot_tabs.addTab(self.act_page, "Activations on this image")
        rv.addWidget(self.plot_tabs, 1)
        self._name_activation_tab()
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

    def _name_activation_tab(self) -> None:
        """'INT8 layers' while TFLite INT8 is on (the comparison shows), else the chart's name."""
        int8 = self.act_page.currentWidget() is self.int8_view
        self.plot_tabs.setTabText(1, "INT8 layers" if int8 else "Activations on this image")

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
        self.table.setSortingEnabled(False)  # rows keep their places while they are written
        s = self.state
        shape = (len(rows), bool(report), getattr(config, "scale", None), bool(s.hijacks),
                 bool(s.sensitivity),
                 bool(s.sensitivity_noise), s.sensitivity_tag, self.sensitivity_stale())  # fmt: skip
        fresh, self._sized_for = shape != self._sized_for, shape
        self.table.setRowCount(len(rows))
        hijacks = {h.layer: w for h, w in zip(self.state.hijacks, self.state.hijack_warnings)}
        sensitive = self.most_sensitive()
        for r, row in enumerate(rows):
            info = report.get(f"{row.name}/kernels")
            clip = self.analysis.clipping.get(row.name)
            self._set_row(r, row, info, overrides.get(row.name), config, clip)
            self._mark_row(r, row.name, hijacks.get(row.name), row.name in sensitive)
        self.table.setSortingEnabled(True)
        self._select_current()
        self._caption()  # the header's text first: the sizing below counts it
        if fresh:  # sizing columns costs ~0.1 s: only when rows, float/quantized, a measured
            # sensitivity or a hijack mark (the icon) come or go
            self.table.resizeColumnsToContents()
        if s.sensitivity_tag is not None and s.sensitivity_tag is not self._shown_tag:
            self._show_column(SENS_COL)  # a new measurement: bring its column into view
        self._shown_tag = s.sensitivity_tag
        self._filling = False
        self.apply_button.setEnabled(self.analysis.sensitivity.recommendation is not None)

    def _show_column(self, column: int) -> None:
        """Scroll the table sideways (only) until ``column`` is in view."""
        bar, header = self.table.horizontalScrollBar(), self.table.horizontalHeader()
        left, width = header.sectionPosition(column), header.sectionSize(column)
        view = self.table.viewport().width()
        if left < bar.value() or left + width > bar.value() + view:
            bar.setValue(min(left, max(0, left + width - view)))

    def _on_settings(self, *_args) -> None:
        """Another protocol or image set: a measured sensitivity turns stale."""
        if self.state.sensitivity_tag is not None:
            self._fill()

    def _select_current(self) -> None:
        self.select_layer(self.state.selected_layer, scroll=False)

    def _set_row(self, r: int, row, info, override, config, clip) -> None:
        cells = row_cells(self.state, r, row, info, override, config, clip)
        for c, (text, key) in enumerate(cells):
            item = self.table.item(r, c)
            if item is None:
                item = SortItem()
                if c != BITS_COL:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if c not in (0, RANGE_COL, BITS_COL):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
            if item.text() != text:
                item.setText(text)
            item.setData(SORT_ROLE, key)
        self.table.item(r, SENS_COL).setToolTip(sensitivity_tip(self.state, row.name))

    def sensitivity_stale(self) -> bool:
        """The drops shown were measured with other grids, model, images or protocol."""
        tag = self.state.sensitivity_tag
        return tag is not None and tag.key != sensitivity_key(self.state, self.state.protocol)

    def most_sensitive(self) -> set[str]:
        """The :data:`MOST_SENSITIVE` layers with the largest drops above :data:`MIN_DROP`
        and twice their noise (none while the column is stale)."""
        if self.sensitivity_stale():
            return set()
        noise = self.state.sensitivity_noise
        real = [(d, name) for name, d in self.state.sensitivity.items()
                if d > max(MIN_DROP, 2 * noise.get(name, 0.0))]  # fmt: skip
        return {name for _, name in sorted(real, reverse=True)[:MOST_SENSITIVE]}

    def _mark_row(self, r: int, layer: str, hijack: str | None, sensitive: bool) -> None:
        """Hijacked ranges and the most sensitive layers get a background and a tooltip."""
        name, rng, sens = (self.table.item(r, c) for c in (0, RANGE_COL, SENS_COL))
        name.setBackground(QBrush(HIJACK_BRUSH) if hijack else QBrush())
        name.setIcon(
            self.style().standardIcon(WARNING) if hijack else QIcon()
        )  # shows when selected
        rng.setBackground(QBrush(HIJACK_BRUSH) if hijack else QBrush())
        rng.setToolTip(hijack or "Weights' min … max (kernel and bias)")
        name.setToolTip(hijack or "")
        sens.setBackground(QBrush(SENSITIVE_BRUSH) if sensitive else QBrush())
        sens.setForeground(QBrush(STALE_COLOR) if self.sensitivity_stale() else QBrush())
        if sensitive:
            sens.setToolTip(sens.toolTip() + "\nAmong the most sensitive layers.")

    def _caption(self) -> None:
        """The sensitivity's header and caption: what it measured, on how many images."""
        tag, header = self.state.sensitivity_tag, self.table.horizontalHeaderItem(SENS_COL)
        tip = ("mAP (R11) lost with only this layer quantized: positive = worse. "
               "± is the bootstrap spread over the images used.")  # fmt: skip
        if tag is None:
            header.setText("mAP drop")
            header.setToolTip(tip + " Press Compute sensitivity.")
            self.sens_caption.setText("")
            return
        stale = self.sensitivity_stale()
        header.setText(f"mAP drop ({tag.images} img)" + (" · stale" if stale else ""))
        header.setToolTip(f"{tip} Measured on {tag.other_config}, {tag.scope()}.")
        text = f"mAP drop of each layer alone at {tag.other_config} · {tag.scope()}"
        self.sens_caption.setText(
            text + (f" — {stale_text('Compute sensitivity')}" if stale else "")
        )
        color = "#D55E00" if stale else "palette(mid)"
        self.sens_caption.setStyleSheet(
            f"color: {color};" + (" font-weight: 600;" if stale else "")
        )

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
        if not self.analysis.sensitivity.set_overrides(overrides):
            self._fill()

    def select_layer(self, layer: str, scroll: bool = True) -> None:
        """Select (and show) ``layer``'s row, whatever the table's sort."""
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.text() == layer:
                self.table.selectRow(r)
                if scroll:
                    self.table.scrollToItem(item)
                return

    def select_row(self, index: QModelIndex | int) -> None:
        self.table.selectRow(index if isinstance(index, int) else index.row())
