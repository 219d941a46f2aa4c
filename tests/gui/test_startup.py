"""Start-up tells the truth: what opens (the bundled sample unless asked otherwise), the
config the controls show is the one in use, and messages stay until the user acts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.gui.conftest import wait_idle, write_kitti

pytestmark = pytest.mark.gui


def _args(**kw) -> SimpleNamespace:
    base = {"checkpoint": None, "kitti_root": None, "images": None, "split": "val",
            "settings": None, "size": None, "screenshot": None}  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def _remember(ini: Path, checkpoint: Path, kitti: Path, split: str = "val", **values) -> None:
    from squeezelens.gui.settings import Settings

    settings = Settings.at(ini)
    settings.add_recent("checkpoint", str(checkpoint))
    settings.add_recent("kitti", str(kitti))
    settings.set("split", split)
    for key, value in values.items():
        settings.set(key, value)
    settings.sync()


def _start(qtbot, monkeypatch, args) -> tuple:
    """Run the app's start-up (no event loop of its own); returns the window and the opens
    it asked for (recorded instead of loading)."""
    from squeezelens.gui import app
    from squeezelens.gui.controller import Controller

    opened: list[tuple] = []
    monkeypatch.setattr(
        Controller, "open_checkpoint", lambda self, p: opened.append(("ckpt", str(p)))
    )
    monkeypatch.setattr(Controller, "open_dataset", lambda self, p, split="val", **kw:
                        opened.append(("data", str(p), split, kw.get("remembered", False))))  # fmt: skip
    window = app.start(args)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: len(opened) >= 2, timeout=5000)
    return window, opened


def test_plain_gui_opens_the_bundled_sample_even_with_last_files(qtbot, monkeypatch, tmp_path,
                                                                 tiny_checkpoint, tiny_kitti):  # fmt: skip
    from squeezelens.gui.startup import bundled

    ini = tmp_path / "s.ini"
    _remember(ini, tiny_checkpoint, tiny_kitti)
    window, opened = _start(qtbot, monkeypatch, _args(settings=str(ini)))
    ckpt, root = bundled()
    assert ckpt and root  # this install has the sample
    assert ("ckpt", ckpt) in opened and ("data", root, "val", False) in opened
    assert all(str(tiny_checkpoint) not in str(o) for o in opened)
    window.close()


def test_reopen_last_is_a_setting_and_a_menu_entry(qtbot, monkeypatch, tmp_path,
                                                   tiny_checkpoint, tiny_kitti):  # fmt: skip
    from squeezelens.gui.startup import REOPEN_LAST

    ini = tmp_path / "s.ini"
    _remember(ini, tiny_checkpoint, tiny_kitti, split="train", **{REOPEN_LAST: True})
    window, opened = _start(qtbot, monkeypatch, _args(settings=str(ini)))
    assert ("ckpt", str(tiny_checkpoint)) in opened
    assert ("data", str(tiny_kitti), "train", True) in opened  # a remembered split
    a = window.ui_actions
    assert a.reopen_at_start.isChecked()
    a.reopen_at_start.setChecked(False)
    assert window.settings.value(REOPEN_LAST, True, bool) is False
    opened.clear()
    a.reopen_last.trigger()  # the menu entry, whatever the setting
    assert ("ckpt", str(tiny_checkpoint)) in opened
    file_menu = window.menuBar().actions()[0].menu()
    assert a.reopen_last in file_menu.actions() and a.reopen_at_start in file_menu.actions()
    window.close()


def test_a_remembered_folder_that_is_gone_falls_back_with_a_notice(qtbot, monkeypatch, tmp_path,
                                                                   tiny_checkpoint):  # fmt: skip
    from squeezelens.gui.startup import REOPEN_LAST, bundled

    gone = tmp_path / "moved_away"
    ini = tmp_path / "s.ini"
    _remember(ini, tiny_checkpoint, gone, **{REOPEN_LAST: True})
    window, opened = _start(qtbot, monkeypatch, _args(settings=str(ini)))
    assert ("data", bundled()[1], "val", True) in opened
    assert window.banner.isVisible() and "moved_away" in window.banner.text
    assert "no longer exists" in window.banner.text
    window.state.message.emit("Loaded something")  # a later message does not hide it
    assert "moved_away" in window.banner.text
    window.close()


def test_the_window_starts_quantized_at_what_the_controls_show(loaded, qtbot, tiny_detector):
    import numpy as np
    from PySide6.QtGui import QGuiApplication

    from squeezelens.engine.quant import QuantConfig

    win = loaded
    panel = win.quant_panel
    assert win.state.quant == QuantConfig() and win.state.other_config.bits == panel.bits.value()
    assert panel.bits_label.text() == "8 bits" and not panel.float_button.isChecked()
    win.ui_actions.copy_command.trigger()
    assert "--bits 8" in QGuiApplication.clipboard().text()
    expected = tiny_detector.detect(win.state.record.path, QuantConfig(bits=8))
    assert np.allclose(win.state.result.other.scores, expected.scores)  # the boxes are 8-bit
    panel.reset_to_float()  # float mode reads as float, not as the slider's last value
    assert win.state.quant is None and panel.bits_label.text() == "float"
    panel.bits.setValue(6)
    assert win.state.quant.bits == 6 and panel.bits_label.text() == "6 bits"


def test_an_error_stays_until_dismissed_or_the_user_acts(window, qtbot):
    s, banner = window.state, window.banner
    s.error.emit("split file test.txt not found")
    s.message.emit("Loaded model.npz: SqueezeDet")  # automatic progress: does not hide it
    s.loading.emit("")
    assert banner.isVisible() and "test.txt" in banner.text
    s.error.emit("second problem")  # both stay, newest first
    assert banner.text.splitlines() == ["second problem", "split file test.txt not found"]
    banner.rows[0].close_button.click()
    assert banner.text == "split file test.txt not found"
    window.ui_actions.next_image.trigger()  # the user's next action supersedes it
    assert not banner.isVisible()


def test_an_explicit_missing_split_is_an_error_and_is_not_remembered(qtbot, tmp_path):
    from squeezelens.gui import app
    from squeezelens.gui.settings import Settings

    root = write_kitti(tmp_path / "kitti", n=2, n_train=1)
    ini = tmp_path / "s.ini"
    window = app.start(_args(kitti_root=str(root), split="test", settings=str(ini)))
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: "test.txt" in window.banner.text, timeout=10000)
    wait_idle(qtbot, window)
    assert "test.txt" in window.banner.text  # not replaced by a later message
    window.close()
    assert Settings.at(ini).value("split", "val", str) != "test"


def test_a_remembered_split_the_folder_lacks_opens_val_and_says_so(window, qtbot, tmp_path):
    root = write_kitti(tmp_path / "kitti", n=2, n_train=1)
    with qtbot.waitSignal(window.state.notice, timeout=10000) as notice:
        window.controller.open_dataset(root, "test", remembered=True)
    qtbot.waitUntil(lambda: window.state.dataset is not None, timeout=10000)
    assert window.state.dataset.split == "val" and len(window.state.dataset) == 2
    assert "'test'" in notice.args[0] and "'val'" in notice.args[0]
    assert "'test'" in window.banner.text


def test_launch_timing_markers_only_when_asked(qtbot, monkeypatch, tmp_path, capsys):
    from squeezelens.gui.app import TIMING_ENV

    monkeypatch.delenv(TIMING_ENV, raising=False)
    window, _ = _start(qtbot, monkeypatch, _args(settings=str(tmp_path / "a.ini")))
    window.close()
    assert "SQUEEZELENS_" not in capsys.readouterr().out
    monkeypatch.setenv(TIMING_ENV, "1")
    window, _ = _start(qtbot, monkeypatch, _args(settings=str(tmp_path / "b.ini")))
    window.close()
    assert capsys.readouterr().out.startswith("SQUEEZELENS_VISIBLE ")
