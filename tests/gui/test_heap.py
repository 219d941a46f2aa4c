"""The GUI freezes the loaded model's objects out of full garbage collections, so that
none of those (200-350 ms with TensorFlow loaded) stalls the UI thread."""

from __future__ import annotations

import gc

import pytest

from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.gui


def test_loaded_models_are_frozen_out_of_full_collections(window, qtbot, tiny_checkpoint):
    controller = window.controller
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    controller.open_checkpoint(tiny_checkpoint)
    qtbot.waitUntil(lambda: controller.handle is not None, timeout=60000)
    wait_idle(qtbot, window)
    first = gc.get_freeze_count()
    assert first > 10000  # TensorFlow's and the model's objects
    old = controller.handle
    controller.open_checkpoint(tiny_checkpoint)  # thawed, collected and frozen again on arrival
    qtbot.waitUntil(lambda: controller.handle is not old, timeout=60000)
    wait_idle(qtbot, window)
    assert gc.get_freeze_count() > 10000


def test_a_failed_load_leaves_the_kept_model_frozen(window, qtbot, tiny_checkpoint, tmp_path):
    controller = window.controller
    controller.open_checkpoint(tiny_checkpoint)
    qtbot.waitUntil(lambda: controller.handle is not None, timeout=60000)
    wait_idle(qtbot, window)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint")
    with qtbot.waitSignal(window.state.error, timeout=30000):
        controller.open_checkpoint(bad)
    wait_idle(qtbot, window)
    assert gc.get_freeze_count() > 10000


def test_a_model_loads_with_the_collector_paused_then_frozen(window, qtbot, monkeypatch,
                                                             tiny_detector):  # fmt: skip
    """TensorFlow's import and the model's build made full collections that held the
    interpreter lock for 100-300 ms each: a frozen window while the model loads."""
    from squeezelens.engine.detector import Detector

    seen = []

    def load(path):
        seen.append(gc.isenabled())
        return tiny_detector

    monkeypatch.setattr(Detector, "from_checkpoint", staticmethod(load))
    gc.unfreeze()
    window.controller.open_checkpoint("tiny.npz")
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=60000)
    wait_idle(qtbot, window)
    assert seen == [False] and gc.isenabled()
    assert gc.get_freeze_count() > 10000


def test_the_window_imports_the_slow_initialisers_before_it_shows(qtbot, monkeypatch, tmp_path):
    """ml_dtypes (imported by TensorFlow) holds the interpreter lock 0.3-1 s while it
    registers its numpy types: that must happen before the first paint, not beside it."""
    import squeezelens.engine.tf_runtime as tf_runtime
    from squeezelens.gui import app
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import Settings

    order = []
    monkeypatch.setattr(tf_runtime, "import_lock_holders", lambda: order.append("imports"))
    win = MainWindow(settings=Settings.at(tmp_path / "s.ini"))
    qtbot.addWidget(win)
    monkeypatch.setattr(win, "show", lambda: order.append("show"))
    app.show_window(win)
    assert order == ["imports", "show"]
