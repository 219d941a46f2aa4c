"""What keeps the UI thread free while the first boxes, the layer table and the histogram
arrive after start-up (how long the gaps are is measured by benchmarks/bench_gui.py)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.gui


def test_the_forward_is_traced_while_the_model_loads(window, qtbot, tiny_checkpoint):
    """The first forward's trace (about a second of graph building in long stretches holding
    the interpreter lock) happens in the load job, not beside the first boxes' painting."""
    controller = window.controller
    traced_on = []
    from squeezelens.engine.detector import Detector

    real = Detector.trace_forward

    def spy(self):
        traced_on.append(threading.current_thread().name)
        real(self)

    Detector.trace_forward = spy
    try:
        controller.open_checkpoint(tiny_checkpoint)  # no images open: no detection follows
        qtbot.waitUntil(lambda: controller.handle is not None, timeout=60000)
        wait_idle(qtbot, window)
    finally:
        Detector.trace_forward = real
    assert traced_on == ["squeezelens-model"]
    assert controller.handle.detector._forward_float.experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_trace_forward_traces_once_and_the_first_forward_reuses_it(tiny_detector):
    import numpy as np

    fn = tiny_detector._forward_float
    tiny_detector.trace_forward()
    tiny_detector.trace_forward()  # a second call does nothing
    assert fn.experimental_get_tracing_count() == 1
    w, h = tiny_detector.spec.input_size
    out = tiny_detector.forward(np.zeros((1, h, w, 3), np.float32))
    assert out.shape[0] == 1 and fn.experimental_get_tracing_count() == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_thumbnails_are_decoded_at_the_workers_lower_priority(qtbot):
    from squeezelens.gui.thumbnails import ThumbnailLoader
    from squeezelens.gui.workers import WORKER_NICE

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if base >= 19:
        pytest.skip("this process already runs at the lowest priority")
    loader = ThumbnailLoader()
    try:
        tid = loader._thread.native_id
        qtbot.waitUntil(
            lambda: os.getpriority(os.PRIO_PROCESS, tid) != base, timeout=5000
        )  # the thread lowers its own priority as it starts
        assert os.getpriority(os.PRIO_PROCESS, tid) == min(19, base + WORKER_NICE)
    finally:
        loader.shutdown()


def test_the_histogram_is_drawn_a_turn_after_the_layer_table(loaded, qtbot):
    """Filling the table and drawing the plots in one event (about 50 ms with their
    painting at start-up) froze the window: the event loop runs between them."""
    from PySide6.QtCore import QTimer

    win = loaded
    order: list[str] = []

    def on_rows() -> None:
        order.append("rows")
        QTimer.singleShot(0, lambda: order.append("event loop"))

    win.state.layers_changed.connect(on_rows)
    win.state.histogram_changed.connect(lambda: order.append("histogram"))
    win.quant_panel.bits.setValue(5)
    qtbot.waitUntil(lambda: "histogram" in order, timeout=30000)
    wait_idle(qtbot, win)
    assert order[0] == "rows"  # (the table may be filled again later: only the first counts)
    assert order.index("event loop") < order.index("histogram")
    assert win.state.histogram is not None
