"""The GUI core: results go to handlers bound where the job is submitted (stale ones are
dropped in one place), AppState changes only through setters that emit, and the split
scan is a collaborator with an explicit interface."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.gui
GUI = Path(__file__).resolve().parents[2] / "gui"


def test_a_result_reaches_the_handler_bound_at_submit_unless_it_went_stale(qtbot):
    from squeezelens.gui.workers import LatestJobRunner

    runner = LatestJobRunner(("detect",), "test-runner")
    got: list[str] = []
    finished, gate = threading.Event(), threading.Event()
    runner.finished.connect(lambda _r: None)  # another listener does not change delivery
    try:

        def first(ctx):
            return "first"

        runner.submit("detect", first, "detect", on_done=got.append)
        qtbot.waitUntil(lambda: got == ["first"], timeout=5000)

        def stale(ctx):
            finished.set()
            return "stale"

        runner.submit("detect", stale, "detect", on_done=got.append)
        assert finished.wait(5)
        # wait on the thread without running the Qt event loop: the stale result stays
        # queued (not delivered) until the newer submission below makes it stale
        deadline = time.monotonic() + 5
        while runner.is_busy() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not runner.is_busy()
        runner.submit("detect", lambda ctx: gate.wait(5) and "last", "detect",
                      on_done=got.append)  # fmt: skip
        gate.set()
        qtbot.waitUntil(lambda: len(got) == 2, timeout=5000)
        qtbot.wait(50)
        assert got == ["first", "last"]  # the stale value was dropped on its way
    finally:
        assert runner.shutdown(2.0)


def test_partial_values_go_to_the_partial_handler(qtbot):
    from squeezelens.gui.workers import LatestJobRunner

    runner = LatestJobRunner(("scan",), "test-runner")
    parts, done = [], []
    try:

        def steps(ctx):
            yield from (1, 2, 3)

        runner.submit("scan", steps, "scan", on_partial=parts.append, on_done=done.append)
        qtbot.waitUntil(lambda: done == [3], timeout=5000)
        assert parts == [1, 2, 3]
    finally:
        assert runner.shutdown(2.0)


def test_no_handler_is_found_by_building_its_name():
    pattern = re.compile(r"getattr\(\s*self\s*,\s*f[\"']")
    offenders = [p.name for p in GUI.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_app_state_fields_are_typed_and_written_only_by_their_setters(qtbot):
    from squeezelens.gui.state import AppState, Field

    state = AppState()
    fields = {k: v for k, v in vars(AppState).items() if isinstance(v, Field)}
    assert {"model", "dataset", "quant", "selected_layer", "evaluation", "sweep"} <= set(fields)
    for name in fields:
        with pytest.raises(AttributeError, match="setter"):
            setattr(state, name, getattr(state, name))
        assert "Any" not in AppState.__annotations__[name], name
    with pytest.raises(TypeError):
        state.counts[0] = None  # a read-only view
    emitted = []
    state.layer_selected.connect(emitted.append)
    state.select_layer("fire2/squeeze1x1")
    assert emitted == ["fire2/squeeze1x1"] and state.selected_layer == "fire2/squeeze1x1"


def test_the_first_quantized_layer_is_selected_through_the_setter(window, qtbot, tiny_detector,
                                                                  tiny_kitti):  # fmt: skip
    win = window
    win.tabs.setCurrentWidget(win.layers_panel)
    selected, layers_jobs = [], []
    win.state.layer_selected.connect(selected.append)
    win.controller.analysis_runner.finished.connect(
        lambda r: layers_jobs.append(r.label) if r.label == "layers" else None
    )
    win.controller.use_detector(tiny_detector)
    win.controller.open_dataset(tiny_kitti, "val")
    qtbot.waitUntil(lambda: bool(win.state.selected_layer), timeout=60000)
    wait_idle(qtbot, win)
    assert selected == [win.state.selected_layer]  # announced, not written around the setter
    assert layers_jobs.count("layers") == 1  # choosing it did not compute its histogram twice


class _FakeHandle:
    """What the scan needs of a loaded model: needs_image, detect, int8."""

    int8 = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def needs_image(self, path, config, int8) -> bool:
        return False

    def detect(self, path, config, calibration, int8=False, image=None, keep=True):
        from squeezelens.engine.types import Detections

        self.calls.append((path, config))
        boxes = np.array([[10.0, 10.0, 50.0, 40.0]] * (1 if config is None else 2))
        return Detections(boxes, np.full(len(boxes), 0.9), np.zeros(len(boxes), int))


def test_the_split_scan_works_from_its_explicit_interface(qtbot):
    from squeezelens.engine.data.kitti import Dataset
    from squeezelens.engine.quant import QuantConfig
    from squeezelens.engine.types import ImageRecord
    from squeezelens.gui.model_handle import ConfigKey
    from squeezelens.gui.split_scan import SplitScan
    from squeezelens.gui.state import AppState
    from squeezelens.gui.workers import LatestJobRunner

    state = AppState()
    model, io = LatestJobRunner(("scan",), "m"), LatestJobRunner(("recount",), "io")
    handle, key = _FakeHandle(), ConfigKey(1, None, QuantConfig(bits=4), False)
    scan = SplitScan(state, model, io, lambda: (handle, key), lambda: None)
    try:
        records = tuple(ImageRecord(f"{i:06d}", f"/nowhere/{i:06d}.png") for i in range(11))
        state.set_dataset(Dataset(Path("/nowhere"), "images", records))
        scan.restart()
        qtbot.waitUntil(lambda: len(state.counts) == 11, timeout=10000)
        assert scan.key == key and set(scan.pairs) == set(range(11))
        assert all((c.ref, c.other, c.changes) == (1, 2, 1) for c in state.counts.values())
        state.set_threshold(0.95)
        scan.recount_later()
        qtbot.waitUntil(lambda: all(c.ref == 0 for c in state.counts.values()), timeout=10000)
    finally:
        scan.stop()
        assert model.shutdown(2.0) and io.shutdown(2.0)
