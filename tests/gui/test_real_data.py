"""The window on the real shared SqueezeDet checkpoint and KITTI frames (skips without them)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.gui.conftest import need_real, wait_idle

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def real_window(window, qtbot):
    ckpt, kitti = need_real()
    window.controller.open_dataset(kitti, "val")
    window.controller.open_checkpoint(ckpt)
    qtbot.waitUntil(lambda: window.state.result is not None, timeout=120000)
    wait_idle(qtbot, window, timeout=120000)
    return window


def test_real_model_loads_browses_and_quantizes_live(real_window, qtbot):
    win = real_window
    assert win.state.model.input_size == (960, 288)
    assert len(win.state.dataset) == 50 and len(win.state.counts) == 50
    assert "SqueezeDet" in win.status.summary.text()
    # image 000011 has cars and pedestrians the float model finds
    win.controller.go_to(win.state.dataset.stems.index("000011"))
    qtbot.waitUntil(
        lambda: win.state.result is not None and win.state.result.index == 5, timeout=30000
    )
    assert len(win.state.result.ref.above(0.4)) >= 3
    with qtbot.waitSignal(win.state.result_changed, timeout=30000):
        win.quant_panel.bits.setValue(6)
    wait_idle(qtbot, win, timeout=120000)
    result = win.state.result
    assert win.state.quant.bits == 6
    assert result.comparison.change_count > 0  # 6-bit global linear loses boxes here
    assert any(c.changes > 0 for c in win.state.counts.values())
    win.quant_panel.scale.setCurrentText("channel")
    win.quant_panel.bits.setValue(8)
    wait_idle(qtbot, win, timeout=120000)
    assert not np.array_equal(win.state.result.other.scores, result.other.scores)
    assert "MB at 8 bits" in win.quant_panel.size_label.text()


def test_real_evaluation_fills_pr_and_ap(real_window, qtbot):
    win = real_window
    win.quant_panel.bits.setValue(8)
    wait_idle(qtbot, win, timeout=120000)
    with qtbot.waitSignal(win.state.eval_changed, timeout=300000):
        win.metrics_panel.evaluate_button.click()
    ev = win.state.evaluation
    assert ev.ref.map["r11"]["all"] > 0.3  # the float model is good on these frames
    assert win.metrics_panel.table.rowCount() == 12
    assert len(win.metrics_panel.plot.listDataItems()) == 2
