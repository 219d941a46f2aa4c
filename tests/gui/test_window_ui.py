"""Window behaviour: drops, split choice, box styles, histogram levels per channel,
per-layer bits, sensitivity recommendation, toolbar and Export…, busy indicators,
sessions."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl

from squeezelens.gui.panels.layers_panel import BITS_COL, SENS_COL
from tests.gui.conftest import wait_idle, write_kitti

pytestmark = pytest.mark.gui


def _drop(win, *paths) -> None:
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    win.dropEvent(event)


def _layers_ready(win, qtbot) -> None:
    win.tabs.setCurrentWidget(win.layers_panel)
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: bool(win.state.layer_rows), timeout=30000)


# ------------------------------------------------------------------ drops
def test_dropping_a_bad_checkpoint_file_shows_the_checkpoint_error(loaded, qtbot, tmp_path):
    win = loaded
    model, dataset = win.state.model, win.state.dataset
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"\x00garbage, not a checkpoint")
    with qtbot.waitSignal(win.state.error, timeout=30000) as blocker:
        _drop(win, bad)
    assert "weights.bin" in blocker.args[0] and "checkpoint" in blocker.args[0]
    assert "dataset" not in blocker.args[0]
    assert win.state.model is model and win.state.dataset is dataset


def test_dropping_a_folder_opens_it_as_a_dataset(loaded, qtbot, tmp_path):
    win = loaded
    calls = []
    win.controller.open_checkpoint = lambda p: calls.append(("ckpt", str(p)))
    win.controller.open_dataset = lambda p, split="val", **_kw: calls.append(
        ("data", str(p), split)
    )
    _drop(win, tmp_path)
    assert calls == [("data", str(tmp_path), win.split)]


# ------------------------------------------------------------------ split
def test_split_combo_lists_the_imagesets_and_reloads(window, qtbot, tmp_path):
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import Settings

    root = write_kitti(tmp_path / "kitti", n=4)
    (root / "ImageSets" / "train.txt").write_text("000000\n000002\n")
    (root / "ImageSets" / "trainval.txt").unlink()
    window.controller.open_dataset(root, "val")
    qtbot.waitUntil(lambda: window.state.dataset is not None, timeout=10000)
    combo = window.image_list.split
    assert [combo.itemText(i) for i in range(combo.count())] == ["train", "val", "all"]
    assert combo.currentText() == "val" and combo.isEnabled()
    combo.setCurrentIndex(0)
    combo.activated.emit(0)
    qtbot.waitUntil(lambda: window.state.dataset.split == "train", timeout=10000)
    assert len(window.state.dataset) == 2 and window.image_list.model.rowCount() == 2
    assert combo.currentText() == "train" and window.split == "train"
    window.close()
    again = MainWindow(settings=Settings.at(window.settings.q.fileName()))
    qtbot.addWidget(again)
    assert again.split == "train"  # KITTI folders open with the last split chosen


# ------------------------------------------------------------------ boxes
def test_gt_float_and_quantized_differ_in_colour_and_line_style(loaded):
    from squeezelens.gui.canvas.boxes import BoxItem
    from squeezelens.gui.palette import styles

    st = styles()
    assert len({s.color for s in st.values()}) == 3
    assert len({s.style for s in st.values()}) == 3
    assert st["gt"].backing is not None  # white dashes on black: visible on any image
    items = [i for i in loaded.canvas.panes["main"].items if isinstance(i, BoxItem)]
    pens = {i.spec.source: (i.pen().color().name(), i.pen().style()) for i in items}
    assert {"gt", "ref", "other"} <= set(pens)
    assert len(set(pens.values())) == 3
    for key, check in loaded.canvas.layer_checks.items():  # the legend draws the same styles
        assert check.text() == styles(loaded.state.ref_label, loaded.state.other_label)[key].label
        assert not check.icon().isNull()


# -------------------------------------------------------------- histogram
def test_levels_over_translucent_bars_and_one_channel_per_channel(loaded, qtbot, tiny_detector):
    import pyqtgraph as pg

    from squeezelens.engine.quant import plan_quantization

    win = loaded
    _layers_ready(win, qtbot)
    win.quant_panel.scale.setCurrentText("channel")
    win.quant_panel.bits.setValue(3)
    wait_idle(qtbot, win)
    layer = "fire3/expand1x1"
    table = win.layers_panel.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == layer)
    table.selectRow(row)
    qtbot.waitUntil(lambda: win.state.histogram_channel is not None, timeout=30000)
    wait_idle(qtbot, win)
    kernel = tiny_detector.float_weights[f"{layer}/kernels"]
    widest = int(np.ptp(kernel.reshape(-1, kernel.shape[-1]), axis=0).argmax())
    c, n, w = win.state.histogram_channel
    assert (c, n, w) == (widest, kernel.shape[-1], widest)
    grid = plan_quantization(tiny_detector.float_weights, win.state.quant)[f"{layer}/kernels"].grid
    assert np.allclose(np.sort(win.state.histogram.levels), np.sort(grid.levels[c]))
    spin, plot = win.layers_panel.channel_spin, win.layers_panel.hist
    assert spin.isVisible() and spin.value() == c
    info = win.layers_panel.histograms.channel_info
    assert info.isVisible() and info.text() == f"of {n} (widest range)"
    assert f"ch {c} ·" in plot.getPlotItem().titleLabel.text
    items = {i.name(): i for i in plot.listDataItems()}
    assert items["levels"].zValue() > items["float"].zValue()  # levels over the bars
    fill = pg.mkBrush(items["float"].opts["fillBrush"])
    assert fill.color().alpha() < 255  # and the bars translucent
    other = (c + 1) % n
    with qtbot.waitSignal(win.state.histogram_changed, timeout=30000):
        spin.setValue(other)
    wait_idle(qtbot, win)
    assert win.state.histogram_channel[0] == other
    assert np.allclose(np.sort(win.state.histogram.levels), np.sort(grid.levels[other]))
    assert f"ch {other} ·" in plot.getPlotItem().titleLabel.text
    assert info.text() == f"of {n}"
    win.quant_panel.scale.setCurrentText("layer")
    wait_idle(qtbot, win)
    assert win.state.histogram_channel is None and not spin.isVisible()


# ----------------------------------------------------------- layer table
def test_sensitivity_recommendation_is_cleared_when_the_config_changes(loaded, qtbot):
    from squeezelens.engine.sensitivity import SensitivityResult, apply_recommendation

    win = loaded
    analysis, button = win.analysis.sensitivity, win.layers_panel.apply_button
    assert analysis.recommendation is None and not button.isEnabled()
    _layers_ready(win, qtbot)
    win.quant_panel.bits.setValue(4)
    wait_idle(qtbot, win)
    stale = win.state.other_config
    layer = "fire2/squeeze1x1"
    drops = {(layer, 3): 0.001, (layer, 4): 0.0, ("conv12", 3): 0.2, ("conv12", 4): 0.03}
    result = SensitivityResult(0.5, drops, (3, 4), (layer, "conv12"), stale)
    done = (result, apply_recommendation(stale, result), win.controller.handle, stale, None)
    analysis.ready(done)
    assert dict(analysis.recommendation.overrides) == {layer: 3, "conv12": "float"}
    assert button.isEnabled()
    assert win.state.sensitivity == {layer: 0.0, "conv12": 0.03}  # the drops at 4 bits
    row = next(r for r in range(win.layers_panel.table.rowCount())
               if win.layers_panel.table.item(r, 0).text() == "conv12")  # fmt: skip
    cell = win.layers_panel.table.item(row, SENS_COL)
    assert cell.text() == "+0.0300" and "3 bits +0.2000 · 4 bits +0.0300" in cell.toolTip()
    win.quant_panel.bits.setValue(5)  # another bit width: the recommendation is stale
    wait_idle(qtbot, win)
    assert analysis.recommendation is None and not button.isEnabled()
    errors = []
    win.state.error.connect(errors.append)
    analysis.apply_recommendation()
    assert errors and not win.state.quant.overrides
    analysis.ready(done)
    assert analysis.recommendation is None and not button.isEnabled()  # computed for 4 bits
    win.quant_panel.bits.setValue(4)
    wait_idle(qtbot, win)
    analysis.ready(done)
    analysis.apply_recommendation()
    wait_idle(qtbot, win)
    assert dict(win.state.quant.overrides) == {layer: 3, "conv12": "float"}


def test_layer_bits_edit_in_float_mode_says_so_and_restores_the_cell(loaded, qtbot):
    from squeezelens.engine.quant import QuantConfig

    win = loaded
    win.quant_panel.reset_to_float()
    _layers_ready(win, qtbot)
    assert win.state.quant is None
    table = win.layers_panel.table
    messages = []
    win.state.message.connect(messages.append)
    table.item(2, BITS_COL).setText("4")
    assert messages and "float model" in messages[-1]
    assert table.item(2, BITS_COL).text() == "default" and win.state.quant is None
    win.state.set_quant(None, QuantConfig(bits=4), mode="ab")  # A float, B at 4 bits
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.analysis.report is not None, timeout=30000)
    layer = table.item(2, 0).text()
    with qtbot.waitSignal(win.state.quant_changed, timeout=5000):
        table.item(2, BITS_COL).setText("float")
    assert win.state.quant is None and dict(win.state.quant_b.overrides) == {layer: "float"}


# ----------------------------------------------------- toolbar and export
def test_toolbar_export_button_and_ctrl_e_chooser(window, qtbot):
    from PySide6.QtGui import QKeySequence

    a = window.ui_actions
    bar = window.toolbar
    for act in (a.open_checkpoint, a.open_kitti, a.open_images):
        assert act in bar.actions()
    button = window.exports.button
    assert button is not None and button.isVisible() and button.menu() is window.exports.menu
    entries = [act.text() for act in window.exports.menu.actions()]
    assert len(entries) == 7 and any("Canvas" in t for t in entries)
    assert any("Detection errors" in t for t in entries)
    assert any("Quantized parameters" in t for t in entries) and any("PR" in t for t in entries)
    assert a.export_any.shortcut() == QKeySequence("Ctrl+E")
    assert a.export_canvas.shortcut().isEmpty()
    a.export_any.trigger()
    qtbot.waitUntil(window.exports.menu.isVisible, timeout=2000)
    window.exports.menu.hide()
    file_menu = window.menuBar().actions()[0].menu()
    texts = [act.text() for act in file_menu.actions()]
    assert "Open &recent" in texts and "&Quit" in texts and "&Export" in texts


def test_pr_export_through_the_button(loaded, qtbot, tmp_path, monkeypatch):
    import squeezelens.gui.export_dialogs as dialogs

    win = loaded
    win.quant_panel.bits.setValue(3)
    wait_idle(qtbot, win)
    with qtbot.waitSignal(win.state.eval_changed, timeout=60000):
        win.metrics_panel.evaluate_button.click()
    wait_idle(qtbot, win)
    win.metrics_panel.class_combo.setCurrentText("pedestrian")  # the self-labelled class
    asked = []

    class FakeDialog:
        @staticmethod
        def getSaveFileName(parent, title, start, filt):  # noqa: N802
            asked.append(title)
            return str(tmp_path / "pr.png"), ""

    monkeypatch.setattr(dialogs, "QFileDialog", FakeDialog)
    messages = []
    win.state.message.connect(messages.append)
    win.findChild(type(win.metrics_panel.export_pr), "exportPrButton").click()
    assert asked and "PR" in asked[0]
    for suffix in (".png", ".svg", ".csv"):
        assert (tmp_path / f"pr{suffix}").stat().st_size > 100
    assert messages and messages[-1].startswith("Wrote ")


# ------------------------------------------------------- busy indicators
def test_quant_busy_shows_for_this_image_not_for_the_scan(loaded, qtbot):
    win = loaded
    release = threading.Event()

    def fake_scan(ctx):
        while not release.is_set():
            ctx.checkpoint()  # live requests run here
            time.sleep(0.005)

    win.controller.model_runner.submit("scan", fake_scan, "fake-scan")
    qtbot.waitUntil(win.image_list.scan_busy.isVisible, timeout=5000)
    assert not win.quant_panel.busy.isVisible()  # the scan alone: no busy quant panel
    win.controller.request_detection()
    assert win.quant_panel.busy.isVisible()  # this image's boxes are being computed
    qtbot.waitUntil(lambda: not win.quant_panel.busy.isVisible(), timeout=10000)
    assert win.image_list.scan_busy.isVisible()  # ...while the scan still runs
    release.set()
    qtbot.waitUntil(lambda: not win.image_list.scan_busy.isVisible(), timeout=5000)


# --------------------------------------------------------------- sessions
def test_session_with_a_broken_checkpoint_is_dropped(loaded, qtbot, tmp_path, tiny_detector):
    from squeezelens.engine.quant import QuantConfig

    win = loaded
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a checkpoint")
    path = tmp_path / "s.json"
    data = {"squeezelens_session": 1, "checkpoint": str(bad), "mode": "float",
            "quant": {"bits": 3}, "quant_b": None}  # fmt: skip
    path.write_text(json.dumps(data))
    with qtbot.waitSignal(win.state.error, timeout=30000):
        win.sessions.open(str(path))
    wait_idle(qtbot, win)
    assert win.sessions.pending is None
    with qtbot.waitSignal(win.state.model_changed, timeout=30000):
        win.controller.use_detector(tiny_detector)  # a later load does not apply it
    wait_idle(qtbot, win)
    assert win.state.quant == QuantConfig()  # the start-up config, not the session's 3 bits


def test_session_restores_the_tab_and_the_metrics_choice(loaded, qtbot, tmp_path):
    win = loaded
    m = win.metrics_panel
    win.tabs.setCurrentWidget(win.sweep_panel)
    m.class_combo.setCurrentText("pedestrian")
    m.diff_combo.setCurrentText("hard")
    path = tmp_path / "view.json"
    win.sessions.save(str(path))
    saved = json.loads(path.read_text())
    assert (saved["tab"], saved["metrics_class"], saved["metrics_difficulty"]) == (
        "sweep", "pedestrian", "hard")  # fmt: skip
    win.tabs.setCurrentWidget(win.layers_panel)
    m.class_combo.setCurrentText("car")
    m.diff_combo.setCurrentText("easy")
    win.sessions.open(str(path))
    assert win.tabs.currentWidget() is win.sweep_panel
    assert (m.class_combo.currentText(), m.diff_combo.currentText()) == ("pedestrian", "hard")


def test_a_replaced_model_is_freed(window, qtbot, tiny_checkpoint, tiny_kitti):
    """Loaded models are frozen out of the collector; the one a new load replaces must
    still be freed (not frozen again with its reference cycles)."""
    import weakref

    window.controller.open_dataset(tiny_kitti, "val")
    window.controller.open_checkpoint(tiny_checkpoint)
    qtbot.waitUntil(lambda: window.controller.handle is not None, timeout=60000)
    wait_idle(qtbot, window)
    first = weakref.ref(window.controller.handle.detector)
    window.controller.open_checkpoint(tiny_checkpoint)
    qtbot.waitUntil(lambda: window.controller.handle.detector is not first(), timeout=60000)
    wait_idle(qtbot, window)
    assert first() is None


def test_a_sweep_run_behind_another_tab_is_drawn_when_its_tab_shows(loaded, qtbot):
    """While hidden the sweep plot is not redrawn point by point (UI time during a
    sweep); it shows every point once its tab is opened."""
    from squeezelens.engine.quant import QuantConfig

    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)
    win.analysis.sweep([QuantConfig(bits=b) for b in (3, 4)])
    qtbot.waitUntil(
        lambda: not win.state.sweep.running and bool(win.state.sweep.points), timeout=120000
    )
    assert "3 points" in win.sweep_panel.status.text()  # the status line stays current
    win.tabs.setCurrentWidget(win.sweep_panel)
    items = win.sweep_panel.plot.listDataItems()
    curves = [c for c in items if not c.name().startswith("float")]  # not the float line
    assert len(curves) == 1 and len(curves[0].getData()[0]) == 2
