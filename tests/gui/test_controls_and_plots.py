"""Controls that explain themselves, the range-hijack hint, plots readable at any size
(issue 10, items 6, 7 and 8)."""

from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics

from tests.gui.conftest import wait_idle


# ------------------------------------------------------------------ item 6
def test_int8_disables_the_weight_controls_it_ignores_and_says_why(loaded, qtbot, monkeypatch):
    win, panel = loaded, loaded.quant_panel
    monkeypatch.setattr(win.controller, "convert_int8", lambda: None)  # no conversion needed
    tips = {w: w.toolTip() for w in panel.weight_controls()}
    assert all(w.isEnabled() for w in panel.weight_controls() if w is not panel.seed)
    panel.int8.setChecked(True)
    wait_idle(qtbot, win)
    assert win.state.int8
    for widget in panel.weight_controls():
        assert not widget.isEnabled()
        assert widget.toolTip().startswith("Disabled while TFLite INT8 is on")
    panel.int8.setChecked(False)
    wait_idle(qtbot, win)
    assert all(w.isEnabled() for w in panel.weight_controls() if w is not panel.seed)
    assert {w: w.toolTip() for w in panel.weight_controls()} == tips
    panel.compare.setCurrentIndex(1)  # A vs B: the INT8 switch does nothing there
    wait_idle(qtbot, win)
    assert not panel.int8.isEnabled() and "Float vs quantized" in panel.int8.toolTip()


def test_activation_bits_tooltip_explains_the_format_and_the_calibration_images(loaded):
    tip = loaded.quant_panel.act_bits.toolTip()
    root = str(loaded.state.dataset.root)
    for words in ("signed dynamic fixed point", "Ristretto", "first 32", f"train split of {root}",
                  "never the evaluated split"):  # fmt: skip
        assert words in tip


# ------------------------------------------------------------------ item 7
def _hijack(win, qtbot, tiny_detector, peak: float = 9.0) -> None:
    """Quantize at 8 bits, then give the loaded model's ranges a fire8/squeeze1x1 bias
    reaching ``peak``."""
    from squeezelens.engine.quant.hijack import tensor_ranges

    win.quant_panel.bits.setValue(8)
    win.quant_panel.float_button.setChecked(False)
    wait_idle(qtbot, win)

    weights = dict(tiny_detector.float_weights)
    biases = weights["fire8/squeeze1x1/biases"].copy()
    biases[3] = peak
    weights["fire8/squeeze1x1/biases"] = biases
    info = dataclasses.replace(win.state.model, tensor_ranges=tensor_ranges(weights))
    win.state.model = info
    win.analysis.update_hijacks()


def test_a_hijacked_range_shows_a_hint_and_is_highlighted_in_layers(loaded, qtbot, tiny_detector):
    from squeezelens.gui.panels import layers_panel as lp

    win = loaded
    _hijack(win, qtbot, tiny_detector)
    hint = win.hint
    assert hint.isVisible() and "fire8/squeeze1x1/biases reaches +9.00" in hint.text
    assert "float biases (--quantize-biases off)" in hint.text
    hint.button.click()  # Show in Layers
    wait_idle(qtbot, win)
    assert win.tabs.currentWidget() is win.layers_panel
    qtbot.waitUntil(lambda: bool(win.state.layer_rows), timeout=30000)
    table = win.layers_panel.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "fire8/squeeze1x1")
    assert table.item(row, lp.RANGE_COL).background().color() == lp.HIJACK_BRUSH
    assert "reaches +9.00" in table.item(row, lp.RANGE_COL).toolTip()
    assert table.selectionModel().isRowSelected(row)
    win.quant_panel.biases.setChecked(False)  # the remedy: the hint goes
    wait_idle(qtbot, win)
    assert not hint.isVisible() and win.state.hijacks == ()
    assert table.item(row, lp.RANGE_COL).background().style() == Qt.BrushStyle.NoBrush


def test_a_dismissed_hint_returns_only_for_other_findings(loaded, qtbot, tiny_detector):
    win = loaded
    _hijack(win, qtbot, tiny_detector)
    win.hint.dismiss()
    win.analysis.update_hijacks()
    assert not win.hint.isVisible()
    win.quant_panel.bits.setValue(6)  # another step: other findings
    wait_idle(qtbot, win)
    assert win.hint.isVisible() and "6-bit step" in win.hint.text


# ------------------------------------------------------------------ item 8
def test_per_channel_histograms_are_not_clipped(loaded, qtbot):
    from squeezelens.gui.panels.histograms import title_font

    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)
    win.quant_panel.scale.setCurrentText("channel")
    win.quant_panel.bits.setValue(4)
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.state.histogram_channel is not None, timeout=30000)
    wait_idle(qtbot, win)
    hist = win.state.histogram
    metrics = QFontMetrics(title_font())
    for plot in (win.layers_panel.hist, win.layers_panel.qhist):
        (x0, x1), _ = plot.getPlotItem().getViewBox().viewRange()
        assert x0 <= hist.edges[0] and x1 >= hist.edges[-1]
        if len(hist.levels):
            assert x0 <= hist.levels.min() and x1 >= hist.levels.max()
        title = plot.getPlotItem().titleLabel.text
        assert metrics.horizontalAdvance(title) <= plot.width()


def test_activation_labels_never_overlap_and_every_bar_is_named(qtbot):
    from squeezelens.engine.diagnostics import ActivationRow
    from squeezelens.engine.model.spec import layer_names
    from squeezelens.gui.app import configure_pyqtgraph
    from squeezelens.gui.panels.activation_chart import LABEL_GAP, ActivationChart

    configure_pyqtgraph()
    chart = ActivationChart()
    qtbot.addWidget(chart)
    rows = [
        ActivationRow(n, (1,), 20.0 + i, 0.99, 0.1) for i, n in enumerate(layer_names("squeezedet"))
    ]
    shown = {}
    for width in (280, 1100):
        chart.resize(width, 260)
        chart.show()
        chart.set_rows(rows)
        qtbot.wait(50)
        chart.set_rows(rows)
        metrics = QFontMetrics(chart.getAxis("bottom").font())
        per_bar, ticks = chart.pixels_per_bar(), chart.shown_ticks
        for (i, a), (j, b) in zip(ticks, ticks[1:]):
            room = (j - i) * per_bar
            need = (metrics.horizontalAdvance(a) + metrics.horizontalAdvance(b)) / 2 + LABEL_GAP
            assert room >= need, (width, a, b)
        shown[width] = len(ticks)
    assert shown[280] < shown[1100]  # thinned when narrow
    assert chart.bar_tooltip(len(rows) - 1).startswith("conv12: ")
    assert all(r.name in chart.bar_tooltip(k) for k, r in enumerate(rows))
    assert np.isfinite(chart.pixels_per_bar())
