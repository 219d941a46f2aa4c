"""The `squeezelens gui` entry point: registration, startup message, screenshot mode."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]


def test_gui_command_is_registered():
    from squeezelens.cli.main import build_parser

    args = build_parser().parse_args(
        ["gui", "--checkpoint", "x.npz", "--split", "train", "--size", "1366x768"]
    )
    assert args.command == "gui" and args.size == (1366, 768) and args.split == "train"


def test_loading_message_is_visible_while_the_model_loads(window, qtbot, tiny_checkpoint):
    window.controller.open_checkpoint(tiny_checkpoint)
    label = window.status.loading
    assert label.isVisible() and "Loading" in label.text() and "tiny.npz" in label.text()
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=60000)
    assert not label.isVisible()


@pytest.mark.slow
def test_screenshot_mode_end_to_end(tiny_checkpoint, tiny_kitti, tmp_path):
    out = tmp_path / "window.png"
    cmd = [sys.executable, "-m", "squeezelens.cli.main", "gui", "--checkpoint", str(tiny_checkpoint),
           "--kitti-root", str(tiny_kitti), "--settings", str(tmp_path / "s.ini"), "--size", "1366x768",
           "--bits", "3", "--view", "side", "--tab", "layers", "--screenshot", str(out)]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen",
                               "SQUEEZELENS_TIMING": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    marks = {ln.split()[0]: float(ln.split()[1]) for ln in proc.stdout.splitlines()
             if ln.startswith("SQUEEZELENS_")}  # fmt: skip
    visible, ready = marks["SQUEEZELENS_VISIBLE"], marks["SQUEEZELENS_READY"]
    # the window shows before TensorFlow loads: an order, not a time (how soon, 3 s on an
    # idle machine, is measured by benchmarks/bench_gui.py, never by a test)
    assert 0 < visible < ready
    assert out.exists() and out.stat().st_size > 30000
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert time.perf_counter() - start < 240
