"""The weight-histogram page of the Layers panel.

The selected layer's float weights as translucent bars with the grid's levels
drawn over them (dashed lines; a short rug when there are many), the quantized
weights on the same bins beside them.  With per-channel scales each channel has
its own grid: the page then shows one output channel's kernel weights and grid
(the engine's ``channel_grid``; the widest channel by default, or the one chosen
in the channel box) and says which, beside the box.  The float weights beyond the
grid's end levels, the ones quantization clips, lie in shaded tails, and the
label above says what share of the layer's (or channel's) weights that is (the
engine's ``clipping_report``, as in the table).  Both plots span the same x range,
the data's and the levels' (never clipped), and their titles are elided to the
plot's width.

Repaint cost matters here (the plots redraw on every slider release, possibly
while an evaluation keeps both cores busy): the plot items are made once and only
their data change, the bars are drawn unantialiased, and the view is fitted
before it paints.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from squeezelens.gui.analysis import Analysis
from squeezelens.gui.palette import CLIPPED_TAIL, HIST_FLOAT, HIST_QUANT, LEVEL_LINES
from squeezelens.gui.state import AppState

DENSE_LEVELS = 48  # above this many levels, lines would hide the histogram
TITLE_PT = 10
X_PADDING = 0.03  # of the x span, on each side
BAR_ALPHA = 150  # translucent bars: the levels stay visible where they cross them
LEVELS_Z = 10  # levels above the bars
TAIL_ALPHA = 90
TAIL_Z = -10  # the clipped tails' shading under the bars


def hist_plot(name: str, title: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title)
    plot.setObjectName(name)
    plot.setMenuEnabled(False)
    # count lines only: a full translucent grid doubles the cost of every repaint
    # (measured: ~30 -> ~14 ms per histogram update with the curves unantialiased)
    plot.showGrid(x=False, y=True, alpha=0.2)
    plot.setLabel("bottom", "weight value")
    # a fixed axis width: one that followed its tick labels would re-lay out the plot,
    # and paint it twice, whenever the counts gained a digit
    # (room for five-digit counts, the rotated label and the ticks)
    metrics = QFontMetrics(plot.font())
    plot.getAxis("left").setWidth(metrics.horizontalAdvance("00000") + metrics.height() + 12)
    cache_axes(plot)
    return plot


def title_font() -> QFont:
    font = QFont()
    font.setPointSizeF(TITLE_PT)
    return font


def x_span(edges: np.ndarray, levels: np.ndarray) -> tuple[float, float]:
    """The x range showing every bin and every level, padded by :data:`X_PADDING`."""
    lo, hi = float(edges[0]), float(edges[-1])
    if levels.size:
        lo, hi = min(lo, float(levels.min())), max(hi, float(levels.max()))
    pad = X_PADDING * max(hi - lo, 1e-9)
    return lo - pad, hi + pad


def cache_axes(plot: pg.PlotWidget) -> None:
    """Keep each axis (ticks, labels, grid) as a device pixmap between repaints.

    Why: a new level set or quantized histogram repaints the whole plot, and replaying
    an axis' tick text costs ~3 ms per axis (measured: 10-14 -> 1-5 ms per histogram
    repaint with cached axes).  An axis whose ticks change redraws its pixmap once.
    Not for exported plots (PR, sweep): a cached item would reach an SVG as a bitmap.
    """
    for side in ("left", "bottom"):
        plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


class WeightHistograms(QWidget):
    """The selected layer's float histogram with the grid's levels over it, and the
    quantized histogram beside it; a log toggle and, for per-channel grids, the
    channel shown."""

    def __init__(self, state: AppState, analysis: Analysis, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.analysis = state, analysis
        self.log_check = QCheckBox("Log counts", objectName="logCheck")
        self.channel_label = QLabel("Channel", objectName="channelLabel")
        self.channel_spin = QSpinBox(objectName="channelSpin", minimum=0, maximum=0)
        self.channel_spin.setToolTip("Per-channel grids: the output channel whose levels are drawn")
        self.channel_spin.setKeyboardTracking(False)
        self.channel_info = QLabel("", objectName="channelInfo")
        self.clip_info = QLabel("", objectName="clipInfo")
        self.clip_info.setToolTip(
            "Weights beyond the grid's end levels are clipped (they land on the end level): "
            "the shaded tails of the float histogram. The share counts kernel and bias, as "
            "the table's Clipped column."
        )
        self._show_channel(None)
        self.hist = hist_plot("histogramPlot", "Float weights and grid levels")
        self.qhist = hist_plot("quantHistogramPlot", "Quantized weights")
        # the plot items are made once, here (not while the first boxes are painted: a few
        # ms each); a redraw only changes their data
        self.bars = (self._bars(self.hist, HIST_FLOAT, "float"),
                     self._bars(self.qhist, HIST_QUANT, "quantized"))  # fmt: skip
        self.levels = self.hist.plot(name="levels", antialias=False)  # vertical lines
        self.levels.setZValue(LEVELS_Z)
        self.tails = (self._tail(), self._tail())  # below the lowest / above the highest level
        self._lay_out()
        self.log_check.toggled.connect(self._draw_histogram)
        self.channel_spin.valueChanged.connect(analysis.set_channel)
        state.histogram_changed.connect(self._draw_histogram)

    def _lay_out(self) -> None:
        """Log toggle and channel box above the float | quantized histograms."""
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.hist)
        plots.addWidget(self.qhist)
        top = QHBoxLayout()
        top.addWidget(self.log_check)
        top.addWidget(self.clip_info)
        top.addStretch(1)
        top.addWidget(self.channel_label)
        top.addWidget(self.channel_spin)
        top.addWidget(self.channel_info)
        wv = QVBoxLayout(self)
        wv.setContentsMargins(0, 0, 0, 0)
        wv.addLayout(top)
        wv.addWidget(plots, 1)

    def _tail(self) -> pg.LinearRegionItem:
        color = pg.mkColor(CLIPPED_TAIL)
        color.setAlpha(TAIL_ALPHA)
        tail = pg.LinearRegionItem(movable=False, brush=color, pen=pg.mkPen(None))
        tail.setZValue(TAIL_Z)
        tail.setVisible(False)
        self.hist.addItem(tail)
        return tail

    @staticmethod
    def _bars(plot: pg.PlotWidget, color: str, name: str) -> pg.PlotDataItem:
        fill = pg.mkColor(color)
        fill.setAlpha(BAR_ALPHA)
        # axis-aligned steps: nothing to smooth, and unantialiased fills paint 3x faster
        return plot.plot(name=name, fillLevel=0, brush=fill, pen=pg.mkPen(color, width=1),
                         antialias=False)  # fmt: skip

    def _draw_histogram(self) -> None:
        hist = self.state.histogram
        self._show_channel(self.state.histogram_channel)
        if hist is None:
            for item in (*self.bars, self.levels):
                item.setData([], [])  # empty: nothing drawn, the item stays
            self._draw_tails(None)
            return
        log = self.log_check.isChecked()
        f = np.log10(1 + hist.float_counts) if log else hist.float_counts
        q = np.log10(1 + hist.quant_counts) if log else hist.quant_counts
        for plot, curve, counts in zip((self.hist, self.qhist), self.bars, (f, q)):
            shown = curve.getData()
            if shown[1] is None or not (
                np.array_equal(shown[1], counts) and np.array_equal(shown[0], hist.edges)
            ):  # unchanged bars (the float side when only the grid moves) are not redrawn
                curve.setData(hist.edges, counts, stepMode="center")
            self._set_label(plot, "log10(1 + count)" if log else "count")
        levels = np.asarray(hist.levels, dtype=float)
        self._draw_levels(levels, float(max(f.max(), 1)))
        self._set_titles(levels.size)
        self._draw_tails(hist.edges)
        lo, hi = x_span(hist.edges, levels)
        for plot in (self.hist, self.qhist):
            # fit the new data now: fitted while painting, the range change would
            # paint the plot a second time
            view = plot.getPlotItem().getViewBox()
            view.setXRange(lo, hi, padding=0)
            if view.autoRangeEnabled()[1]:
                view.updateAutoRange()
            view.updateMatrix()

    @staticmethod
    def _set_label(plot: pg.PlotWidget, text: str) -> None:
        axis = plot.getAxis("left")
        if axis.labelText != text:
            plot.setLabel("left", text)

    def _set_titles(self, n_levels: int) -> None:
        name = self.state.selected_layer or (
            self.state.layer_rows[0].name if self.state.layer_rows else ""
        )
        channel = self.state.histogram_channel
        ch = "" if channel is None else f"ch {channel[0]} · "
        info = (self.analysis.report or {}).get(f"{name}/kernels")
        total = info.n_levels if info is not None and info.quantized else 0
        if self.state.other_config is None:
            name, title = "", "float model: choose bits to see a grid"
        elif not n_levels:
            title = f"{ch}float · no grid (this layer stays float)"
        elif total > n_levels:  # a shared (global / group) grid reaches beyond this layer
            title = f"{ch}float · {n_levels}/{total} levels"
        else:
            title = f"{ch}float · {n_levels} levels"
        self._titles = ((name, title), (name, f"{ch}quantized"))
        self._fit_titles()

    def _fit_titles(self) -> None:
        """Each plot's title ('layer · what'), fitted to the room over the view box (right of
        the fixed-width count axis: a wider title would widen the plot item beyond its
        widget, and be cut): the layer name is elided first, in the middle, so the channel
        and the levels stay readable; the full title is the plot's tooltip then."""
        metrics = QFontMetrics(title_font())
        for plot, (name, what) in zip((self.hist, self.qhist), getattr(self, "_titles", ())):
            room = max(40, plot.width() - plot.getAxis("left").width() - 16)
            text = f"{name} · {what}" if name else what
            shown = text
            if metrics.horizontalAdvance(text) > room:
                left = room - metrics.horizontalAdvance(f" · {what}")
                mode = Qt.TextElideMode.ElideMiddle
                shown = (f"{metrics.elidedText(name, mode, left)} · {what}"
                         if name and left >= metrics.horizontalAdvance("fire1…1x1")
                         else metrics.elidedText(text, Qt.TextElideMode.ElideRight, room))  # fmt: skip
            plot.setToolTip(text if shown != text else "")
            if plot.getPlotItem().titleLabel.text != shown:
                plot.setTitle(shown, size=f"{TITLE_PT}pt")

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_titles()

    def _show_channel(self, channel: tuple[int, int, int] | None) -> None:
        """The channel box shows only for per-channel grids, at the channel drawn."""
        for w in (self.channel_label, self.channel_spin, self.channel_info):
            w.setVisible(channel is not None)
        if channel is not None:
            c, n, widest = channel
            self.channel_info.setText(f"of {n}" + (" (widest range)" if c == widest else ""))
            self.channel_spin.blockSignals(True)
            self.channel_spin.setMaximum(channel[1] - 1)
            self.channel_spin.setValue(channel[0])
            self.channel_spin.blockSignals(False)

    def _draw_tails(self, edges: np.ndarray | None) -> None:
        """Shade the float weights beyond the grid's ends; say what share is clipped."""
        ends = self.analysis.grid_ends if edges is not None else None
        low, high = self.tails
        low.setVisible(bool(ends is not None and edges[0] < ends[0]))
        high.setVisible(bool(ends is not None and edges[-1] > ends[1]))
        if low.isVisible():
            low.setRegion((float(edges[0]), ends[0]))
        if high.isVisible():
            high.setRegion((ends[1], float(edges[-1])))
        self.clip_info.setText(self.clipped_text())

    def clipped_text(self) -> str:
        """'clipped: 1.25% of the layer (shaded)' from the engine's clipping report."""
        clip = self.analysis.clipping.get(self.analysis.histogram_layer)
        if clip is None or self.state.histogram is None:
            return ""
        channel = self.state.histogram_channel
        part = clip.total if channel is None else clip.channel(channel[0])
        share = float(part.clipped_fraction)
        where = "layer" if channel is None else f"channel {channel[0]}"
        if part.clipped == 0:
            return f"nothing clipped in this {where}"
        return f"clipped: {share:.2%} of the {where} (shaded)"

    def _draw_levels(self, levels: np.ndarray, top: float) -> None:
        """Grid levels as dashed lines over the bars; many levels as a short rug instead."""
        dense = levels.size > DENSE_LEVELS
        height = 0.08 * top if dense else top
        x = np.repeat(levels, 2)
        y = np.tile([-0.02 * top if dense else 0.0, height], levels.size)
        color = pg.mkColor(LEVEL_LINES)
        color.setAlpha(220 if dense else 200)
        style = Qt.PenStyle.SolidLine if dense else Qt.PenStyle.DashLine
        self.levels.setPen(pg.mkPen(color, width=1.2, style=style))
        self.levels.setData(x, y, connect="pairs")
