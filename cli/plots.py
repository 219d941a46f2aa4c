"""Sweep plots (mAP vs bits) and search fronts (mAP vs size): drawn here for the CLI's files
and the GUI's Sweep tab alike.

The same exporters as the desktop tool, so a figure looks alike from both;
Qt runs on the offscreen platform when no display is available.  A provenance
caption (checkpoint hash, split, protocol) is drawn under the title and stored
as metadata: a PNG ``Description`` text chunk and an SVG ``<desc>`` element.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

# Okabe-Ito colour-blind-safe palette
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def _app():
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def provenance_caption(meta: dict) -> str:
    """'checkpoint 1a2b3c4d5e6f · val split of kitti · protocol official · squeezelens 0.1.0'."""
    sha = meta.get("checkpoint_sha256")
    parts = [f"checkpoint {sha[:12] if sha else 'in memory'}"]
    root = meta.get("kitti_root")
    parts.append(f"{meta.get('split')} split" + (f" of {Path(root).name}" if root else ""))
    parts.append(f"protocol {meta.get('protocol')}")
    if meta.get("calibration_sha256"):
        parts.append(f"calibration {meta['calibration_sha256'][:12]}")
    version = (meta.get("versions") or {}).get("squeezelens")
    if version:
        parts.append(f"squeezelens {version}")
    return " · ".join(parts)


def save_with_metadata(item, out_png: Path, out_svg: Path, title: str, caption: str) -> None:
    """Export PNG (1500 px wide) and SVG, the title and caption stored as metadata."""
    import pyqtgraph.exporters as pge

    exp = pge.ImageExporter(item)
    exp.parameters()["width"] = 1500
    image = exp.export(toBytes=True)
    image.setText("Title", title)
    if caption:
        image.setText("Description", caption)
    if not image.save(str(out_png)):
        raise OSError(f"cannot write {out_png}")
    svg = pge.SVGExporter(item).export(toBytes=True).decode("utf-8")
    out_svg.write_text(_svg_with_metadata(svg, title, caption), encoding="utf-8")


def _svg_with_metadata(svg: str, title: str, caption: str) -> str:
    """The document's <title> and <desc> (pyqtgraph writes generic ones) set to ours."""
    for tag, text in (("title", title), ("desc", caption)):
        if not text:
            continue
        element = f"<{tag}>{escape(text)}</{tag}>"
        svg, found = re.subn(rf"<{tag}>[^<]*</{tag}>", lambda _, e=element: e, svg, count=1)
        if not found:
            end = svg.find(">", svg.find("<svg")) + 1
            svg = svg[:end] + element + svg[end:]
    return svg


SYMBOLS = ("o", "s", "t", "d", "+", "x")
SWEEP_X_LABEL, SWEEP_Y_LABEL = "weight bits", "mAP (R11)"


def draw_sweep_curves(item, curves: dict) -> list[int]:
    """Draw mAP-vs-bits curves into a pyqtgraph PlotItem: one line with markers (and error bars
    where std > 0) per method in a fixed colour-blind-safe palette, the float baseline as a
    dashed line; returns the bit widths on the x axis.  The CLI's files and the GUI's Sweep
    tab both draw with this function (same palette, same labels).

    curves: label -> {bits: (mean, std, n)} (engine.sweep.summarize); 'float' has bits 32.
    """
    import pyqtgraph as pg

    all_bits = sorted({b for c in curves.values() for b in c if b != 32}) or [8]
    methods = sorted((k, v) for k, v in curves.items() if k != "float")
    for i, (label, points) in enumerate(methods):
        colour = PALETTE[i % len(PALETTE)]
        bits = sorted(b for b in points if b != 32)
        mean = [points[b][0] for b in bits]
        std = [points[b][1] for b in bits]
        pen = pg.mkPen(colour, width=2)
        item.plot(bits, mean, pen=pen, symbol=SYMBOLS[i % len(SYMBOLS)], symbolBrush=colour,
                  symbolPen=colour, symbolSize=7, name=label)  # fmt: skip
        if any(s > 0 for s in std):
            err = pg.ErrorBarItem(
                x=np.array(bits), y=np.array(mean), height=2 * np.array(std), beam=0.2, pen=pen
            )
            item.addItem(err)
    if "float" in curves:
        base = next(iter(curves["float"].values()))[0]
        dashed = pg.mkPen("#555555", width=2, style=pg.QtCore.Qt.PenStyle.DashLine)
        ends = [min(all_bits) - 0.5, max(all_bits) + 0.5]
        item.plot(ends, [base, base], pen=dashed, name=f"float {base:.4f}")
    return all_bits


def set_sweep_axes(item, bits: list[int]) -> None:
    """Axis labels, grid, 0..1 mAP range and one tick per bit width."""
    item.setLabel("bottom", SWEEP_X_LABEL)
    item.setLabel("left", SWEEP_Y_LABEL)
    item.showGrid(x=True, y=True, alpha=0.3)
    item.setYRange(0, 1.0, padding=0.02)
    item.setXRange(min(bits) - 0.5, max(bits) + 0.5, padding=0)
    item.getAxis("bottom").setTicks([[(b, str(b)) for b in bits]])


def render_sweep(
    curves: dict,
    out_png: Path,
    out_svg: Path,
    title: str,
    caption: str = "",
) -> None:
    """Draw mAP vs bits like the low-precision fork's figure and export PNG + SVG.

    curves: label -> {bits: (mean, std, n)}; label 'float' (bits 32) becomes a dashed line.
    caption: a small provenance line under the title (see :func:`provenance_caption`).
    """

    def draw(item) -> None:
        set_sweep_axes(item, draw_sweep_curves(item, curves))

    render_plot(draw, out_png, out_svg, title, caption)


def render_plot(draw, out_png: Path, out_svg: Path, title: str, caption: str = "") -> None:
    """A 1000x620 white plot with a title, a provenance caption and a legend, filled by
    ``draw(plot_item)``, exported as PNG + SVG (the title and caption stored as metadata)."""
    app = _app()
    import pyqtgraph as pg

    from squeezelens.cli.svg_compat import patch_svg_exporter

    patch_svg_exporter()

    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    plot = pg.PlotWidget()
    plot.resize(1000, 620)
    item = plot.getPlotItem()
    small = f"<br><span style='font-size:9pt; color:#555555'>{escape(caption)}</span>"
    item.setTitle(escape(title) + (small if caption else ""), size="13pt")
    item.addLegend(offset=(-10, -10), labelTextSize="11pt", brush=pg.mkBrush(255, 255, 255, 220))
    draw(item)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    plot.show()
    app.processEvents()
    save_with_metadata(item, out_png, out_svg, title, caption)
    plot.close()


FRONT_X_LABEL = "model size (KB)"


def draw_front(item, result) -> None:
    """Draw a mixed-precision search into a PlotItem: every verified point (grey), the front
    (a line with markers), the float model and the allowed drop (dashed lines) and the
    smallest point within the drop (a star).  result: an engine.search.SearchResult."""
    import pyqtgraph as pg

    others = [p for p in result.points if p not in result.front]
    if others:
        item.plot([p.size_kb for p in others], [p.map_r11 for p in others], pen=None,
                  symbol="o", symbolBrush="#BBBBBB", symbolPen="#999999", symbolSize=6,
                  name="verified")  # fmt: skip
    front = sorted(result.front, key=lambda p: p.size_kb)
    item.plot([p.size_kb for p in front], [p.map_r11 for p in front],
              pen=pg.mkPen(PALETTE[0], width=2), symbol="o", symbolBrush=PALETTE[0],
              symbolPen=PALETTE[0], symbolSize=7, name="front")  # fmt: skip
    sizes = [p.size_kb for p in result.points if p.size_kb > 0] + [result.float_kb]
    ends = [min(sizes) / 1.15, max(sizes) * 1.15]
    dashed = pg.mkPen("#555555", width=2, style=pg.QtCore.Qt.PenStyle.DashLine)
    item.plot(ends, [result.float_map] * 2, pen=dashed, name=f"float {result.float_map:.4f}")
    dotted = pg.mkPen(PALETTE[3], width=1.5, style=pg.QtCore.Qt.PenStyle.DotLine)
    limit = result.float_map - result.max_drop
    item.plot(ends, [limit] * 2, pen=dotted, name=f"float - {result.max_drop:g}")
    if result.best is not None:
        b = result.best
        item.plot([b.size_kb], [b.map_r11], pen=None, symbol="star", symbolSize=16,
                  symbolBrush=PALETTE[1], symbolPen="#000000",
                  name=f"smallest within: {b.size_kb:.0f} KB")  # fmt: skip
    item.setLogMode(x=True, y=False)  # sizes span 16x (2 bits) to 1x (float)
    item.setLabel("bottom", FRONT_X_LABEL)
    item.setLabel("left", SWEEP_Y_LABEL)
    item.getAxis("left").enableAutoSIPrefix(False)
    item.showGrid(x=True, y=True, alpha=0.3)
    item.setXRange(*np.log10(ends), padding=0)
    item.setYRange(0, 1.0, padding=0.02)


def render_front(result, out_png: Path, out_svg: Path, title: str, caption: str = "") -> None:
    """Draw a search's front (:func:`draw_front`) and export PNG + SVG with a caption."""
    render_plot(lambda item: draw_front(item, result), out_png, out_svg, title, caption)
