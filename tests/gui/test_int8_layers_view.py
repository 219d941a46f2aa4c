"""The INT8 layer comparison in the Layers tab's activation page (TFLite INT8 on).

The fast tests stand a fake comparison in for LiteRT (progress, cancellation, the
first parting layer marked, staleness); the slow one converts the tiny model and
checks the window's numbers against ``squeezelens compare-int8``'s CSV, exactly.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from squeezelens.engine.calibration import CALIBRATION_COUNT
from squeezelens.engine.diagnostics import ErrorSum
from squeezelens.engine.int8.compare_layers import Int8LayerComparison, Int8LayerRow
from tests.gui.conftest import wait_idle
from tests.test_cli import run

pytestmark = pytest.mark.gui


def _fake_rows(names, parted: str) -> tuple[Int8LayerRow, ...]:
    rng = np.random.default_rng(0)
    rows = []
    for name in names:
        a = rng.standard_normal(50)
        b = a + 0.01 * rng.standard_normal(50)
        stats = ErrorSum().add(a, b).stats()
        share = 0.2 if name == parted else 0.0
        rows.append(Int8LayerRow(name, (4, 4, 2), 0.05, -128, stats, 0.99, stats, 0.98, stats,
                                 0.97, share, 0.0, 0))  # fmt: skip
    return tuple(rows)


def _int8_page(win, qtbot, monkeypatch):
    """INT8 on with a stand-in INT8 model, the activation page shown."""
    monkeypatch.setattr(win.controller, "convert_int8", lambda: None)
    win.controller.handle.int8 = SimpleNamespace(
        model_path=Path("fake.tflite"),
        detect=lambda path: win.controller.handle.detector.detect(path),
        summary=lambda: "fake",
    )
    win.quant_panel.int8.setChecked(True)
    panel = win.layers_panel
    win.tabs.setCurrentWidget(panel)
    panel.plot_tabs.setCurrentIndex(1)
    wait_idle(qtbot, win)
    return panel.int8_view


def test_int8_comparison_runs_as_a_cancellable_long_job_and_turns_stale(loaded, qtbot,
                                                                      monkeypatch):  # fmt: skip
    import squeezelens.engine.int8.compare_layers as cl

    win = loaded
    view = _int8_page(win, qtbot, monkeypatch)
    assert win.layers_panel.act_page.currentWidget() is view  # in place of the chart
    assert win.layers_panel.plot_tabs.tabText(1) == "INT8 layers"
    assert view.caption.text().startswith("Press Compare layers") and view.compare.isEnabled()
    mode = {"block": True}
    calls = []

    def fake(detector, model_path, images, kernels="xnnpack", progress=None, cancel=None):
        calls.append((str(model_path), len(images), kernels))
        while mode["block"]:
            progress(0, len(images))  # a yield point: raises Cancelled once cancelled
            cancel.raise_if_cancelled()
            time.sleep(0.005)
        for i in range(len(images)):
            progress(i + 1, len(images))
        names = [r.name for r in win.state.layer_rows] or ["conv1", "fire2/squeeze1x1", "conv12"]
        return Int8LayerComparison(_fake_rows(names, names[1]), len(images), kernels)

    monkeypatch.setattr(cl, "compare_int8_layers", fake)
    messages = []
    win.state.message.connect(messages.append)
    view.count.setValue(2)
    view.compare.click()
    assert win.controller.long.running() == "int8_layers"
    qtbot.waitUntil(win.status.cancel.isVisible, timeout=5000)
    win.status.cancel.click()
    qtbot.waitUntil(lambda: "INT8 layer comparison cancelled" in messages, timeout=10000)
    wait_idle(qtbot, win)
    assert view.state.int8_layers.comparison is None and view.table.rowCount() == 0
    mode["block"] = False
    with qtbot.waitSignal(win.state.int8_layers_changed, timeout=30000):
        view.compare.click()
    wait_idle(qtbot, win)
    assert calls[-1] == ("fake.tflite", 2, "xnnpack")
    shown = win.state.int8_layers
    assert shown.images == tuple(str(r.path) for r in win.state.dataset.records[0:2])
    table, first = view.table, shown.comparison.first_parting
    assert table.rowCount() == len(shown.comparison.rows)
    marked = [r for r in range(table.rowCount()) if table.item(r, 0).text().endswith("◀ parts")]
    assert [table.item(r, 0).text() for r in marked] == [f"{first} ◀ parts"]
    assert "tolerance: a layer parts when more than 1%" in view.verdict.text()
    assert f"they part first at {first}" in view.verdict.text()
    assert not view.stale() and "settings changed" not in view.caption.text()
    win.controller.go_to(1)  # another image: the comparison is stale
    qtbot.waitUntil(lambda: win.state.index == 1, timeout=10000)
    wait_idle(qtbot, win)
    assert view.stale() and "settings changed — Compare layers again" in view.caption.text()
    win.quant_panel.int8.setChecked(False)  # the activation chart again
    wait_idle(qtbot, win)
    assert win.layers_panel.act_page.currentWidget() is win.layers_panel.act_plot


@pytest.mark.slow
def test_int8_comparison_gives_the_numbers_of_compare_int8(loaded, qtbot, capsys, tmp_path,
                                                           monkeypatch, tiny_kitti):  # fmt: skip
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path / "cache"))
    win = loaded
    win.quant_panel.int8.setChecked(True)
    qtbot.waitUntil(lambda: win.controller.handle.int8 is not None, timeout=180000)
    wait_idle(qtbot, win, timeout=60000)
    panel = win.layers_panel
    win.tabs.setCurrentWidget(panel)
    panel.plot_tabs.setCurrentIndex(1)
    view = panel.int8_view
    view.count.setValue(2)
    with qtbot.waitSignal(win.state.int8_layers_changed, timeout=180000):
        view.compare.click()
    wait_idle(qtbot, win)
    shown = win.state.int8_layers
    rc, out, err = run(capsys, "compare-int8", "--checkpoint", win.state.model.checkpoint_path,
                       "--kitti-root", tiny_kitti, "--calib-count", str(CALIBRATION_COUNT), "--images",
                       *shown.images, "--count", "2", "--out", tmp_path)  # fmt: skip
    assert rc == 0, err
    with (tmp_path / "int8_layers.csv").open() as fh:
        cli = list(csv.DictReader(fh))
    rows = shown.comparison.rows
    assert [r["layer"] for r in cli] == [r.layer for r in rows]
    for c, g in zip(cli, rows, strict=True):
        assert float(c["sqnr_deployed_float_db"]) == g.deployed_vs_float.sqnr_db
        assert float(c["cosine_deployed_float"]) == g.deployed_float_cosine
        assert float(c["sqnr_simulated_float_db"]) == g.simulated_vs_float.sqnr_db
        assert float(c["sqnr_deployed_simulated_db"]) == g.deployed_vs_simulated.sqnr_db
        assert float(c["parted_share"]) == g.parted_share
    table = view.table
    assert table.item(0, 1).text() == f"{rows[0].deployed_vs_float.sqnr_db:.1f}"
    assert shown.comparison.verdict() in out
