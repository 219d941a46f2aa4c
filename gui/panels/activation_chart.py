"""The Layers tab's activation SQNR chart: one bar per layer output, labels that never overlap.

A SqueezeDet has 26 layer outputs; their names ("fire9/expand3x3") do not fit under
26 bars at any usual width.  The x axis names the fire modules (and conv1, conv12),
thinned left to right so that neighbouring labels keep a gap at the plot's
current width (recomputed when it is resized); every bar is named, with its SQNR, in
the tooltip under the mouse.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QToolTip

from squeezelens.gui.palette import HIST_QUANT
from squeezelens.gui.panels.histograms import cache_axes

SQNR_CAP = 80.0  # dB: exact layers (float) would be infinite
LABEL_GAP = 8  # px between neighbouring tick labels


def module_name(layer: str) -> str:
    """'fire9/expand3x3' -> 'fire9'; 'conv12' -> 'conv12'."""
    return layer.split("/")[0]


class ActivationChart(pg.PlotWidget):
    """Float vs quantized activation SQNR (dB) of every layer output on the current image."""

    def __init__(self) -> None:
        super().__init__(title="Activation SQNR on this image (dB)")
        self.setObjectName("activationPlot")
        self.setMenuEnabled(False)
        self.setLabel("left", "SQNR dB")
        cache_axes(self)
        self.rows: list = []
        self._ticks: list[tuple[int, str]] = []
        self.scene().sigMouseMoved.connect(self._hover)
        self.getPlotItem().getViewBox().sigResized.connect(self._set_ticks)

    def set_rows(self, rows: list | None) -> None:
        """Draw ``rows`` (engine ActivationRow, forward order); None or [] for none."""
        self.rows = list(rows or [])
        self.clear()
        if not self.rows:
            self.setTitle("Activation SQNR on this image (dB): float model or none yet")
            self.getAxis("bottom").setTicks([[]])
            return
        sqnr = np.array([min(r.sqnr_db, SQNR_CAP) for r in self.rows], dtype=float)
        x = np.arange(len(self.rows))
        self.addItem(pg.BarGraphItem(x=x, height=sqnr, width=0.7, brush=HIST_QUANT))
        self.setXRange(-1.2, len(self.rows) + 0.2, padding=0)  # room for the end labels
        worst = min(self.rows, key=lambda r: r.sqnr_db)
        self.setTitle(
            f"Activation SQNR (dB) · worst {worst.name} {worst.sqnr_db:.1f} dB", size="10pt"
        )
        self._set_ticks()

    def candidate_ticks(self) -> list[tuple[int, str]]:
        """(bar index, module name) at the first output of each module."""
        out, seen = [], set()
        for i, row in enumerate(self.rows):
            name = module_name(row.name)
            if name not in seen:
                seen.add(name)
                out.append((i, name))
        return out

    def pixels_per_bar(self) -> float:
        view = self.getPlotItem().getViewBox()
        (x0, x1), _ = view.viewRange()
        return view.width() / max(x1 - x0, 1e-9)

    def _set_ticks(self) -> None:
        """The module names, left to right, each kept only when it lies wholly on the axis
        (the axis drops a label that does not) and clears the last kept one by
        :data:`LABEL_GAP` pixels at the current width: none overlap."""
        metrics = QFontMetrics(self.getAxis("bottom").font())
        view = self.getPlotItem().getViewBox()
        x0, per_bar, width = view.viewRange()[0][0], self.pixels_per_bar(), view.width()
        kept, right = [], -math.inf
        for i, name in self.candidate_ticks():
            pos, half = (i - x0) * per_bar, metrics.horizontalAdvance(name) / 2
            if pos - half >= max(0.0, right + LABEL_GAP) and pos + half <= width:
                kept.append((i, name))
                right = pos + half
        self._ticks = kept
        self.getAxis("bottom").setTicks([kept])

    @property
    def shown_ticks(self) -> list[tuple[int, str]]:
        return list(self._ticks)

    def bar_tooltip(self, index: int) -> str:
        """'fire9/expand3x3: 23.4 dB (cosine 0.9981)'."""
        row = self.rows[index]
        return f"{row.name}: {row.sqnr_db:.1f} dB SQNR (cosine {row.cosine:.4f})"

    def _hover(self, pos: QPointF) -> None:
        if not self.rows:
            return
        view = self.getPlotItem().getViewBox()
        if not view.sceneBoundingRect().contains(pos):
            return
        point = view.mapSceneToView(pos)
        i = int(round(point.x()))
        if 0 <= i < len(self.rows) and abs(point.x() - i) <= 0.4:
            QToolTip.showText(self.mapToGlobal(self.mapFromScene(pos)), self.bar_tooltip(i), self)
        else:
            QToolTip.hideText()
