"""Run › Compute… (issue 13, item 5): the setting is saved, Ray's absence disables the Ray
choices and fails a Ray job with a one-line message naming the extra, a cluster address
that does not answer fails at once with a one-line message, and the old sweep is kept."""

from __future__ import annotations

import sys
import time

import pytest

from squeezelens.gui.compute_pool import ComputeChoice, RayCompute, ray_installed
from squeezelens.gui.compute_settings import ComputeDialog, load_choice, save_choice
from squeezelens.gui.settings import Settings
from tests.gui.conftest import wait_idle


@pytest.fixture
def no_ray(monkeypatch):
    """Ray's import fails, as where the ``distributed`` extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)


def test_choice_round_trips_through_settings_and_describes_itself(tmp_path):
    path = tmp_path / "s.ini"
    assert load_choice(Settings.at(path)) == ComputeChoice()  # the default: this process
    for choice in (ComputeChoice("workers", 3), ComputeChoice("cluster", address="10.0.0.5:6379")):
        save_choice(Settings.at(path), choice)
        assert load_choice(Settings.at(path)) == choice
    assert ComputeChoice("workers", 3).describe() == "3 local Ray workers"
    assert ComputeChoice("cluster", address="auto").describe() == "the Ray cluster at auto"
    assert ComputeChoice().describe() == "this process" and ComputeChoice().spec() is None
    assert ComputeChoice().place() == "in this process"
    assert ComputeChoice("workers", 1).place() == "on 1 local Ray worker"
    save_choice(Settings.at(path), ComputeChoice("cluster", address="  "))  # unusable: default
    assert load_choice(Settings.at(path)) == ComputeChoice()


def test_window_applies_and_saves_the_setting(window, tmp_path):
    assert window.compute.label.text() == "in this process"
    assert window.compute.action in window.menuBar().actions()[2].menu().actions()  # Run menu
    window.compute.apply(ComputeChoice("workers", 2))
    assert window.controller.compute.choice == ComputeChoice("workers", 2)
    assert window.compute.label.text() == "on 2 local Ray workers"
    assert load_choice(Settings.at(tmp_path / "settings.ini")) == ComputeChoice("workers", 2)


def test_dialog_refuses_an_empty_address_with_one_line(qtbot):
    dialog = ComputeDialog(ComputeChoice("cluster", address="auto"))
    qtbot.addWidget(dialog)
    if not dialog.cluster.isEnabled():
        pytest.skip("Ray is not installed")
    dialog.address.setText("")
    dialog.accept()
    assert dialog.result() != ComputeDialog.DialogCode.Accepted
    assert "address" in dialog.problem.text() and "\n" not in dialog.problem.text()
    dialog.address.setText("headnode:6379")
    dialog.accept()
    assert dialog.choice() == ComputeChoice("cluster", 2, "headnode:6379")


def test_without_ray_the_ray_choices_are_disabled_and_name_the_extra(no_ray, qtbot):
    assert not ray_installed()
    dialog = ComputeDialog(ComputeChoice("workers", 4))
    qtbot.addWidget(dialog)
    for widget in (dialog.local, dialog.cluster, dialog.workers, dialog.address):
        assert not widget.isEnabled()
        assert "pip install 'squeezelens[distributed]'" in widget.toolTip()
    assert dialog.process.isChecked() and dialog.choice() == ComputeChoice("process", 4, "auto")


def _sweep_fails(win, qtbot, choice: ComputeChoice) -> tuple[str, float]:
    """Run a 1-point sweep after one that succeeded in this process; (error, seconds)."""
    panel, errors = win.sweep_panel, []
    win.state.error.connect(errors.append)
    panel.bits_from.setValue(4)
    panel.bits_to.setValue(4)
    panel.run()
    qtbot.waitUntil(lambda: not win.state.sweep.running, timeout=120000)
    wait_idle(qtbot, win)
    assert win.state.sweep.points and not errors
    win.compute.apply(choice)
    panel.bits_from.setValue(3)
    start = time.monotonic()
    panel.run()
    qtbot.waitUntil(lambda: bool(errors), timeout=60000)
    seconds = time.monotonic() - start
    wait_idle(qtbot, win)
    sweep = win.state.sweep
    assert not sweep.running and sweep.failure.startswith("stopped: ")
    assert not sweep.points  # nothing half-computed is shown
    assert win.banner.isVisible() and errors[-1] in win.banner.text  # the lasting error
    assert len(errors) == 1 and "\n" not in errors[0]
    return errors[0], seconds


def test_a_ray_sweep_without_ray_says_which_extra_to_install(loaded, qtbot, no_ray):
    error, _ = _sweep_fails(loaded, qtbot, ComputeChoice("workers", 2))
    assert "pip install 'squeezelens[distributed]'" in error


def test_a_cluster_address_that_does_not_answer_fails_at_once(loaded, qtbot):
    pytest.importorskip("ray")
    error, seconds = _sweep_fails(loaded, qtbot, ComputeChoice("cluster", address="127.0.0.1:1"))
    assert error.startswith("cannot reach the Ray cluster at 127.0.0.1:1")
    assert seconds < 30  # ray.init alone would retry it for minutes
    assert loaded.controller.compute._runtime is None  # nothing half-started is kept


def test_changing_the_setting_while_idle_stops_nothing_it_does_not_hold():
    compute = RayCompute()
    compute.set_choice(ComputeChoice("workers", 2))
    compute.set_choice(ComputeChoice())
    compute.shutdown(timeout=1)
    assert compute.choice == ComputeChoice() and compute._pool is None
