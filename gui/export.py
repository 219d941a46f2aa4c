"""Exports: plots (PNG, SVG, CSV through pyqtgraph's exporters), canvas PNG, AP table.

Plot exports pick the exporter from the file suffix.  The AP table is written
from the engine's ``EvalResult.to_json_dict`` (JSON) and flattened to CSV.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pyqtgraph.exporters as pge
from PySide6.QtWidgets import QWidget

from squeezelens.engine.atomic import atomic_path, write_json_atomic
from squeezelens.engine.errors import InputError

PLOT_SUFFIXES = (".png", ".svg", ".csv")
PLOT_FILTER = "PNG image (*.png);;SVG drawing (*.svg);;CSV data (*.csv)"
PNG_WIDTH = 1600


def export_plot(plot: pg.PlotWidget | pg.PlotItem, path: str | Path) -> Path:
    """Write a plot as PNG, SVG or CSV, chosen by ``path``'s suffix."""
    path = Path(path)
    item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
    suffix = path.suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise InputError(f"unsupported plot format {suffix!r} (use .png, .svg or .csv)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        exporter = pge.ImageExporter(item)
        exporter.parameters()["width"] = PNG_WIDTH
    elif suffix == ".svg":
        from squeezelens.cli.svg_compat import patch_svg_exporter  # pyqtgraph #3495 on Qt >= 6.10

        patch_svg_exporter()
        exporter = pge.SVGExporter(item)
    else:
        exporter = pge.CSVExporter(item)
    exporter.export(str(path))
    if not path.exists():
        raise InputError("the exporter wrote nothing (is the plot empty?)", path)
    return path


def export_plot_all(plot: pg.PlotWidget, base: str | Path) -> list[Path]:
    """PNG, SVG and CSV of one plot next to each other (``base`` without suffix)."""
    base = Path(base)
    return [export_plot(plot, base.with_suffix(s)) for s in PLOT_SUFFIXES]


def export_widget_png(widget: QWidget, path: str | Path) -> Path:
    """A screenshot of a widget (the canvas, the whole window) as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path), "PNG"):
        raise InputError("could not write the PNG (folder writable?)", path)
    return path


def ap_table_rows(evaluation: Any) -> list[dict]:
    """Flat rows (model, class, difficulty, AP R11, AP R40, objects) of both results."""
    rows = []
    for label, result in (
        (evaluation.ref_label, evaluation.ref),
        (evaluation.other_label, evaluation.other),
    ):
        data = result.to_json_dict()
        for cls, per in data["ap"].items():
            for diff, v in per.items():
                rows.append({"model": label, "class": cls, "difficulty": diff, "ap_r11": v["r11"],
                             "ap_r40": v["r40"], "n_gt": v["n_gt"], "capped": v["capped"]})  # fmt: skip
        for diff in ("all", "easy", "moderate", "hard"):
            rows.append({"model": label, "class": "mAP", "difficulty": diff,
                         "ap_r11": data["map"]["r11"][diff], "ap_r40": data["map"]["r40"][diff],
                         "n_gt": "", "capped": ""})  # fmt: skip
    return rows


def export_ap_table(evaluation: Any, base: str | Path) -> list[Path]:
    """Write ``base``.csv and ``base``.json with both models' APs."""
    if evaluation is None or evaluation.ref is None or evaluation.other is None:
        raise InputError("nothing to export: run Evaluate first")
    base = Path(base).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    rows = ap_table_rows(evaluation)
    csv_path, json_path = base.with_suffix(".csv"), base.with_suffix(".json")
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    data = {
        evaluation.ref_label: evaluation.ref.to_json_dict(),
        evaluation.other_label: evaluation.other.to_json_dict(),
        "protocol": evaluation.ref.protocol,
    }
    write_json_atomic(json_path, data)
    return [csv_path, json_path]
