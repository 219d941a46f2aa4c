"""The Metrics tab's detection-error chart (issue 11): the CLI's numbers, drawn as they are,
stale with the rest of the tab, exported with their provenance."""

from __future__ import annotations

import csv
import json

import pytest
from PySide6.QtGui import QImage

from squeezelens.engine.eval.tide import ERROR_TYPES
from squeezelens.gui.panels.error_chart import MEASURES
from squeezelens.gui.panels.stale import is_greyed
from tests.gui.conftest import wait_idle

BITS = 4


@pytest.fixture
def evaluated(loaded, qtbot):
    win = loaded
    win.quant_panel.bits.setValue(BITS)
    wait_idle(qtbot, win)
    with qtbot.waitSignal(win.state.eval_changed, timeout=120000):
        win.metrics_panel.evaluate_button.click()
    wait_idle(qtbot, win)
    return win


def _plain(data):
    return json.loads(json.dumps(data))


def test_gui_errors_equal_the_cli_evaluate_errors(evaluated, tiny_checkpoint, tiny_kitti, tmp_path):
    from squeezelens.cli.main import main

    out = tmp_path / "cli"
    argv = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--kitti-root", str(tiny_kitti),
            "--split", "val", "--bits", str(BITS), "--errors", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    cli = json.loads((out / "results.json").read_text())
    ev = evaluated.state.evaluation
    gui = {m: a.to_json_dict() for m, a in ev.errors.analyses.items()}
    assert list(gui) == ["float", "quantized"]
    assert _plain(gui) == cli["errors"]["models"]  # every count and ΔAP, exactly
    assert _plain(ev.other.to_json_dict()["map"]) == cli["map"]  # the AP shown is the CLI's
    assert any(cli["errors"]["models"]["quantized"]["classes"][c][d]["counts"][t]
               for c in ev.other.classes for d in ("easy", "moderate", "hard")
               for t in ERROR_TYPES)  # fmt: skip  # a chart of zeros would prove nothing


def test_chart_bars_are_the_engines_numbers_for_the_chosen_class_difficulty_measure(evaluated):
    panel = evaluated.metrics_panel
    chart, ev = panel.errors, evaluated.state.evaluation
    analyses = list(ev.errors.analyses.values())
    for cls in ev.other.classes:
        panel.class_combo.setCurrentText(cls)
        for diff in ("easy", "hard"):
            panel.diff_combo.setCurrentText(diff)
            for measure, field in MEASURES.items():
                chart.measure.setCurrentText(measure)
                assert len(chart.bars) == 2
                for bar, analysis in zip(chart.bars, analyses):
                    values = getattr(analysis.errors[cls][diff], field)
                    assert list(bar.opts["height"]) == [values[t] for t in ERROR_TYPES]
    names = [bar.name() for bar in chart.bars]
    assert names == [ev.ref_label, ev.other_label]
    assert chart.bars[0].opts["x"][0] < chart.bars[1].opts["x"][0]  # float left of quantized


def test_error_chart_turns_stale_with_the_settings(evaluated, qtbot):
    win, chart = evaluated, evaluated.metrics_panel.errors
    assert not is_greyed(chart.plot)
    win.quant_panel.bits.setValue(BITS + 2)
    wait_idle(qtbot, win)
    assert is_greyed(chart.plot) and win.metrics_panel.caption.stale
    win.quant_panel.bits.setValue(BITS)
    wait_idle(qtbot, win)
    assert not is_greyed(chart.plot)


def test_error_export_has_the_numbers_and_their_provenance(evaluated, tmp_path):
    from squeezelens.engine.provenance import versions
    from squeezelens.gui import export

    win = evaluated
    ev, model = win.state.evaluation, win.state.model
    paths = export.export_errors(ev, win.metrics_panel.errors.plot, tmp_path / "errors")
    assert [p.suffix for p in paths] == [".png", ".svg", ".csv"]
    with paths[2].open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0])[:8] == export.ERROR_COLUMNS
    analyses = dict(zip(("Float", "Quantized"), ev.errors.analyses.values()))
    n_cells = sum(len(per) for per in analyses["Float"].errors.values())
    assert len(rows) == 2 * n_cells * len(ERROR_TYPES)
    for row in rows:
        cell = analyses[row["model"]].errors[row["class"]][row["difficulty"]]
        assert int(row["count"]) == cell.counts[row["type"]]
        assert float(row["dap_r40"]) == cell.dap_r40[row["type"]]
        assert float(row["dap_r11"]) == cell.dap_r11[row["type"]]
    assert {r["config"] for r in rows if r["model"] == "Quantized"} == {
        f"{BITS} bits · global · nearest"
    }
    assert {r["checkpoint_sha256"] for r in rows} == {model.sha256}
    assert {r["protocol"] for r in rows} == {"official"}
    assert {r["images"] for r in rows} == {str(len(win.state.dataset))}
    assert {r["squeezelens_version"] for r in rows} == {versions()["squeezelens"]}
    description = QImage(str(paths[0])).text("Description")
    assert model.sha256[:12] in description and f"{BITS} bits · global · nearest" in description
    assert model.sha256[:12] in paths[1].read_text()


def test_a_vs_b_explains_both_configs_against_the_labels(loaded, qtbot):
    from squeezelens.engine.eval.errors import analyse_errors
    from squeezelens.engine.evaluate import detect_dataset
    from squeezelens.engine.quant import QuantConfig

    win = loaded
    a, b = QuantConfig(bits=8), QuantConfig(bits=3)
    win.state.set_quant(a, b, mode="ab")
    wait_idle(qtbot, win)
    with qtbot.waitSignal(win.state.eval_changed, timeout=120000):
        win.metrics_panel.evaluate_button.click()
    wait_idle(qtbot, win)
    ev = win.state.evaluation
    assert list(ev.errors.analyses) == ["A", "B"] and ev.float_result is not None
    det, ds = win.controller.handle.detector, win.state.dataset
    expected = analyse_errors(ds.records, detect_dataset(det, ds, b), "official", det.class_names)
    assert _plain(ev.errors.analyses["B"].to_json_dict()) == _plain(expected.to_json_dict())
    assert ev.other.to_json_dict()["map"] == expected.result.to_json_dict()["map"]
    chart = win.metrics_panel.errors
    assert [bar.name() for bar in chart.bars] == ["A", "B"]


def test_plot_captions_break_at_separators_to_fit_the_width():
    from squeezelens.gui.export import caption_lines

    caption = " · ".join(f"part{k:02d} of the caption" for k in range(12))
    lines = caption_lines(caption, 600)  # 100 characters a line
    assert len(lines) > 1 and all(len(line) <= 100 for line in lines)
    assert " · ".join(lines) == caption
    assert caption_lines(caption, 10_000) == [caption]
