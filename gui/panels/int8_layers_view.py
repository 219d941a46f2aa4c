"""The Layers tab's activation page with TFLite INT8 on: deployed INT8 vs float and vs its
simulation, layer by layer.

:class:`Int8LayersView` shows :class:`gui.int8_layers.Int8LayerJobs`' result (the
engine's ``compare_int8_layers``, the numbers of ``squeezelens compare-int8``): per
layer SQNR and cosine of the INT8 model vs float, of the simulation vs float and of
the INT8 model vs its simulation, and the share of values more than one step apart.
The first layer where deployment and simulation part is marked; the tolerance is
stated under the table.  The result greys out and says so when the image, the model
or the INT8 model changes.  :class:`ActivationPage` shows it in place of the float vs
quantized activation chart while INT8 is on.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from squeezelens.gui.int8_layers import Int8LayerJobs, int8_layers_key
from squeezelens.gui.provenance import int8_on, stale_text
from squeezelens.gui.state import AppState

COLUMNS = ("Layer", "INT8–float dB", "cos", "Sim–float dB", "cos", "INT8–sim dB", "cos", ">1 LSB")
HEADER_TIPS = (
    "Layer output (conv + ReLU), forward order",
    "SQNR of the deployed INT8 model's output (dequantized) against the float model's",
    "Cosine similarity of the INT8 output and the float output",
    "SQNR of the simulated 8-bit model (the INT8 model's own weights, biases and activation "
    "grids, in float) against the float model",
    "Cosine similarity of the simulated output and the float output",
    "SQNR of the deployed INT8 output against its simulation: what the integer arithmetic "
    "(int32 accumulation, fixed-point requantization, rounding) adds",
    "Cosine similarity of the INT8 output and the simulated output",
    "Share of values where deployed and simulated differ by more than one activation step (LSB)",
)
PARTED_BRUSH = QColor(213, 94, 0, 90)  # vermillion, translucent: the first parting layer
STALE_COLOR = QColor("#9a9a9a")
MAX_IMAGES = 64


def _db(value: float) -> str:
    return "∞" if math.isinf(value) and value > 0 else f"{value:.1f}"


def row_texts(row) -> list[str]:
    """The cells of one engine Int8LayerRow, in :data:`COLUMNS` order."""
    return [row.layer,
            _db(row.deployed_vs_float.sqnr_db), f"{row.deployed_float_cosine:.5f}",
            _db(row.simulated_vs_float.sqnr_db), f"{row.simulated_float_cosine:.5f}",
            _db(row.deployed_vs_simulated.sqnr_db), f"{row.deployed_simulated_cosine:.5f}",
            f"{row.parted_share:.3%}"]  # fmt: skip


class Int8LayersView(QWidget):
    """Images and kernels, a Compare button, the per-layer table and the verdict."""

    def __init__(self, state: AppState, jobs: Int8LayerJobs, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.jobs = state, jobs
        self.count = QSpinBox(objectName="int8ImagesSpin", minimum=1, maximum=MAX_IMAGES)
        self.count.setToolTip("Compare on the image shown and the next ones of the split")
        self.kernels = QComboBox(objectName="int8KernelsCombo")
        self.kernels.addItems(["xnnpack", "reference"])
        self.kernels.setToolTip(
            "LiteRT's XNNPACK kernels (what the INT8 detector runs) or TFLite's reference kernels"
        )
        self.compare = QPushButton("Compare layers", objectName="int8CompareButton")
        self.compare.setToolTip("Run the INT8 model keeping every layer's output (background job, "
                                "Esc cancels); the numbers of squeezelens compare-int8")  # fmt: skip
        self.caption = QLabel("", objectName="int8Caption", wordWrap=True)
        self.verdict = QLabel("", objectName="int8Verdict", wordWrap=True)
        self.table = self._make_table()
        self._scrolled_for: object = None  # the result last scrolled to its parting layer
        self._lay_out()
        self.compare.clicked.connect(self.run)
        for signal in (state.int8_layers_changed, state.image_changed, state.model_changed,
                       state.quant_changed, state.dataset_changed):  # fmt: skip
            signal.connect(self.refresh)
        state.result_changed.connect(self._caption_now)  # e.g. the INT8 model became ready
        self.count.valueChanged.connect(self.refresh)
        self.kernels.currentTextChanged.connect(self.refresh)
        self.refresh()

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS), objectName="int8LayerTable")
        table.setHorizontalHeaderLabels(COLUMNS)
        for c, tip in enumerate(HEADER_TIPS):
            table.horizontalHeaderItem(c).setToolTip(tip)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        return table

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Images"))
        top.addWidget(self.count)
        top.addWidget(QLabel("Kernels"))
        top.addWidget(self.kernels)
        top.addWidget(self.compare)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.verdict)

    def run(self) -> None:
        self.jobs.run(self.count.value(), self.kernels.currentText())

    def stale(self) -> bool:
        """The comparison shown was computed with another image, model or INT8 model."""
        shown = self.state.int8_layers
        if shown.comparison is None:
            return False
        now = int8_layers_key(self.state, self.jobs.controller, len(shown.images), shown.kernels)
        return now != shown.key

    def refresh(self, *_args) -> None:
        """Table, caption and verdict from AppState; greyed when stale."""
        shown, stale = self.state.int8_layers, self.stale()
        self.compare.setEnabled(int8_on(self.state))
        comparison = shown.comparison
        rows = comparison.rows if comparison is not None else ()
        self.table.setRowCount(len(rows))
        first = comparison.first_parting if comparison is not None else None
        for r, row in enumerate(rows):
            for c, text in enumerate(row_texts(row)):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(r, c, item)
                item.setText(text + (" ◀ parts" if c == 0 and row.layer == first else ""))
                if c:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                item.setBackground(QBrush(PARTED_BRUSH) if row.layer == first else QBrush())
                item.setForeground(QBrush(STALE_COLOR) if stale else QBrush())
                item.setToolTip(self._row_tip(row))
        if rows:
            self.table.resizeColumnsToContents()
        if first is not None and shown is not self._scrolled_for:  # a new result: show where
            self._scrolled_for = shown  # they part (once: the user may scroll away)
            index = next(r for r, row in enumerate(rows) if row.layer == first)
            self.table.scrollToItem(self.table.item(index, 0),
                                    QAbstractItemView.ScrollHint.PositionAtCenter)  # fmt: skip
        self._captions(shown, stale)

    def _caption_now(self) -> None:
        self._captions(self.state.int8_layers, self.stale())

    @staticmethod
    def _row_tip(row) -> str:
        return (f"{row.layer}: output {'x'.join(map(str, row.shape))}, step {row.scale:.4g}, "
                f"zero point {row.zero_point}\nThe layer alone (recomputed in float from its "
                f"deployed input): {row.local_share:.3%} of values off by a step or more, "
                f"at most {row.local_max_lsb} steps")  # fmt: skip

    def _captions(self, shown, stale: bool) -> None:
        comparison = shown.comparison
        if comparison is None:
            why = self.jobs.why_not()
            self.caption.setText(why or "Press Compare layers: the deployed INT8 model vs float "
                                 "and vs its simulation, layer by layer")  # fmt: skip
            self.verdict.setText("")
            return
        names = ", ".join(p.rsplit("/", 1)[-1] for p in shown.images)
        text = (f"INT8 ({comparison.kernels} kernels) vs float and vs its simulation on "
                f"{comparison.images} image(s): {names}")  # fmt: skip
        self.caption.setText(text + (f" — {stale_text('Compare layers')}" if stale else ""))
        self.caption.setStyleSheet("color: #D55E00; font-weight: 600;" if stale else "")
        self.verdict.setText(comparison.verdict())
        parted = comparison.first_parting is not None
        self.verdict.setStyleSheet("color: #D55E00;" if parted and not stale else "")


class ActivationPage(QStackedWidget):
    """The activation chart, or the INT8 comparison while TFLite INT8 is on."""

    def __init__(self, state: AppState, chart: QWidget, int8_view: Int8LayersView,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("activationPage")
        self.state, self.chart, self.int8_view = state, chart, int8_view
        self.addWidget(chart)
        self.addWidget(int8_view)
        state.quant_changed.connect(self._switch)
        self._switch()

    def _switch(self) -> None:
        self.setCurrentWidget(self.int8_view if int8_on(self.state) else self.chart)
