"""Exports: PR curves, detection errors, AP table, sweep (PNG, SVG, CSV, JSON), canvas and window PNG.

Every file of numbers says where they come from (:func:`gui.provenance.provenance`):
the checkpoint (path and sha256), each curve's config, the split and image count,
the protocol, the float baseline and the software version.  CSV files repeat these
as columns on every row; JSON files hold them under ``provenance``; PNG and SVG
plots draw them as a caption under the title and store them as metadata (a PNG
``Description`` text chunk, an SVG ``<desc>``), as the CLI's sweep plots do.  The PR
CSV has one row per curve point: ``model, config, class, difficulty, point,
threshold, recall, precision``; the errors CSV one row per type: ``model, config,
class, difficulty, type, count, dap_r11, dap_r40``.  :func:`export_plot` (any plot by suffix) stays for
plain exports.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pyqtgraph as pg
import pyqtgraph.exporters as pge
from PySide6.QtWidgets import QWidget

from squeezelens.engine.atomic import atomic_path, write_json_atomic
from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.labels import SEP
from squeezelens.gui.eval_jobs import error_pair
from squeezelens.gui.provenance import ResultTag, caption_line, provenance, provenance_columns

PR_COLUMNS = ("model", "config", "class", "difficulty", "point", "threshold", "recall", "precision")
DIFFS = ("easy", "moderate", "hard")

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


def _evaluated(evaluation: Any) -> ResultTag:
    """The evaluation's tag; InputError when there is nothing to export."""
    if evaluation is None or evaluation.ref is None or evaluation.other is None:
        raise InputError("nothing to export: run Evaluate first")
    if evaluation.tag is None:
        raise InputError("nothing to export: these results do not say what they were computed with")
    return evaluation.tag


def float_map(evaluation: Any) -> float | None:
    """The float model's mAP (R11, all) when the evaluation has it."""
    result = getattr(evaluation, "float_result", None)
    return None if result is None else float(result.map["r11"]["all"])


def _models(evaluation: Any, tag: ResultTag) -> tuple:
    return ((evaluation.ref_label, tag.ref_config, evaluation.ref),
            (evaluation.other_label, tag.other_config, evaluation.other))  # fmt: skip


def write_csv(path: Path, rows: list[dict]) -> Path:
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def ap_table_rows(evaluation: Any) -> list[dict]:
    """Flat rows (model, config, class, difficulty, AP R11, AP R40, objects, provenance)."""
    tag = _evaluated(evaluation)
    extra = provenance_columns(tag, float_map(evaluation))
    rows = []
    for label, config, result in _models(evaluation, tag):
        data = result.to_json_dict()
        for cls, per in data["ap"].items():
            for diff, v in per.items():
                rows.append({"model": label, "config": config, "class": cls, "difficulty": diff,
                             "ap_r11": v["r11"], "ap_r40": v["r40"], "n_gt": v["n_gt"],
                             "capped": v["capped"], **extra})  # fmt: skip
        for diff in ("all", "easy", "moderate", "hard"):
            rows.append({"model": label, "config": config, "class": "mAP", "difficulty": diff,
                         "ap_r11": data["map"]["r11"][diff], "ap_r40": data["map"]["r40"][diff],
                         "n_gt": "", "capped": "", **extra})  # fmt: skip
    return rows


def export_ap_table(evaluation: Any, base: str | Path) -> list[Path]:
    """Write ``base``.csv and ``base``.json with both models' APs and their provenance."""
    tag = _evaluated(evaluation)
    base = Path(base).with_suffix("")
    csv_path = write_csv(base.with_suffix(".csv"), ap_table_rows(evaluation))
    data = {
        "provenance": provenance(tag, float_map(evaluation)),
        evaluation.ref_label: evaluation.ref.to_json_dict(),
        evaluation.other_label: evaluation.other.to_json_dict(),
        "protocol": evaluation.ref.protocol,
    }
    return [csv_path, write_json_atomic(base.with_suffix(".json"), data)]


def pr_rows(evaluation: Any) -> list[dict]:
    """One row per point of every PR curve of both models (:data:`PR_COLUMNS`, then the
    provenance columns)."""
    tag = _evaluated(evaluation)
    extra = provenance_columns(tag, float_map(evaluation))
    rows = []
    for label, config, result in _models(evaluation, tag):
        for cls in result.classes:
            for diff in DIFFS:
                curve = result.ap[cls][diff]
                for k in range(curve.n_points):
                    values = (label, config, cls, diff, k, f"{curve.thresholds[k]:.6g}",
                              f"{curve.recall[k]:.6f}", f"{curve.precision[k]:.6f}")  # fmt: skip
                    rows.append({**dict(zip(PR_COLUMNS, values)), **extra})
    return rows


def caption_lines(caption: str, width_px: int, char_px: int = 6) -> list[str]:
    """``caption`` broken at its " · " separators into lines that fit ``width_px`` (8 pt)."""
    room, lines = max(40, width_px // char_px), [""]
    for part in caption.split(SEP):
        joined = f"{lines[-1]}{SEP}{part}" if lines[-1] else part
        if len(joined) <= room or not lines[-1]:
            lines[-1] = joined
        else:
            lines.append(part)
    return lines


def save_plot_images(plot: pg.PlotWidget, base: Path, title: str, caption: str,
                     min_size: tuple[int, int] = (0, 0)) -> list[Path]:  # fmt: skip
    """``base``.png and ``base``.svg of a plot with ``caption`` drawn under ``title`` (broken
    into lines that fit) and stored as metadata (the CLI's sweep plots do the same).
    ``min_size``: the plot is drawn at least that large (a short strip reads badly)."""
    from squeezelens.cli.plots import save_with_metadata
    from squeezelens.cli.svg_compat import patch_svg_exporter  # pyqtgraph #3495 on Qt >= 6.10

    patch_svg_exporter()
    item, size = plot.getPlotItem(), plot.size()
    plot.resize(max(size.width(), min_size[0]), max(size.height(), min_size[1]))
    shown = item.titleLabel.text
    lines = "<br>".join(escape(line) for line in caption_lines(caption, plot.width()))
    item.setTitle(escape(title) + f"<br><span style='font-size:8pt; color:#555555'>{lines}</span>")
    png, svg = base.with_suffix(".png"), base.with_suffix(".svg")
    try:
        with atomic_path(png, ".png") as tmp_png, atomic_path(svg, ".svg") as tmp_svg:
            save_with_metadata(item, tmp_png, tmp_svg, title, caption)
    finally:
        item.setTitle(shown)
        plot.resize(size)
    return [png, svg]


def export_pr(evaluation: Any, plot: pg.PlotWidget, base: str | Path) -> list[Path]:
    """The PR plot (PNG, SVG, with the provenance caption) and every curve point (CSV)."""
    tag = _evaluated(evaluation)
    base = Path(base).with_suffix("")
    caption = f"{tag.caption()} · {caption_line(tag, float_map(evaluation))}"
    title = plot.getPlotItem().titleLabel.text or "Precision / recall"
    images = save_plot_images(plot, base, title, caption)
    return [*images, write_csv(base.with_suffix(".csv"), pr_rows(evaluation))]


def sweep_float_map(rows: list[dict]) -> float | None:
    return next((float(r["map_r11"]) for r in rows if r.get("bits") == "float"), None)


def export_sweep(sweep: Any, plot: pg.PlotWidget, base: str | Path) -> list[Path]:
    """The sweep plot (PNG, SVG) and its rows (CSV: the engine's sweep.csv columns, then the
    provenance columns; JSON: provenance and rows)."""
    if not sweep.points or sweep.tag is None:
        raise InputError("nothing to export: run a sweep first")
    tag, rows, base = sweep.tag, list(sweep.points), Path(base).with_suffix("")
    baseline = sweep_float_map(rows)
    caption = f"{tag.caption()} · {caption_line(tag, baseline)}"
    images = save_plot_images(plot, base, "mAP vs weight bits", caption)
    extra = provenance_columns(tag, baseline)
    csv_path = write_csv(base.with_suffix(".csv"), [{**row, **extra} for row in rows])
    data = {"provenance": provenance(tag, baseline), "rows": rows}
    return [*images, csv_path, write_json_atomic(base.with_suffix(".json"), data)]


ERROR_PLOT_SIZE = (900, 420)  # the chart is a short strip on a 768-pixel screen
ERROR_COLUMNS = ("model", "config", "class", "difficulty", "type", "count", "dap_r11", "dap_r40")


def error_rows(evaluation: Any) -> list[dict]:
    """One row per model x class x difficulty x error type (:data:`ERROR_COLUMNS`: the
    engine's errors.csv with each model's config, then the provenance columns)."""
    tag = _evaluated(evaluation)
    if evaluation.errors is None:
        raise InputError("nothing to export: these results have no detection errors")
    extra = provenance_columns(tag, float_map(evaluation))
    rows = []
    for (label, config, _), analysis in zip(_models(evaluation, tag), error_pair(evaluation)):
        for values in analysis.csv_rows(label):
            rows.append({**dict(zip(ERROR_COLUMNS, [values[0], config, *values[1:]])), **extra})
    return rows


def export_errors(evaluation: Any, plot: pg.PlotWidget, base: str | Path) -> list[Path]:
    """The error chart (PNG, SVG, with the provenance caption) and every class x difficulty x
    type of both models (CSV)."""
    tag, rows = _evaluated(evaluation), error_rows(evaluation)
    base = Path(base).with_suffix("")
    caption = f"{tag.caption()} · {caption_line(tag, float_map(evaluation))}"
    title = plot.getPlotItem().titleLabel.text or "Detection errors"
    images = save_plot_images(plot, base, title, caption, min_size=ERROR_PLOT_SIZE)
    return [*images, write_csv(base.with_suffix(".csv"), rows)]
