"""The path from a bits change to the boxes: nothing else is queued in front of the detection.

No wall-clock limits (benchmarks/bench_gui.py measures the latency): these tests check
the order of the work, with jobs held on events where an order is at stake.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.gui


def _other_bits(win) -> int | None:
    key = win.controller.scan.key
    return key.other.bits if key is not None and key.other is not None else None


def test_a_release_does_not_wait_for_the_layer_table(loaded, qtbot, monkeypatch):
    import squeezelens.engine.diagnostics as diagnostics

    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)  # the layer table is live
    wait_idle(qtbot, win)
    real_table, gate, inside = diagnostics.layer_table, threading.Event(), threading.Event()

    def slow_table(*args, **kwargs):
        inside.set()
        assert gate.wait(30)
        return real_table(*args, **kwargs)

    monkeypatch.setattr(diagnostics, "layer_table", slow_table)
    try:
        win.quant_panel.bits.setValue(5)
        qtbot.waitUntil(inside.is_set, timeout=30000)  # the table for 5 bits is being computed
        with qtbot.waitSignal(win.state.result_changed, timeout=30000):
            win.quant_panel.bits.setValue(3)  # a release while the table is held
        assert _other_bits(win) == 3 and not gate.is_set()  # boxes while the table is held
    finally:
        gate.set()
    wait_idle(qtbot, win)
    assert win.state.result.other is not None and win.state.quant.bits == 3
    assert win.state.layer_rows  # the table followed


def test_the_layer_table_waits_for_the_detection(loaded, qtbot, monkeypatch):
    import squeezelens.engine.diagnostics as diagnostics

    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)
    wait_idle(qtbot, win)
    det = win.controller.handle.detector
    order: list[str] = []
    real_forward, real_table = det.forward, diagnostics.layer_table

    def forward(batch, quant=None):
        out = real_forward(batch, quant)
        if quant is not None and quant.bits == 4:
            order.append("forward")
        return out

    def table(*args, **kwargs):
        order.append("table")
        return real_table(*args, **kwargs)

    monkeypatch.setattr(det, "forward", forward)
    monkeypatch.setattr(diagnostics, "layer_table", table)
    win.quant_panel.bits.setValue(4)
    wait_idle(qtbot, win)
    assert "table" in order and "forward" in order
    assert order.index("forward") < order.index("table")


def test_a_release_decodes_no_image_and_matches_detect(loaded, qtbot, monkeypatch, tiny_detector):
    import squeezelens.engine.data.images as images
    from squeezelens.engine.quant import QuantConfig

    win = loaded
    shown = win.state.record.path
    reads: list[str] = []
    real_read = images.read_image_bgr

    def counting_read(path):
        reads.append(str(path))
        return real_read(path)

    monkeypatch.setattr(images, "read_image_bgr", counting_read)
    with qtbot.waitSignal(win.state.result_changed, timeout=30000):
        win.quant_panel.bits.setValue(6)
    assert _other_bits(win) == 6
    assert str(shown) not in reads  # the shown image was decoded once, when it was opened
    expected = tiny_detector.detect(shown, QuantConfig(bits=6))
    got = win.state.result.other
    assert np.array_equal(got.scores, expected.scores)
    assert np.array_equal(got.boxes_xyxy, expected.boxes_xyxy)
    wait_idle(qtbot, win)


def test_a_burst_of_releases_starts_the_scan_once(loaded, qtbot):
    win = loaded
    started = []
    scan = win.controller.scan
    real_restart = scan.restart

    def restart():
        started.append(win.state.quant.bits if win.state.quant else None)
        real_restart()

    scan._scan_timer.timeout.disconnect()
    scan._scan_timer.timeout.connect(restart)
    for bits in (7, 6, 5, 4):
        win.quant_panel.bits.setValue(bits)
    wait_idle(qtbot, win)
    assert started == [4]  # one scan, for the last config
    assert len(win.state.counts) == len(win.state.dataset)  # every row counted for 4 bits


def test_activations_follow_once_the_user_pauses(loaded, qtbot, monkeypatch):
    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)
    win.layers_panel.plot_tabs.setCurrentIndex(1)  # the activations tab: two forwards per image
    wait_idle(qtbot, win)
    runner, submitted = win.controller.model_runner, []
    real_submit = runner.submit

    def submit(lane, fn, label="", text="", **handlers):
        submitted.append(label)
        return real_submit(lane, fn, label, text, **handlers)

    monkeypatch.setattr(runner, "submit", submit)
    for bits in (7, 6, 5):  # releases in a row, each one waiting for its boxes
        with qtbot.waitSignal(win.state.result_changed, timeout=30000):
            win.quant_panel.bits.setValue(bits)
    wait_idle(qtbot, win)
    assert submitted.count("detect") == 3
    assert submitted.count("activations") == 1  # for 5 bits, after the burst
    assert win.state.activations is not None
    win.state.set_threshold(0.3)  # same boxes, another threshold: nothing to recompute
    wait_idle(qtbot, win)
    assert submitted.count("activations") == 1
