"""The Pareto front tab: a search run from the window (train split, long job) gives
the CLI's front; a search opened from disk is drawn; clicking a point applies its widths."""

from __future__ import annotations

import json
import math

import pytest
from PySide6.QtCore import QPointF, Qt

from squeezelens.engine.quant import QuantConfig
from tests.gui.conftest import wait_idle
from tests.gui.test_window import _find

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def cli_search(tiny_checkpoint, tiny_kitti, tmp_path_factory):
    """``squeezelens search`` on the tiny model: widths 2 and 8, channel scale."""
    from squeezelens.cli.main import main

    out = tmp_path_factory.mktemp("search") / "out"
    assert main(["search", "--checkpoint", str(tiny_checkpoint), "--kitti-root", str(tiny_kitti),
                 "--bits", "2,8", "--scale", "channel", "--out", str(out)]) == 0  # fmt: skip
    return out


def _open(win, qtbot, path) -> None:
    panel = win.front_panel
    win.show_tab("front")
    panel.open(path)
    qtbot.waitUntil(lambda: panel.saved is not None, timeout=30000)
    wait_idle(qtbot, win)


def _click(qtbot, panel, point) -> None:
    """A real mouse click on the point's marker (log x axis)."""
    vb = panel.plot.getPlotItem().vb
    scene = vb.mapViewToScene(QPointF(math.log10(point.size_kb), point.map_r11))
    pos = panel.plot.mapFromScene(scene)
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_an_opened_front_is_drawn_and_a_click_applies_its_widths(loaded, qtbot, cli_search):
    win = loaded
    _find(win, "bitsSlider").setValue(6)
    _find(win, "seedSpin").setValue(3)
    wait_idle(qtbot, win)
    _open(win, qtbot, cli_search / "front.csv")
    panel, saved = win.front_panel, win.front_panel.saved
    assert saved.result.front and panel.widths.text() == "2,8"
    assert panel.caption.stale  # searched with channel scale, the window is on global
    _find(win, "scaleCombo").setCurrentText("channel")
    assert not panel.caption.stale and "widths 2,8" in panel.caption.text()
    mixed = [p for p in saved.result.front if p.config.overrides]
    assert mixed, "the tiny search found no mixed point"
    point = mixed[len(mixed) // 2]
    before = win.state.quant
    _click(qtbot, panel, point)
    quant = win.state.quant
    assert (quant.bits, quant.overrides) == (point.config.bits, point.config.overrides)
    assert quant.replace(bits=before.bits, overrides=()) == before  # the rest is kept
    assert _find(win, "bitsSlider").value() == point.config.bits
    wait_idle(qtbot, win)
    assert "--layer-bits" in " ".join(win.quant_panel.widget_config().to_cli_args())


def test_opening_something_else_names_the_file(loaded, qtbot, tmp_path):
    bad = tmp_path / "search.json"
    bad.write_text(json.dumps({"front": [{"size_kb": "big"}]}))
    errors: list[str] = []
    loaded.state.error.connect(errors.append)
    loaded.front_panel.open(bad)
    qtbot.waitUntil(lambda: bool(errors), timeout=10000)
    assert str(bad) in errors[0] and loaded.front_panel.saved is None


@pytest.mark.slow
def test_a_search_run_in_the_window_matches_the_cli(loaded, qtbot, cli_search, tmp_path):
    """The same widths and base on the same train split: the same front, point for point;
    run again, it resumes from its files (no new evaluation rows)."""
    win = loaded
    win.state.set_quant(QuantConfig(bits=4, scale="channel"))
    wait_idle(qtbot, win)
    panel = win.front_panel
    win.show_tab("front")
    panel.widths.setText("2,8")
    panel.folder = tmp_path / "gui-search"
    panel.run()
    assert win.controller.long.running() == "search"
    qtbot.waitUntil(lambda: panel.saved is not None, timeout=180000)
    wait_idle(qtbot, win)
    cli = json.loads((cli_search / "search.json").read_text())
    gui = json.loads((tmp_path / "gui-search" / "search.json").read_text())
    assert gui["meta"]["split"] == "train" and gui["float_map"] == cli["float_map"]
    assert [(p["size_kb"], p["map_r11"], p["layer_bits"]) for p in gui["front"]] == [
        (p["size_kb"], p["map_r11"], p["layer_bits"]) for p in cli["front"]
    ]
    rows = (tmp_path / "gui-search" / "search.csv").read_text()
    panel.saved = None
    panel.run()  # resumes: everything is read back
    qtbot.waitUntil(lambda: panel.saved is not None, timeout=60000)
    assert (tmp_path / "gui-search" / "search.csv").read_text() == rows


def test_a_session_keeps_the_front_shown(loaded, qtbot, cli_search, tmp_path):
    from squeezelens.gui.session import Session, load_session, save_session, session_dict

    win = loaded
    _open(win, qtbot, cli_search / "search.json")
    path = save_session(tmp_path / "s.json", {**session_dict(win.state), **win._window_view()})
    session = load_session(path)
    assert (session.tab, session.front_search) == ("front", str(cli_search))
    win.front_panel.saved = None
    win.show_tab("layers")
    win._apply_window_view(Session(tab=session.tab, front_search=session.front_search))
    qtbot.waitUntil(lambda: win.front_panel.saved is not None, timeout=30000)
    assert win.tab_name() == "front" and win.front_panel.saved.folder == cli_search
