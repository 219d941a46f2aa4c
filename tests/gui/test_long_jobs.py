"""Long jobs on the window: one at a time, cancellation (INT8 too), exports beside them,
the threshold recount off the UI thread, closing while a job runs."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.gui


def _blocking(release: threading.Event, steps: list | None = None):
    """A long job that reports progress (a yield point) until ``release`` is set."""

    def job(ctx):
        i = 0
        while not release.is_set():
            i += 1
            if steps is not None:
                steps.append(i)
            ctx.progress(i % 100, 100)
            time.sleep(0.005)
        return "done"

    return job


class FakeInt8:
    """Stands in for the TFLite model: the float detector's boxes."""

    def __init__(self, detector) -> None:
        self.detector = detector

    def detect(self, path):
        return self.detector.detect(path)

    def summary(self) -> str:
        return "fake INT8"


def test_cancelling_int8_unticks_it_and_int8_works_again(loaded, qtbot, monkeypatch, tiny_detector):
    from squeezelens.engine.int8 import Int8Detector

    win = loaded
    mode = {"block": True}

    def convert(detector, calib, progress=None, cancel=None, **_kw):
        while mode["block"]:
            progress(1, 10)  # raises Cancelled once the job is cancelled
            time.sleep(0.005)
        return FakeInt8(detector)

    monkeypatch.setattr(Int8Detector, "from_detector", staticmethod(convert))
    check = win.quant_panel.int8
    messages = []
    win.state.message.connect(messages.append)
    check.setChecked(True)
    assert win.state.int8 and win.controller.long.running() == "int8"
    qtbot.waitUntil(win.status.cancel.isVisible, timeout=5000)
    win.status.cancel.click()
    qtbot.waitUntil(lambda: not win.state.int8, timeout=10000)
    wait_idle(qtbot, win)
    assert not check.isChecked() and win.controller._int8_pending == -1
    assert "INT8 conversion cancelled" in messages
    assert not win.status.progress.isVisible()
    assert win.state.result is not None and win.state.other_label == "Quantized"
    mode["block"] = False  # the next conversion succeeds: INT8 is usable without a reload
    check.setChecked(True)
    qtbot.waitUntil(lambda: win.controller.handle.int8 is not None, timeout=10000)
    wait_idle(qtbot, win)
    assert win.state.int8 and check.isChecked() and win.state.other_label == "INT8"
    assert win.state.result is not None


def test_a_running_long_job_refuses_another(loaded, qtbot):
    win = loaded
    release = threading.Event()
    long = win.controller.long
    assert long.submit(_blocking(release), "fake", "A fake job")
    messages = []
    win.state.message.connect(messages.append)
    win.analysis.evaluate()
    win.sweep_panel.run()
    assert len(messages) == 2
    assert all("Fake is running — cancel it first" in m for m in messages)
    assert long.running() == "fake" and long.label == "fake"
    assert win.state.evaluation.ref is None and not win.state.sweep.running
    qtbot.wait(100)
    assert long.running() == "fake"  # not cancelled by the refused requests
    release.set()
    wait_idle(qtbot, win)
    assert long.running() == ""


def test_a_late_cancel_report_does_not_touch_the_next_job(loaded, qtbot):
    win = loaded
    first, second = threading.Event(), threading.Event()
    long, runner = win.controller.long, win.controller.model_runner
    cancelled = []
    runner.cancelled.connect(lambda r: cancelled.append(r.generation))
    messages = []
    win.state.message.connect(messages.append)
    steps = []
    assert long.submit(_blocking(first, steps), "fake1", "First job")
    old = long.generation
    qtbot.waitUntil(lambda: len(steps) > 3, timeout=5000)
    win.analysis.cancel()  # the worker reports 'cancelled' a little later...
    assert long.submit(_blocking(second), "fake2", "Second job")  # ...after this started
    qtbot.waitUntil(lambda: old in cancelled, timeout=5000)
    qtbot.wait(50)
    assert win.status.progress.isVisible() and win.status.job_label.text() == "Second job"
    assert "Fake1 cancelled" not in messages
    assert long.running() == "fake2"
    second.set()
    wait_idle(qtbot, win)
    assert not win.status.progress.isVisible()


def test_export_runs_beside_a_long_job(loaded, qtbot, tmp_path):
    win = loaded
    win.quant_panel.bits.setValue(4)
    wait_idle(qtbot, win)
    release = threading.Event()
    assert win.controller.long.submit(_blocking(release), "fake", "A fake job")
    path = tmp_path / "q4.npz"
    win.analysis.export_quantized(str(path))
    qtbot.waitUntil(path.exists, timeout=30000)
    qtbot.wait(50)
    assert win.controller.long.running() == "fake"  # the export did not pre-empt it
    release.set()
    wait_idle(qtbot, win)


def test_close_during_a_running_job_stops_the_workers(loaded, qtbot):
    win = loaded
    win.quant_panel.bits.setValue(4)
    win.analysis.evaluate()
    qtbot.waitUntil(lambda: win.controller.long.running() == "evaluate", timeout=5000)
    qtbot.wait(100)
    start = time.perf_counter()
    win.close()
    assert time.perf_counter() - start < 1.0
    # the cancelled evaluation leaves at its next image; nothing keeps running after
    qtbot.waitUntil(lambda: not win.controller.model_runner.thread_alive, timeout=5000)
    assert not win.controller.io_runner.thread_alive


def _fake_detections(rng, n=20):
    from squeezelens.engine.types import Detections

    xy = rng.uniform(0, 1000, (n, 2))
    wh = rng.uniform(20, 120, (n, 2))
    return Detections(np.hstack([xy, xy + wh]), rng.uniform(0, 1, n), rng.integers(0, 3, n))


def test_threshold_recount_of_a_big_split_runs_off_the_ui_thread(qtbot, monkeypatch):
    from PySide6.QtCore import QTimer

    import squeezelens.gui.facts as facts
    from squeezelens.engine.data.kitti import Dataset
    from squeezelens.engine.types import ImageRecord
    from squeezelens.gui.controller import Controller
    from squeezelens.gui.state import AppState, ModelInfo

    n = 3700
    state = AppState()
    controller = Controller(state)
    # as the window does once a model is loaded (gui.heap.settle): what is alive is exempt
    # from collections, so a full one over this test session's heap (TensorFlow and every
    # earlier test's objects: hundreds of ms holding the interpreter lock) cannot start on
    # the worker and freeze the event loop measured here
    gc.freeze()
    try:
        state.set_dataset(Dataset("/nowhere", "val", tuple(ImageRecord(f"{i:06d}", f"/nowhere/{i:06d}.png")
                                                           for i in range(n))))  # fmt: skip
        state.set_model(ModelInfo("fake", "squeezedet", 0, ("car", "pedestrian", "cyclist"),
                                  (1248, 384), ""))  # fmt: skip
        rng = np.random.default_rng(1)
        scan = controller.scan
        scan.pairs = {i: (_fake_detections(rng), _fake_detections(rng)) for i in range(n)}
        scan.key = controller.config_key()
        threads = set()
        real = facts.compare_detections
        # the first comparison waits until the event loop has ticked 3 times: off the UI
        # thread that happens at once; a recount blocking the UI thread would never see a tick
        # (the wait gives up after 10 s and the tick count below fails)
        ticked = threading.Event()

        def spy(a, b):
            threads.add(threading.current_thread().name)
            if not ticked.is_set():
                ticked.wait(10)
                ticked.set()  # after a timeout too: one wait, not one per comparison
            return real(a, b)

        monkeypatch.setattr(facts, "compare_detections", spy)
        ticks, done = [], []
        timer = QTimer(interval=5)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.timeout.connect(lambda: len(ticks) >= 3 and ticked.set())
        state.counts_changed.connect(
            lambda _row: len(state.counts) == n and not done and done.append(time.perf_counter())
        )
        start = time.perf_counter()
        timer.start()
        state.set_threshold(0.5)
        scan._recount_all()  # what the debounce timer calls: it only hands the job over
        qtbot.waitUntil(lambda: bool(done), timeout=30000)
        qtbot.waitUntil(lambda: not controller.io_runner.is_busy(), timeout=30000)
        timer.stop()
        assert threads == {"squeezelens-io"}  # every comparison ran on the io worker
        during = [t for t in ticks if start < t < done[0]]
        # the event loop kept running meanwhile (a blocking recount would tick 0 times)
        assert len(during) >= 3, f"only {len(during)} event-loop ticks during the recount"
        # (how long the UI thread may stall is measured in benchmarks/bench_gui.py, not here)
        monkeypatch.setattr(facts, "compare_detections", real)
        for i in (0, n // 2, n - 1):
            ref, other = scan.pairs[i]
            assert state.counts[i] == facts.image_counts(state.dataset.records[i],
                                                         state.model.class_names, ref, other, 0.5)  # fmt: skip
    finally:
        gc.unfreeze()
        assert controller.shutdown(2.0)
