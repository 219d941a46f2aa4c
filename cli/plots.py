"""Headless plots for the CLI (sweep mAP vs bits), rendered with pyqtgraph's exporters.

The same exporters as the desktop tool, so a figure looks alike from both;
Qt runs on the offscreen platform when no display is available.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Okabe-Ito colour-blind-safe palette
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def _app():
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def render_sweep(
    curves: dict, out_png: Path, out_svg: Path, title: str, ylabel: str = "mAP (R11)"
) -> None:
    """Draw mAP vs bits like the low-precision fork's figure and export PNG + SVG.

    curves: label -> {bits: (mean, std, n)}; label 'float' (bits 32) becomes a dashed line.
    """
    app = _app()
    import pyqtgraph as pg
    import pyqtgraph.exporters as pge

    from cli.svg_compat import patch_svg_exporter

    patch_svg_exporter()

    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    plot = pg.PlotWidget()
    plot.resize(1000, 620)
    item = plot.getPlotItem()
    item.setTitle(title, size="13pt")
    item.setLabel("bottom", "bits")
    item.setLabel("left", ylabel)
    item.showGrid(x=True, y=True, alpha=0.3)
    item.addLegend(offset=(-10, -10), labelTextSize="11pt", brush=pg.mkBrush(255, 255, 255, 220))
    all_bits = sorted({b for c in curves.values() for b in c if b != 32}) or [8]
    for i, (label, points) in enumerate(sorted((k, v) for k, v in curves.items() if k != "float")):
        colour = PALETTE[i % len(PALETTE)]
        bits = [b for b in points if b != 32]
        mean = [points[b][0] for b in bits]
        std = [points[b][1] for b in bits]
        pen = pg.mkPen(colour, width=2)
        item.plot(
            bits,
            mean,
            pen=pen,
            symbol="o",
            symbolBrush=colour,
            symbolPen=colour,
            symbolSize=7,
            name=label,
        )
        if any(s > 0 for s in std):
            err = pg.ErrorBarItem(
                x=np.array(bits), y=np.array(mean), height=2 * np.array(std), beam=0.2, pen=pen
            )
            item.addItem(err)
    if "float" in curves:
        base = next(iter(curves["float"].values()))[0]
        item.plot([min(all_bits), max(all_bits)], [base, base],
                  pen=pg.mkPen("#555555", width=2, style=pg.QtCore.Qt.PenStyle.DashLine), name="float")  # fmt: skip
    item.setYRange(0, 1.0)
    item.setXRange(min(all_bits) - 0.5, max(all_bits) + 0.5)
    item.getAxis("bottom").setTicks([[(b, str(b)) for b in all_bits]])
    out_png.parent.mkdir(parents=True, exist_ok=True)
    plot.show()
    app.processEvents()
    exp = pge.ImageExporter(item)
    exp.parameters()["width"] = 1500
    exp.export(str(out_png))
    pge.SVGExporter(item).export(str(out_svg))
    plot.close()
