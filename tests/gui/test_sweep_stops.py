"""A sweep never ends silently (issue 10, item 10): repeated sweeps with cancel, restart and
setting changes stay consistent; a sweep that stops says why in the window; screenshot mode
names the step it was still waiting for and exits non-zero."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

from squeezelens.gui.screenshot import EXIT_STOPPED, EXIT_TIMEOUT, ScreenshotDriver
from tests.gui.conftest import wait_idle


def _keys(win) -> set[str]:
    from squeezelens.engine.sweep import sweep_points

    panel = win.sweep_panel
    return {p.key for p in sweep_points(panel.configs(), repeats=panel.repeats.value())}


def test_cancel_restart_and_setting_changes_during_sweeps(loaded, qtbot):
    win, panel = loaded, loaded.sweep_panel
    win.tabs.setCurrentWidget(panel)
    panel.bits_from.setValue(2)
    panel.bits_to.setValue(6)
    for bits in (3, 5, 4):
        panel.run()
        qtbot.wait(150)
        win.quant_panel.bits.setValue(bits)  # the boxes follow while the sweep runs
        qtbot.wait(100)
        win.analysis.cancel()
        qtbot.wait(50)
    panel.run()
    keys = _keys(win)  # the last sweep's points
    win.quant_panel.rounding.setCurrentText("stochastic")  # during the last sweep
    qtbot.waitUntil(lambda: not win.state.sweep.running, timeout=180000)
    wait_idle(qtbot, win)
    sweep = win.state.sweep
    assert sweep.failure == "" and sweep.points
    assert {r["key"] for r in sweep.points} == keys  # every point, none of a cancelled sweep
    assert "points" in panel.status.text() and "stopped" not in panel.status.text()
    assert panel.is_stale()  # the rounding changed after it started


def test_a_sweep_that_cannot_finish_says_why(loaded, qtbot):
    from squeezelens.gui.analysis import sweep_dir

    win, panel = loaded, loaded.sweep_panel
    win.tabs.setCurrentWidget(panel)
    ds, model = win.state.dataset, win.state.model
    folder = sweep_dir(win.analysis.sweep_root, model.sha256, str(ds.root), ds.split, "official")
    folder.mkdir(parents=True)
    meta = {"checkpoint_sha256": "another", "kitti_root": str(ds.root), "split": ds.split,
            "protocol": "official", "input_size": list(model.input_size)}  # fmt: skip
    (folder / "sweep_meta.json").write_text(json.dumps(meta))
    panel.bits_from.setValue(4)
    panel.bits_to.setValue(4)
    with qtbot.waitSignal(win.state.error, timeout=60000) as error:
        panel.run()
    qtbot.waitUntil(lambda: not win.state.sweep.running, timeout=60000)
    assert "another checkpoint" in error.args[0]
    assert win.state.sweep.failure.startswith("stopped: ") and "another" in win.state.sweep.failure
    assert "stopped: " in panel.status.text()  # stays in the Sweep tab after the banner
    shutil.rmtree(folder)
    panel.run()
    win.analysis.cancel()
    qtbot.waitUntil(lambda: not win.state.sweep.running, timeout=60000)
    assert win.state.sweep.failure == "cancelled" and "cancelled" in panel.status.text()


def _driver(win, **args) -> ScreenshotDriver:
    base = {"screenshot": None, "image": None, "bits": None, "view": None, "tab": "sweep",
            "evaluate": False, "sweep": "both", "sweep_bits": (2, 9), "screenshot_timeout": 1.0}  # fmt: skip
    driver = ScreenshotDriver(win, SimpleNamespace(**{**base, **args}))
    driver._save = lambda: None  # keep the window open: the test looks at it
    return driver


def test_screenshot_mode_names_the_step_it_timed_out_on(loaded, qtbot, capsys):
    win = loaded
    errors = []
    win.state.error.connect(errors.append)
    driver = _driver(win, screenshot_timeout=4.0)
    qtbot.waitUntil(lambda: driver.exit_code != 0, timeout=60000)
    assert driver.exit_code == EXIT_TIMEOUT
    assert "waiting for the 'sweep' step: the sweep job was still running" in errors[-1]
    assert "--screenshot-timeout" in capsys.readouterr().err
    win.analysis.cancel()
    wait_idle(qtbot, win)


def test_screenshot_mode_shows_a_stopped_sweep_and_exits_non_zero(loaded, qtbot):
    win = loaded
    win.analysis.sweep = lambda *a, **k: win.state.set_sweep(
        [], False, failure="stopped: disk full"
    )
    driver = _driver(win, screenshot_timeout=60.0)
    qtbot.waitUntil(lambda: driver.exit_code != 0, timeout=30000)
    assert driver.exit_code == EXIT_STOPPED and "disk full" in win.banner.text
