"""The main window on the tiny model: live quantization, histogram, exports, errors."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from squeezelens.gui.panels.layers_panel import BITS_COL, SENS_COL
from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.gui

OBJECT_NAMES = (
    "bitsSlider roundingCombo reserveZeroCheck scaleCombo gridCombo activationBitsSpin int8Check "
    "thresholdSlider viewModeCombo imageList canvas layerTable histogramPlot prPlot apTable "
    "sweepPlot evaluateButton sweepButton cancelButton exportPrButton"
).split()


def _find(win, name):
    from PySide6.QtWidgets import QWidget

    widget = win.findChild(QWidget, name)
    assert widget is not None, f"no widget named {name}"
    return widget


def _boxes(dets):
    return np.asarray(dets.boxes_xyxy), np.asarray(dets.scores)


def test_stable_object_names(window):
    for name in OBJECT_NAMES:
        _find(window, name)


def test_moving_the_bits_slider_updates_quantized_boxes(loaded, qtbot):
    win = loaded
    before = win.state.result
    slider = _find(win, "bitsSlider")
    with qtbot.waitSignal(win.state.result_changed, timeout=30000):
        slider.setValue(2)
    wait_idle(qtbot, win)
    after = win.state.result
    assert win.state.quant is not None and win.state.quant.bits == 2
    assert not np.array_equal(_boxes(after.other)[1], _boxes(after.ref)[1])
    assert np.array_equal(_boxes(after.ref)[1], _boxes(before.ref)[1])  # float boxes stay


def test_burst_of_slider_moves_ends_with_the_last_result(loaded, qtbot, tiny_detector):
    from squeezelens.engine.quant import QuantConfig

    win = loaded
    slider = _find(win, "bitsSlider")
    finished = []
    win.controller.model_runner.finished.connect(lambda r: finished.append(r.label))
    slider.setSliderDown(True)  # a drag: updates are debounced
    for bits in [*range(16, 0, -1), *range(1, 9)] * 3:
        slider.setValue(bits)
    slider.setValue(3)
    slider.setSliderDown(False)
    slider.sliderReleased.emit()
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.state.result.other is not None, timeout=5000)
    assert win.state.quant.bits == 3
    expected = tiny_detector.detect(win.state.record.path, QuantConfig(bits=3))
    got = win.state.result.other
    assert np.allclose(got.scores, expected.scores) and np.allclose(
        got.boxes_xyxy, expected.boxes_xyxy
    )
    assert finished.count("detect") <= 3  # the burst was collapsed, stale jobs dropped


def test_keyboard_step_sends_at_once(loaded, qtbot):
    win = loaded
    slider = _find(win, "bitsSlider")
    slider.setFocus()
    with qtbot.waitSignal(win.state.quant_changed, timeout=2000):
        qtbot.keyClick(slider, Qt.Key.Key_Left)
    assert win.state.quant.bits == 7


def test_histogram_shows_the_selected_layers_levels(loaded, qtbot, tiny_detector):
    from squeezelens.engine.quant import plan_quantization

    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)
    _find(win, "bitsSlider").setValue(3)
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.analysis.report is not None, timeout=30000)
    table = _find(win, "layerTable")
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "fire3/expand1x1")
    with qtbot.waitSignal(win.state.histogram_changed, timeout=30000):
        table.selectRow(row)
    wait_idle(qtbot, win)
    assert win.state.selected_layer == "fire3/expand1x1"
    hist = win.state.histogram
    grid = plan_quantization(tiny_detector.float_weights, win.state.quant)[
        "fire3/expand1x1/kernels"
    ].grid
    assert grid.n_levels == 2**3
    lo, hi = hist.edges[0], hist.edges[-1]
    margin = 0.01 * (hi - lo)
    inside = grid.levels[(grid.levels >= lo - margin) & (grid.levels <= hi + margin)]
    assert len(hist.levels) >= 2 and np.allclose(hist.levels, inside)
    plot = win.layers_panel.hist
    levels_item = next(i for i in plot.listDataItems() if i.name() == "levels")
    xs, _ys = levels_item.getData()
    assert np.allclose(np.unique(xs), np.sort(hist.levels))
    assert "fire3/expand1x1" in plot.getPlotItem().titleLabel.text
    assert table.item(row, 4).text() == "8"  # levels column


def test_layer_override_edits_the_config(loaded, qtbot):
    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)
    _find(win, "bitsSlider").setValue(4)
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.analysis.report is not None, timeout=30000)
    table = _find(win, "layerTable")
    with qtbot.waitSignal(win.state.quant_changed, timeout=5000):
        table.item(2, BITS_COL).setText("float")
    layer = table.item(2, 0).text()
    assert dict(win.state.quant.overrides) == {layer: "float"}


def _check_ap_shown_as_fractions(win) -> None:
    """AP table, summary and PR legend show the engine's AP values as fractions (0.8931)."""
    ev, table = win.state.evaluation, _find(win, "apTable")
    first = ev.ref.classes[0]
    assert table.item(0, 0).text() == f"{ev.ref.ap[first]['easy'].ap_r11:.4f}"
    assert table.item(1, 3).text() == f"{ev.other.ap[first]['easy'].ap_r40:.4f}"
    m = 3 * len(ev.ref.classes)  # the mAP rows
    assert table.item(m, 1).text() == f"{ev.ref.map['r11']['moderate']:.4f}"
    delta = ev.other.map["r11"]["hard"] - ev.ref.map["r11"]["hard"]
    assert table.item(m + 2, 2).text() == f"{delta:+.4f}"
    assert f"{ev.ref.map['r11']['all']:.4f} →" in win.metrics_panel.summary.text()
    curve = ev.ref.ap["pedestrian"]["moderate"]
    names = [item.name() for item in win.metrics_panel.plot.listDataItems()]
    assert f"AP R11 {curve.ap_r11:.4f}, R40 {curve.ap_r40:.4f}" in names[0]


def test_evaluate_then_export_pr_png_svg_csv(loaded, qtbot, tmp_path):
    from squeezelens.gui import export

    win = loaded
    _find(win, "bitsSlider").setValue(3)
    wait_idle(qtbot, win)
    with qtbot.waitSignal(win.state.eval_changed, timeout=60000):
        _find(win, "evaluateButton").click()
    assert win.state.evaluation.other is not None
    assert _find(win, "apTable").rowCount() == 3 * (len(win.state.model.class_names) + 1)
    win.metrics_panel.class_combo.setCurrentText("pedestrian")  # the self-labelled class
    _check_ap_shown_as_fractions(win)
    paths = export.export_plot_all(win.metrics_panel.plot, tmp_path / "pr")
    assert [p.suffix for p in paths] == [".png", ".svg", ".csv"]
    assert all(p.stat().st_size > 100 for p in paths)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:2000]
    rows = list(csv.reader(paths[2].open()))
    assert len(rows) > 2
    ap = export.export_ap_table(win.state.evaluation, tmp_path / "ap")
    assert all(p.exists() for p in ap)


def test_bad_checkpoint_shows_a_message_and_keeps_the_model(loaded, qtbot, tmp_path):
    win = loaded
    model, dataset = win.state.model, win.state.dataset
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"this is not a checkpoint")
    with qtbot.waitSignal(win.state.error, timeout=30000) as blocker:
        win.controller.open_checkpoint(bad)
    assert "broken.npz" in blocker.args[0]
    assert win.banner.isVisible() and "broken.npz" in win.banner.text
    assert win.state.model is model and win.state.dataset is dataset


def test_non_kitti_folder_shows_a_message_and_keeps_the_dataset(loaded, qtbot, tmp_path):
    win = loaded
    dataset, index = win.state.dataset, win.state.index
    empty = tmp_path / "not_kitti"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with qtbot.waitSignal(win.state.error, timeout=10000) as blocker:
        win.controller.open_dataset(empty)
    assert "not_kitti" in blocker.args[0]
    assert win.state.dataset is dataset and win.state.index == index


def test_unreadable_image_keeps_the_shown_one(loaded, qtbot, tmp_path):
    import dataclasses

    from squeezelens.engine.types import ImageRecord

    win = loaded
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    ds = win.state.dataset
    win.state.set_dataset(
        dataclasses.replace(ds, records=(*ds.records, ImageRecord("broken", str(broken))))
    )
    with qtbot.waitSignal(win.state.image_changed, timeout=10000):
        win.controller.go_to(0)
    image, index = win.state.image, win.state.index
    with qtbot.waitSignal(win.state.error, timeout=10000) as blocker:
        win.controller.go_to(len(ds.records))
    assert "broken.png" in blocker.args[0]
    assert win.state.image is image and win.state.index == index


def test_navigation_and_flip_shortcuts(loaded, qtbot):
    win = loaded
    win.canvas.setFocus()
    with qtbot.waitSignal(win.state.image_changed, timeout=10000):
        win.ui_actions.next_image.trigger()
    assert win.state.index == 1
    win.ui_actions.flip.trigger()
    assert win.state.visible == {"gt": True, "ref": False, "other": True}
    win.ui_actions.flip.trigger()
    assert win.state.visible == {"gt": True, "ref": True, "other": False}


def test_only_changed_filter_and_sort(loaded, qtbot):
    win = loaded
    _find(win, "bitsSlider").setValue(2)
    wait_idle(qtbot, win)
    panel = win.image_list
    assert len(win.state.counts) == len(win.state.dataset)
    panel.only_changed.setChecked(True)
    changed = sum(1 for c in win.state.counts.values() if c.changes > 0)
    assert panel.proxy.rowCount() == changed
    panel.sort.setCurrentIndex(1)
    values = [
        panel.proxy.index(r, 0).data(panel.proxy.sortRole()) for r in range(panel.proxy.rowCount())
    ]
    assert values == sorted(values, reverse=True)


def test_side_by_side_links_the_views(loaded, qtbot):
    win = loaded
    _find(win, "viewModeCombo").setCurrentIndex(1)
    panes = win.canvas.panes
    assert set(panes) == {"left", "right"}
    panes["left"].view.setRange(xRange=(10, 60), yRange=(10, 40), padding=0)
    (x0, x1), (y0, y1) = panes["right"].view.viewRange()
    assert (x0 + x1) / 2 == pytest.approx(35, abs=1) and (y0 + y1) / 2 == pytest.approx(25, abs=1)
    assert x1 - x0 < 200  # zoomed in too, not left at the full image


def test_session_roundtrip_and_copy_as_command(loaded, qtbot, tmp_path):
    from PySide6.QtGui import QGuiApplication

    from squeezelens.gui import session

    win = loaded
    _find(win, "bitsSlider").setValue(6)  # not 5: the slider must move
    _find(win, "bitsSlider").setValue(5)
    _find(win, "reserveZeroCheck").setChecked(True)
    wait_idle(qtbot, win)
    path = tmp_path / "s.json"
    win.sessions.save(str(path))
    data = session.load_session(path)
    assert data.quant.bits == 5 and data.quant.reserve_zero is True
    win.ui_actions.copy_command.trigger()
    text = QGuiApplication.clipboard().text()
    assert "squeezelens detect" in text and "--bits 5" in text and "--reserve-zero on" in text
    win.quant_panel.reset_to_float()
    assert win.state.quant is None
    win.sessions.open(str(path))
    assert win.state.quant.bits == 5 and win.state.quant.reserve_zero


def test_close_during_evaluation_is_quick(loaded, qtbot):
    win = loaded
    _find(win, "bitsSlider").setValue(4)
    win.analysis.evaluate()
    qtbot.wait(50)
    start = time.perf_counter()
    win.close()
    assert time.perf_counter() - start < 1.0


def test_window_screenshot_smoke(loaded, qtbot, tmp_path):
    win = loaded
    _find(win, "bitsSlider").setValue(3)
    wait_idle(qtbot, win)
    for size in ((1366, 768), (2560, 1440)):
        win.resize(*size)
        qtbot.wait(100)
        image = win.grab().toImage()
        path = tmp_path / f"window_{size[0]}.png"
        assert image.save(str(path))
        assert image.width() >= size[0] * 0.9 and path.stat().st_size > 20000
        # the canvas is not squeezed away at either size
        assert win.canvas.width() > 0.4 * size[0] and win.canvas.height() > 0.3 * size[1]


def test_compare_a_vs_b(loaded, qtbot):
    win = loaded
    panel = win.quant_panel
    _find(win, "bitsSlider").setValue(6)
    wait_idle(qtbot, win)
    panel.compare.setCurrentIndex(1)  # A vs B: B starts as a copy of A
    assert win.state.mode == "ab" and win.state.quant_b == win.state.quant
    panel.edit_b.click()
    panel.bits.setValue(2)
    wait_idle(qtbot, win)
    assert win.state.quant.bits == 6 and win.state.quant_b.bits == 2
    assert win.state.ref_label == "A" and win.state.other_label == "B"
    result = win.state.result
    assert not np.array_equal(result.ref.scores, result.other.scores)
    assert win.summary.names["ref"].text() == "A" and win.summary.names["other"].text() == "B"
    panel.edit_a.click()
    assert panel.bits.value() == 6


def test_sweep_grows_point_by_point(loaded, qtbot):
    win = loaded
    win.sweep_panel.bits_from.setValue(3)
    win.sweep_panel.bits_to.setValue(4)
    partials = []
    win.state.sweep_changed.connect(lambda: partials.append(len(win.state.sweep.points)))
    win.ui_actions.sweep.trigger()
    qtbot.waitUntil(
        lambda: not win.state.sweep.running and len(win.state.sweep.points) == 3, timeout=120000
    )
    assert 1 in partials and 2 in partials  # the plot grew one point at a time
    items = win.sweep_panel.plot.listDataItems()
    curves = [c for c in items if not c.name().startswith("float")]
    assert len(curves) == 1 and len(curves[0].getData()[0]) == 2
    from squeezelens.engine.sweep import (
        summarize,  # mAP as a fraction, on a 0..1 axis like cli/plots.py
    )

    summary = summarize(win.state.sweep.points)
    points = next(v for k, v in summary.items() if k != "float")
    bits, maps = curves[0].getData()
    assert list(maps) == [points[b][0] for b in bits] and max(maps) <= 1
    plot = win.sweep_panel.plot
    float_map = summary["float"][32][0]
    (line,) = [c for c in items if c.name().startswith("float")]  # dashed, as in the CLI's file
    assert list(line.getData()[1]) == pytest.approx([float_map] * 2) and 0 < float_map <= 1
    assert line.name() == f"float {float_map:.4f}"
    assert plot.getAxis("left").labelText == "mAP (R11)"
    low, high = plot.getViewBox().viewRange()[1]
    assert low <= 0 and 1 <= high < 1.1


@pytest.mark.slow
def test_int8_switch_converts_in_the_background(loaded, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path / "cache"))
    win = loaded
    check = _find(win, "int8Check")
    assert check.isEnabled()
    progress = []
    win.state.job_progress.connect(lambda text, d, t: progress.append(text))
    check.setChecked(True)
    assert win.state.int8 and win.state.other_label == "INT8"
    qtbot.waitUntil(lambda: win.controller.handle.int8 is not None, timeout=180000)
    wait_idle(qtbot, win, timeout=60000)
    assert any("INT8" in t for t in progress)
    result = win.state.result
    assert result is not None and len(result.other) > 0
    assert len(win.state.counts) == len(win.state.dataset)
    assert "INT8" in win.quant_panel.size_label.text()


def test_presets_set_the_fork_curves(loaded, qtbot):
    win = loaded
    panel = win.quant_panel
    _find(win, "bitsSlider").setValue(5)
    index = panel.preset.findText("Fork: stochastic + zero (groups)")
    panel.preset.setCurrentIndex(index)
    panel.preset.activated.emit(index)
    q = win.state.quant
    assert (q.bits, q.rounding, q.reserve_zero, q.scale) == (5, "stochastic", True, "groups")
    assert not q.quantize_first_layer
    assert _find(win, "scaleCombo").currentText() == "groups" and panel.seed.isEnabled()
    panel.reset.click()
    assert win.state.quant is None and panel.float_button.isChecked()


def test_presets_sweep_curves_and_size_come_from_the_engine(loaded, qtbot):
    from squeezelens.engine.quant import PRESETS, RISTRETTO, model_size_bytes
    from squeezelens.engine.quant.presets import fork_curve_configs

    win, panel = loaded, loaded.quant_panel
    names = [panel.preset.itemText(i) for i in range(1, panel.preset.count())]
    assert names == [p.name for p in PRESETS]
    _find(win, "bitsSlider").setValue(6)
    wait_idle(qtbot, win)
    index = panel.preset.findText(RISTRETTO.name)
    panel.preset.setCurrentIndex(index)
    panel.preset.activated.emit(index)
    wait_idle(qtbot, win)
    assert win.state.quant == RISTRETTO.apply(win.state.quant.replace(grid="linear"))
    assert (win.state.quant.grid, win.state.quant.scale, win.state.quant.bits) == (
        "pow2",
        "layer",
        6,
    )
    mb = model_size_bytes(win.state.model.tensor_sizes, win.state.quant) / 1e6
    assert f"→ {mb:.2f} MB at 6 bits" in panel.size_label.text()
    sweep = win.sweep_panel
    sweep.bits_from.setValue(4)
    sweep.bits_to.setValue(5)
    sweep.current.setChecked(False)
    sweep.fork.setChecked(True)
    expected = fork_curve_configs(win.state.quant, bits=(4, 5))
    assert sorted(map(repr, sweep.configs())) == sorted(map(repr, expected))


def test_activation_bits_calibrate_and_detect(loaded, qtbot):
    win = loaded
    _find(win, "bitsSlider").setValue(8)
    wait_idle(qtbot, win)
    before = win.state.result.other
    _find(win, "activationBitsSpin").setValue(4)
    wait_idle(qtbot, win)
    assert win.state.quant.activation_bits == 4
    assert win.controller.handle.detector.activation_ranges is not None
    assert not np.array_equal(win.state.result.other.scores, before.scores)


def test_export_quantized_parameters_npz(loaded, qtbot, tmp_path):
    from squeezelens.engine.detector import Detector

    win = loaded
    _find(win, "bitsSlider").setValue(4)
    wait_idle(qtbot, win)
    path = tmp_path / "q4.npz"
    win.analysis.export_quantized(str(path))
    qtbot.waitUntil(path.with_suffix(".json").exists, timeout=30000)
    wait_idle(qtbot, win)
    reopened = Detector.from_checkpoint(path)  # the export is itself a checkpoint
    w = reopened.float_weights["fire2/squeeze1x1/kernels"]
    assert len(np.unique(w)) <= 16


@pytest.mark.slow
def test_export_quantized_writes_what_the_quantize_command_writes(
    loaded, qtbot, tmp_path, tiny_checkpoint, tiny_kitti
):
    import json

    from squeezelens.cli.main import main

    win = loaded
    win.quant_panel.scale.setCurrentText("channel")
    _find(win, "bitsSlider").setValue(5)
    _find(win, "activationBitsSpin").setValue(6)
    wait_idle(qtbot, win)
    config = win.state.other_config
    gui_npz = tmp_path / "gui.npz"
    win.analysis.export_quantized(str(gui_npz))
    qtbot.waitUntil(gui_npz.with_suffix(".json").exists, timeout=30000)
    wait_idle(qtbot, win)
    cli_npz = tmp_path / "cli.npz"
    argv = ["quantize", "--checkpoint", str(tiny_checkpoint), *config.to_cli_args(),
            "--kitti-root", str(tiny_kitti), "--out", str(cli_npz)]  # fmt: skip
    assert main(argv) == 0
    gui_doc, cli_doc = (json.loads(p.with_suffix(".json").read_text()) for p in (gui_npz, cli_npz))
    assert gui_doc["quant"]["activation_bits"] == 6 and gui_doc["quant"]["scale"] == "channel"
    gui_cal, cli_cal = (
        gui_doc["activations"].pop("calibration"),
        cli_doc["activations"].pop("calibration"),
    )
    assert gui_cal["source"].startswith("train split of")  # never the val split it shows
    assert gui_cal == cli_cal  # the same images, by the same rule
    assert gui_doc == cli_doc  # provenance, config, seed, versions, grids, activation formats
    with np.load(gui_npz) as g, np.load(cli_npz) as c:
        assert sorted(g.files) == sorted(c.files) == sorted(gui_doc["tensors"])
        for name in g.files:
            np.testing.assert_array_equal(g[name], c[name])


def test_hover_reports_score_and_iou(loaded, qtbot):
    from squeezelens.gui.canvas.boxes import BoxItem

    win = loaded
    _find(win, "bitsSlider").setValue(6)
    wait_idle(qtbot, win)
    items = [i for i in win.canvas.panes["main"].items if isinstance(i, BoxItem)]
    ref_item = next(i for i in items if i.spec.source == "ref")
    ref_item._on_hover(ref_item.spec.info)  # what hoverEnterEvent reports
    text = win.canvas.hover_label.text()
    assert text.startswith("Float: ") and ("IoU" in text or "lost" in text)


def test_open_path_routes_checkpoints_folders_and_sessions(
    loaded, qtbot, tmp_path, tiny_checkpoint
):
    win = loaded
    calls = []
    win.controller.open_checkpoint = lambda p: calls.append(("ckpt", str(p)))
    win.controller.open_dataset = lambda p, split="val", **_kw: calls.append(("data", str(p)))
    win.open_path(str(tiny_checkpoint))
    win.open_path(str(tmp_path))
    assert calls == [("ckpt", str(tiny_checkpoint)), ("data", str(tmp_path))]


def test_settings_persist_geometry_threshold_and_recent(qtbot, tmp_path, tiny_kitti):
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import Settings

    ini = tmp_path / "persist.ini"
    first = MainWindow(settings=Settings.at(ini))
    qtbot.addWidget(first)
    first.resize(1300, 740)
    first.show()
    first.state.set_threshold(0.55)
    first.state.set_view_mode("side")
    first.controller.open_dataset(tiny_kitti, "val")
    qtbot.waitUntil(lambda: first.state.dataset is not None, timeout=10000)
    first.top.setSizes([310, 640, 350])
    sizes = first.top.sizes()
    first.close()
    second = MainWindow(settings=Settings.at(ini))
    qtbot.addWidget(second)
    assert second.state.threshold == pytest.approx(0.55)
    assert second.state.view_mode == "side"
    saved = second.settings.load_bytes("splitter/topSplitter")
    assert saved is not None and second.settings.load_bytes("geometry") is not None
    from PySide6.QtWidgets import QSplitter, QWidget

    probe = QSplitter()
    for _ in range(3):
        probe.addWidget(QWidget())
    assert probe.restoreState(saved) and len(sizes) == 3
    assert ("kitti", str(tiny_kitti)) in second.settings.recent()
    second.close()


def test_threshold_slider_filters_boxes_and_counts(loaded, qtbot):
    win = loaded
    win.state.set_threshold(0.0)
    n_all = len(win.state.result.ref.above(win.state.result.threshold))
    slider = _find(win, "thresholdSlider")
    slider.setValue(95)
    assert win.state.threshold == pytest.approx(0.95)
    assert win.state.result.threshold == pytest.approx(0.95)
    assert len(win.state.result.ref.above(0.95)) <= n_all
    qtbot.waitUntil(
        lambda: win.state.counts[win.state.index].ref == len(win.state.result.ref.above(0.95)),
        timeout=2000,
    )


@pytest.mark.slow
def test_sensitivity_then_apply_recommendation(loaded, qtbot):
    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)
    _find(win, "bitsSlider").setValue(2)
    wait_idle(qtbot, win)
    with qtbot.waitSignal(
        win.state.layers_changed,
        timeout=300000,
        check_params_cb=lambda: bool(win.state.sensitivity),
    ):
        win.layers_panel.sens_button.click()
    quantized = {k.rpartition("/")[0] for k, v in win.analysis.report.items() if v.quantized}
    assert set(win.state.sensitivity) == quantized  # every layer the config quantizes
    wait_idle(qtbot, win)
    assert win.layers_panel.apply_button.isEnabled()
    win.layers_panel.apply_button.click()
    overrides = dict(win.state.quant.overrides)
    assert overrides and set(overrides) <= {r.name for r in win.state.layer_rows}
    table = _find(win, "layerTable")
    assert any(table.item(r, SENS_COL).text() for r in range(table.rowCount()))
    wait_idle(qtbot, win)
    assert win.state.sensitivity  # per-layer bits only: the measured drops still apply
    assert not win.layers_panel.sensitivity_stale()
    images = len(win.state.dataset)
    assert table.horizontalHeaderItem(SENS_COL).text() == f"mAP drop ({images} img)"
    assert set(win.state.sensitivity_noise) == quantized  # a bootstrap spread per drop
    _find(win, "roundingCombo").setCurrentIndex(1)  # other grids: the old drops no longer do
    wait_idle(qtbot, win)
    assert win.layers_panel.sensitivity_stale()  # kept, greyed and labelled stale
    assert "stale" in table.horizontalHeaderItem(SENS_COL).text()
    assert "settings changed" in win.layers_panel.sens_caption.text()
    assert not win.layers_panel.most_sensitive()


def test_canvas_png_export(loaded, tmp_path):
    from squeezelens.gui import export

    path = export.export_widget_png(loaded.canvas.graphics, tmp_path / "canvas.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000
