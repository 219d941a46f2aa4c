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
