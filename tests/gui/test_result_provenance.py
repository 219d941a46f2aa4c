"""Results say which config they belong to, turn stale when the settings change, and their
exports record where the numbers come from (issue 10, items 2 and 3)."""

from __future__ import annotations

import csv
import json

import pytest
from PySide6.QtGui import QImage

from squeezelens.gui.panels.stale import is_greyed
from tests.gui.conftest import wait_idle


def _evaluate(win, qtbot, bits: int = 3) -> None:
    win.quant_panel.bits.setValue(bits)
    wait_idle(qtbot, win)
    with qtbot.waitSignal(win.state.eval_changed, timeout=120000):
        win.metrics_panel.evaluate_button.click()
    wait_idle(qtbot, win)


@pytest.fixture
def evaluated(loaded, qtbot):
    _evaluate(loaded, qtbot)
    return loaded


def test_metrics_say_their_config_and_turn_stale_when_settings_change(evaluated, qtbot):
    win, panel = evaluated, evaluated.metrics_panel
    caption = panel.caption.text()
    n = len(win.state.dataset)
    assert "Quantized (3 bits · global · nearest)" in caption and "Float (float)" in caption
    assert f"{n} images of val" in caption and "official protocol" in caption
    assert not panel.is_stale() and not is_greyed(panel.table) and not is_greyed(panel.plot)
    names = [item.name() for item in panel.plot.listDataItems()]
    assert any(name.startswith("Quantized (3 bits · global · nearest): AP R11") for name in names)
    win.quant_panel.bits.setValue(5)  # another config: the numbers shown are not its
    wait_idle(qtbot, win)
    assert panel.is_stale() and is_greyed(panel.table) and is_greyed(panel.plot)
    assert panel.caption.text().startswith("settings changed — Evaluate again")
    assert "3 bits" in panel.caption.text()  # still says what the numbers were for
    win.quant_panel.bits.setValue(3)  # back to the evaluated config: current again
    wait_idle(qtbot, win)
    assert not panel.is_stale() and not is_greyed(panel.table)
    panel.protocol_combo.setCurrentText("squeezedet")  # another protocol: stale too
    assert win.state.protocol == "squeezedet" and panel.is_stale()


def test_an_evaluation_uses_the_chosen_protocol(loaded, qtbot):
    loaded.metrics_panel.protocol_combo.setCurrentText("squeezedet")
    _evaluate(loaded, qtbot)
    ev = loaded.state.evaluation
    assert ev.ref.protocol == ev.other.protocol == "squeezedet"
    assert "squeezedet protocol" in loaded.metrics_panel.caption.text()


def test_ab_size_label_follows_the_config_being_edited(loaded, qtbot):
    from squeezelens.engine.quant import QuantConfig

    win, panel = loaded, loaded.quant_panel
    win.state.set_quant(QuantConfig(bits=8), QuantConfig(bits=4), mode="ab")
    wait_idle(qtbot, win)
    panel.edit_b.click()
    assert win.state.editing == "b" and "at 4 bits" in panel.size_label.text()
    panel.edit_a.click()
    assert win.state.editing == "a" and "at 8 bits" in panel.size_label.text()


def test_pr_export_has_one_row_per_point_with_its_config_and_provenance(loaded, qtbot, tmp_path):
    from squeezelens.engine.provenance import versions
    from squeezelens.gui import export

    win = loaded
    _evaluate(win, qtbot, bits=6)  # enough bits for the quantized curves to keep points
    ev, model = win.state.evaluation, win.state.model
    paths = export.export_pr(ev, win.metrics_panel.plot, tmp_path / "pr")
    assert [p.suffix for p in paths] == [".png", ".svg", ".csv"]
    with paths[2].open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0])[:8] == export.PR_COLUMNS
    points = sum(ev.ref.ap[c][d].n_points + ev.other.ap[c][d].n_points
                 for c in ev.ref.classes for d in export.DIFFS)  # fmt: skip
    assert len(rows) == points
    assert {r["config"] for r in rows if r["model"] == "Quantized"} == {"6 bits · global · nearest"}
    assert {r["config"] for r in rows if r["model"] == "Float"} == {"float"}
    assert {r["checkpoint_sha256"] for r in rows} == {model.sha256}
    assert {r["protocol"] for r in rows} == {"official"}
    assert {r["images"] for r in rows} == {str(len(win.state.dataset))}
    assert {r["squeezelens_version"] for r in rows} == {versions()["squeezelens"]}
    cls, diff = next((c, d) for c in ev.ref.classes for d in export.DIFFS
                     if ev.ref.ap[c][d].n_points)  # fmt: skip
    curve = ev.ref.ap[cls][diff]
    mine = [r for r in rows if (r["model"], r["class"], r["difficulty"]) == ("Float", cls, diff)]
    assert [int(r["point"]) for r in mine] == list(range(curve.n_points))
    assert [float(r["recall"]) for r in mine] == pytest.approx(curve.recall[: curve.n_points])
    assert float(mine[0]["precision"]) == pytest.approx(curve.precision[0], abs=1e-6)
    description = QImage(str(paths[0])).text("Description")
    assert model.sha256[:12] in description and "official protocol" in description
    assert "6 bits · global · nearest" in description
    assert model.sha256[:12] in paths[1].read_text()  # the SVG's <desc>


def test_ap_table_export_records_checkpoint_configs_images_protocol_baseline(evaluated, tmp_path):
    from squeezelens.gui import export

    win = evaluated
    ev, model = win.state.evaluation, win.state.model
    csv_path, json_path = export.export_ap_table(ev, tmp_path / "ap")
    data = json.loads(json_path.read_text())
    prov = data["provenance"]
    assert prov["checkpoint"] == {"path": model.checkpoint_path, "sha256": model.sha256}
    assert prov["images"] == len(win.state.dataset) and prov["split"] == "val"
    assert prov["protocol"] == "official"
    assert prov["models"] == {"Float": "float", "Quantized": "3 bits · global · nearest"}
    assert prov["configs"]["Quantized"]["bits"] == 3 and prov["configs"]["Float"] is None
    assert prov["float_map_r11"] == pytest.approx(ev.ref.map["r11"]["all"])
    assert "squeezelens" in prov["versions"]
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["config"] for r in rows} == {"float", "3 bits · global · nearest"}
    assert {r["checkpoint_sha256"] for r in rows} == {model.sha256}


def test_gui_sweep_scores_with_the_chosen_protocol_and_exports_its_provenance(
    loaded, qtbot, tmp_path
):
    from squeezelens.gui import export

    win, panel = loaded, loaded.sweep_panel
    win.tabs.setCurrentWidget(panel)
    panel.fork.setChecked(True)  # the fork's curves: the fork's protocol
    assert panel.protocol.currentText() == "squeezedet"
    panel.fork.setChecked(False)
    panel.protocol.setCurrentText("squeezedet")
    panel.bits_from.setValue(4)
    panel.bits_to.setValue(4)
    panel.run()
    qtbot.waitUntil(lambda: not win.state.sweep.running and bool(win.state.sweep.points),
                    timeout=120000)  # fmt: skip
    wait_idle(qtbot, win)
    (folder,) = win.analysis.sweep_root.iterdir()
    assert json.loads((folder / "sweep_meta.json").read_text())["protocol"] == "squeezedet"
    caption = panel.caption.text()
    assert "mAP vs bits 4–4" in caption and "squeezedet protocol" in caption
    assert not panel.is_stale()
    paths = export.export_sweep(win.state.sweep, panel.plot, tmp_path / "sweep")
    assert [p.suffix for p in paths] == [".png", ".svg", ".csv", ".json"]
    with paths[2].open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["protocol"] for r in rows} == {"squeezedet"}
    assert {r["checkpoint_sha256"] for r in rows} == {win.state.model.sha256}
    assert all(r["config"] for r in rows if r["bits"] != "float")  # each curve's config
    assert json.loads(paths[3].read_text())["provenance"]["protocol"] == "squeezedet"
    assert "squeezedet protocol" in QImage(str(paths[0])).text("Description")
    win.quant_panel.rounding.setCurrentText("stochastic")  # another sweep now: stale
    wait_idle(qtbot, win)
    assert panel.is_stale() and is_greyed(panel.plot)
    assert panel.caption.text().startswith("settings changed — Run sweep again")
