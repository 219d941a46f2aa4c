"""Clipping vs rounding in the Layers tab: the table's columns and the histogram's tails.

The window's numbers are the engine's ``clipping_report``, as ``squeezelens quantize
--report`` writes them (FILE.clipping.csv, repr floats): compared exactly.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from squeezelens.gui.panels.layers_panel import COLUMNS
from tests.gui.conftest import wait_idle
from tests.test_cli import run

pytestmark = pytest.mark.gui


def _layers_at(win, qtbot, bits: int, scale: str, grid: str = "linear") -> None:
    win.tabs.setCurrentWidget(win.layers_panel)
    win.quant_panel.scale.setCurrentText(scale)
    win.quant_panel.grid.setCurrentText(grid)
    win.quant_panel.bits.setValue(bits)
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: bool(win.analysis.clipping), timeout=30000)
    wait_idle(qtbot, win)


def _cli_rows(capsys, tmp_path, win) -> dict[str, dict]:
    """The per-layer rows (channel "all") of ``quantize --report --out``'s clipping CSV."""
    out = tmp_path / "q.npz"
    flags = list(win.state.quant.to_cli_args())
    rc, stdout, _ = run(capsys, "quantize", "--checkpoint", win.state.model.checkpoint_path,
                        *flags, "--report", "--out", out)  # fmt: skip
    assert rc == 0 and "Clipping vs rounding" in stdout
    with out.with_suffix(".clipping.csv").open() as fh:
        return {r["layer"]: r for r in csv.DictReader(fh) if r["channel"] == "all"}


def _cell(win, layer: str, column: str) -> str:
    table = win.layers_panel.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == layer)
    return table.item(row, COLUMNS.index(column)).text()


def test_clipping_columns_are_the_clis_numbers(loaded, qtbot, capsys, tmp_path):
    win = loaded
    _layers_at(win, qtbot, 3, "channel", "pow2")  # pow2 grids clip (Ristretto's rule)
    cli = _cli_rows(capsys, tmp_path, win)
    gui = win.analysis.clipping
    quantized = {n.rsplit("/", 1)[0] for n, i in win.analysis.report.items() if i.quantized}
    assert set(gui) == set(cli) == quantized and len(gui) > 20
    for layer, row in cli.items():
        t = gui[layer].total
        assert float(row["clipped_fraction"]) == float(t.clipped_fraction)
        assert float(row["clip_db"]) == float(t.clip_db)
        assert float(row["round_db"]) == float(t.round_db)
        assert float(row["sqnr_db"]) == float(t.sqnr_db)
        share = float(t.clipped_fraction)
        assert _cell(win, layer, "Clipped") == (
            "0" if t.clipped == 0 else f"{share:.2%}" if share >= 1e-4 else f"{share:.1e}"
        )
        clip_db = float(t.clip_db)
        assert _cell(win, layer, "Clip dB") == ("∞" if math.isinf(clip_db) else f"{clip_db:.1f}")
        assert _cell(win, layer, "Round dB") == f"{float(t.round_db):.1f}"
    # the two parts of the error add up to the SQNR's: 10^(-SQNR/10) = 10^(-clip/10) + 10^(-round/10)
    t = gui[next(iter(gui))].total
    parts = 10 ** (-float(t.clip_db) / 10) + 10 ** (-float(t.round_db) / 10)
    assert parts == pytest.approx(10 ** (-float(t.sqnr_db) / 10), rel=1e-9)


def test_clipping_columns_sort_by_value_and_explain_themselves(loaded, qtbot):
    from PySide6.QtCore import Qt

    win = loaded
    _layers_at(win, qtbot, 3, "channel", "pow2")
    table = win.layers_panel.table
    for name in ("Clipped", "Clip dB", "Round dB"):
        column = COLUMNS.index(name)
        tip = table.horizontalHeaderItem(column).toolTip()
        assert len(tip) > 40, name
        table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
        layers = [table.item(r, 0).text() for r in range(table.rowCount())]
        clip = win.analysis.clipping
        key = {"Clipped": lambda t: float(t.clipped_fraction),
               "Clip dB": lambda t: min(float(t.clip_db), 1e9),
               "Round dB": lambda t: float(t.round_db)}[name]  # fmt: skip
        values = [key(clip[layer].total) for layer in layers if layer in clip]
        assert values == sorted(values, reverse=True), name
    assert any(float(c.total.clipped) > 0 for c in win.analysis.clipping.values())
    table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == [
        r.name for r in win.state.layer_rows
    ]


def test_float_layers_show_dashes(loaded, qtbot):
    win = loaded
    _layers_at(win, qtbot, 4, "layer")
    assert "conv1" not in win.analysis.clipping  # the first layer stays float: dashes
    assert {_cell(win, "conv1", c) for c in ("Clipped", "Clip dB", "Round dB")} == {"–"}
    assert _cell(win, "conv12", "Round dB") != "–"
    win.state.set_quant(None)
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.analysis.clipping == {}, timeout=30000)
    for row in win.state.layer_rows:
        assert {_cell(win, row.name, c) for c in ("Clipped", "Clip dB", "Round dB")} == {"–"}


def _show_layer(win, qtbot, layer: str) -> None:
    table = win.layers_panel.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == layer)
    table.selectRow(row)
    qtbot.waitUntil(lambda: win.analysis.histogram_layer == layer, timeout=30000)
    wait_idle(qtbot, win)


def test_histogram_shades_the_clipped_tails_of_the_channel_picked(loaded, qtbot, tiny_detector):
    from squeezelens.engine.quant.clipping import channel_grid

    win = loaded
    _layers_at(win, qtbot, 3, "channel", "pow2")
    clip = win.analysis.clipping
    layer = next(n for n, c in clip.items() if np.asarray(c.channels.clipped).min() == 0
                 and np.asarray(c.channels.clipped).max() > 0)  # fmt: skip
    _show_layer(win, qtbot, layer)
    page = win.layers_panel.histograms
    channels = np.asarray(clip[layer].channels.clipped)
    for c in (int(channels.argmax()), int(channels.argmin())):  # one clips, one does not
        if win.state.histogram_channel[0] != c:
            with qtbot.waitSignal(win.state.histogram_changed, timeout=30000):
                page.channel_spin.setValue(c)
            wait_idle(qtbot, win)
        # the channel shown is the engine's channel_grid: its weights and levels
        picked = channel_grid(tiny_detector.float_weights, win.state.quant, layer, c)
        hist = win.state.histogram
        assert win.state.histogram_channel[0] == c
        assert hist.float_counts.sum() == picked.values.size
        inside = picked.levels[(picked.levels >= hist.edges[0]) & (picked.levels <= hist.edges[-1])]
        assert set(inside) <= set(hist.levels) <= set(picked.levels)
        lo, hi = float(picked.levels.min()), float(picked.levels.max())
        low, high = page.tails
        beyond = bool((picked.values < lo).any()), bool((picked.values > hi).any())
        assert (low.isVisible(), high.isVisible()) == beyond
        if high.isVisible():
            assert high.getRegion() == pytest.approx((hi, float(hist.edges[-1])))
        if low.isVisible():
            assert low.getRegion() == pytest.approx((float(hist.edges[0]), lo))
        part = clip[layer].channel(c)
        text = page.clip_info.text()
        if part.clipped:
            assert (
                any(beyond)
                and text
                == f"clipped: {float(part.clipped_fraction):.2%} of the channel {c} (shaded)"
            )
        else:
            assert text == f"nothing clipped in this channel {c}"
    win.quant_panel.scale.setCurrentText("layer")  # one grid: the whole layer, no picker
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.state.histogram_channel is None, timeout=30000)
    wait_idle(qtbot, win)
    assert not page.channel_spin.isVisible()
    total = win.analysis.clipping[layer].total
    assert page.clip_info.text().endswith("of the layer (shaded)") == bool(total.clipped)
