"""'Copy as command' reproduces what the window shows, number for number.

The fixture's KITTI folder has a val split (shown and evaluated) and a train
split of OTHER images, so a command that calibrated on another set than the
window would give other activation ranges or another INT8 model, and other
boxes: (a) weights only, (b) activation bits, (c) INT8.
"""

from __future__ import annotations

import json
import shlex

import pytest

from squeezelens.cli.main import main
from tests.gui.conftest import wait_idle
from tests.gui.test_window import _find

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _copied(win, qtbot) -> dict[str, list[str]]:
    """The copied command lines by subcommand (detect, evaluate), as argv lists."""
    from PySide6.QtGui import QGuiApplication

    win.ui_actions.copy_command.trigger()
    lines = [ln for ln in QGuiApplication.clipboard().text().splitlines() if not ln.startswith("#")]
    argvs = [shlex.split(line) for line in lines]
    assert all(a[0] == "squeezelens" for a in argvs), lines
    return {a[1]: a[1:] for a in argvs}


def _run_detect(argv: list[str], capsys) -> list[dict]:
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one image: the one shown
    return json.loads(out[0])["detections"]


def _run_evaluate(argv: list[str], out_dir) -> dict:
    assert main([*argv, "--out", str(out_dir)]) == 0
    return json.loads((out_dir / "results.json").read_text())


def _evaluate_in_window(win, qtbot) -> dict:
    win.analysis.evaluate()
    qtbot.waitUntil(lambda: win.state.evaluation.other is not None, timeout=120000)
    wait_idle(qtbot, win)
    return win.state.evaluation.other.to_json_dict()


def _assert_reproduced(win, qtbot, capsys, tmp_path) -> list[str]:
    argv = _copied(win, qtbot)
    assert set(argv) == {"detect", "evaluate"}
    shown = win.state.result.other.to_records()
    assert len(shown) > 0
    assert _run_detect(argv["detect"], capsys) == shown  # every box, score and class, exactly
    window_ap = _evaluate_in_window(win, qtbot)
    cli = _run_evaluate(argv["evaluate"], tmp_path / "evaluate")
    assert cli["ap"] == window_ap["ap"] and cli["map"] == window_ap["map"]
    assert "--errors" in argv["evaluate"]  # and the error chart's numbers with it
    errors = win.state.evaluation.errors.analyses
    assert cli["errors"]["models"]["quantized"]["mean_dap_r40"] == errors["quantized"].mean_dap(
        "r40"
    )
    return argv["detect"]


def test_copied_command_reproduces_weights_only(loaded, qtbot, capsys, tmp_path):
    win = loaded
    _find(win, "bitsSlider").setValue(5)
    wait_idle(qtbot, win)
    detect = _assert_reproduced(win, qtbot, capsys, tmp_path)
    assert "--calib-count" not in detect  # nothing calibrates
    assert "--protocol" not in _copied(win, qtbot)["evaluate"]  # the CLI's default


def test_copied_command_scores_with_the_protocol_chosen(loaded, qtbot, tmp_path):
    win = loaded
    _find(win, "bitsSlider").setValue(4)
    win.metrics_panel.protocol_combo.setCurrentText("squeezedet")
    wait_idle(qtbot, win)
    argv = _copied(win, qtbot)["evaluate"]
    assert argv[argv.index("--protocol") + 1] == "squeezedet"
    window = _evaluate_in_window(win, qtbot)
    cli = _run_evaluate(argv, tmp_path / "evaluate")
    assert cli["protocol"] == win.state.evaluation.other.protocol == "squeezedet"
    assert cli["ap"] == window["ap"] and cli["map"] == window["map"]


def test_copied_command_reproduces_activation_bits(loaded, qtbot, capsys, tmp_path, tiny_kitti):
    win = loaded
    _find(win, "bitsSlider").setValue(8)
    _find(win, "activationBitsSpin").setValue(5)
    wait_idle(qtbot, win)
    detect = _assert_reproduced(win, qtbot, capsys, tmp_path)
    assert detect[detect.index("--kitti-root") + 1] == str(tiny_kitti)  # its train split calibrates
    assert "--calib-count" in detect


def test_copied_command_reproduces_int8(loaded, qtbot, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path / "cache"))
    win = loaded
    _find(win, "int8Check").setChecked(True)
    qtbot.waitUntil(lambda: win.controller.handle.int8 is not None, timeout=180000)
    wait_idle(qtbot, win, timeout=60000)
    detect = _assert_reproduced(win, qtbot, capsys, tmp_path)
    assert "--int8" in detect and "--calib-count" in detect
