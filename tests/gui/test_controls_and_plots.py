"""Controls that explain themselves, the range-hijack hint, plots readable at any size
(issue 10, items 6, 7 and 8)."""

from __future__ import annotations

import numpy as np
import pytest
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
                  "file-path order"):  # fmt: skip
        assert words in tip
    assert "the split shown" not in tip  # val is open: the train split is other images


# ------------------------------------------------------------------ item 7
@pytest.fixture(scope="module")
def hijacked_detector(tmp_path_factory):
    """The tiny model's weights with a fire8/squeeze1x1 bias reaching +9 (the rest ~±0.2)."""
    from squeezelens.engine.checkpoint.loader import load_checkpoint
    from squeezelens.engine.checkpoint.writers import save_npz
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.model.spec import ArchSpec, expected_shapes
    from tests.gui.conftest import TINY_SIZE

    spec = ArchSpec().with_input_size(TINY_SIZE)
    rng = np.random.default_rng(1)
    weights = {k: (rng.standard_normal(s) * 0.05).astype(np.float32)
               for k, s in expected_shapes(spec).items()}  # fmt: skip
    weights["fire8/squeeze1x1/biases"][3] = 9.0
    path = save_npz(tmp_path_factory.mktemp("hijacked") / "hijacked.npz", weights, spec)
    assert load_checkpoint(path).weights["fire8/squeeze1x1/biases"][3] == 9.0
    return Detector.from_checkpoint(path)


def _hijack(win, qtbot, detector) -> None:
    """Open the hijacked model and quantize at 8 bits (one global range)."""
    win.controller.use_detector(detector)
    qtbot.waitUntil(lambda: win.state.result is not None, timeout=60000)
    win.quant_panel.bits.setValue(8)
    win.quant_panel.float_button.setChecked(False)
    wait_idle(qtbot, win)


def test_a_hijacked_range_shows_a_hint_and_is_highlighted_in_layers(
    loaded, qtbot, hijacked_detector
):
    from squeezelens.engine.quant.hijack import hijack_warnings
    from squeezelens.gui.panels import layers_panel as lp

    win = loaded
    assert not win.hint.isVisible()  # the tiny model's ranges are not hijacked
    tabs, canvas = win.tabs.height(), win.canvas.height()
    _hijack(win, qtbot, hijacked_detector)
    hint = win.hint
    # the hint takes its room from the canvas only: the bottom tabs' plots and table are not
    # laid out and painted again (which cost ~40 ms of UI thread as the first results came)
    assert hint.isVisible() and win.tabs.height() == tabs and win.canvas.height() < canvas
    (warning,) = hijack_warnings(hijacked_detector.float_weights, [win.state.quant])
    assert hint.isVisible() and warning.text() in hint.toolTip()  # the CLI's very line
    assert hint.text.endswith(warning.hijack.summary())
    assert "fire8/squeeze1x1/biases (reaching +9)" in hint.text
    assert "float biases" in hint.text and "--quantize-biases off" in hint.toolTip()
    hint.button.click()  # Show in Layers
    wait_idle(qtbot, win)
    assert win.tabs.currentWidget() is win.layers_panel
    qtbot.waitUntil(lambda: bool(win.state.layer_rows), timeout=30000)
    wait_idle(qtbot, win)
    table = win.layers_panel.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "fire8/squeeze1x1")
    assert table.item(row, lp.RANGE_COL).background().color() == lp.HIJACK_BRUSH
    assert "hijacks the global range" in table.item(row, lp.RANGE_COL).toolTip()
    assert table.selectionModel().isRowSelected(row)
    win.quant_panel.biases.setChecked(False)  # the remedy: the hint goes
    wait_idle(qtbot, win)
    assert not hint.isVisible() and win.state.hijacks == ()
    assert table.item(row, lp.RANGE_COL).background().style() == Qt.BrushStyle.NoBrush


def test_a_dismissed_hint_returns_only_for_other_findings(
    loaded, qtbot, hijacked_detector, monkeypatch
):
    win = loaded
    monkeypatch.setattr(win.controller, "convert_int8", lambda: None)  # no conversion needed
    _hijack(win, qtbot, hijacked_detector)
    win.hint.dismiss()
    win.analysis.request_hijacks()
    wait_idle(qtbot, win)
    assert not win.hint.isVisible()
    win.quant_panel.bits.setValue(6)  # another step: other findings
    wait_idle(qtbot, win)
    assert win.hint.isVisible() and "6-bit step" in win.hint.text and "6-bit" in win.hint.toolTip()
    win.quant_panel.int8.setChecked(True)  # the INT8 model has its own scales: no hint
    wait_idle(qtbot, win)
    assert not win.hint.isVisible() and win.state.hijacks == ()


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
        assert plot.getPlotItem().width() <= plot.width()  # the title never widens the plot


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
