""" "This image" explains what quantization changed (issue 11): each lost box's reason is the
engine's, each new box says what it is, a click frames the box; twins and head split."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from squeezelens.engine.box_reasons import explain_changes
from squeezelens.engine.compare import TwinStats, compare_detections
from squeezelens.gui.panels.image_facts_text import new_text
from tests.gui.conftest import wait_idle


@pytest.fixture
def quantized(loaded, qtbot):
    win = loaded
    win.state.set_threshold(0.05)
    win.quant_panel.bits.setValue(3)
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: win.state.result is not None and win.state.result.reasons is not None)
    return win


def _engine_reasons(win):
    result, record = win.state.result, win.state.record
    ref, other = result.ref.above(result.threshold), result.other.above(result.threshold)
    cmp = compare_detections(ref, other)
    return ref, other, cmp, explain_changes(ref, other, record.objects, cmp, win.state.protocol)


def _rows(win) -> list[str]:
    lst = win.summary.changes
    return [lst.item(k).text() for k in range(lst.count())]


def _click_row(qtbot, lst, k: int) -> None:
    rect = lst.visualItemRect(lst.item(k))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_every_lost_and_new_box_says_the_engines_reason(quantized):
    win = quantized
    ref, other, cmp, reasons = _engine_reasons(win)
    assert cmp.lost and cmp.gained  # 3 bits on the tiny model: boxes lost and added
    rows = _rows(win)
    for i in cmp.lost:
        text = f"lost: {ref.class_name(i)} {ref.scores[i]:.2f} — {reasons.of_lost(i).text()}"
        assert text in rows
    for j in cmp.gained:
        text = f"new: {other.class_name(j)} {other.scores[j]:.2f} — {new_text(reasons.of_new(j))}"
        assert text in rows
    kinds = {r.kind for r in reasons.lost}
    assert kinds & {"missed", "mislocalized", "misclassified", "duplicate", "false_positive"}


def test_reasons_follow_the_threshold_computed_off_the_ui_thread(quantized, qtbot):
    win = quantized
    win.state.set_threshold(0.3)
    assert win.state.result.threshold == pytest.approx(0.3)
    qtbot.waitUntil(lambda: win.state.result.reasons is not None)
    ref, other, cmp, reasons = _engine_reasons(win)
    assert win.state.result.reasons == reasons
    assert win.state.result.twins.to_json_dict() == TwinStats.of([cmp]).to_json_dict()


def test_clicking_a_reason_frames_its_box_and_clicking_again_clears(quantized, qtbot):
    win = quantized
    lst, canvas = win.summary.changes, win.canvas
    ref, other, cmp, _ = _engine_reasons(win)
    rows = _rows(win)
    k = next(n for n, t in enumerate(rows) if t.startswith("new:"))  # a box of the other model
    j = cmp.gained[0]
    _click_row(qtbot, lst, k)
    box = tuple(float(v) for v in other.boxes_xyxy[j])
    assert canvas.highlighted_box == box
    mark = canvas.panes["main"].mark
    assert mark.isVisible()
    r = mark.rect()
    assert (r.left(), r.top(), r.right(), r.bottom()) == pytest.approx(box)
    _click_row(qtbot, lst, k)  # the same row again: cleared
    assert canvas.highlighted_box is None and not mark.isVisible()
    i = cmp.lost[0]
    _click_row(qtbot, lst, 0)  # the first row is the first lost box
    assert canvas.highlighted_box == tuple(float(v) for v in ref.boxes_xyxy[i])
    view = canvas.graphics
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert canvas.highlighted_box is None and not mark.isVisible()
    assert lst.currentItem() is None


def test_this_image_shows_the_twins_and_the_head_split(quantized, qtbot):
    win = quantized
    twins = win.state.result.twins
    assert twins.pairs > 0
    assert win.summary.twins.text().startswith(f"Twins: {twins.pairs} matched boxes")
    assert f"mean IoU {twins.mean_iou:.2f}" in win.summary.twins.text()
    qtbot.waitUntil(lambda: win.state.image_head is not None, timeout=30000)
    error = win.state.image_head[1]
    text = win.summary.head.text()
    assert f"class probs {error.class_probs.sqnr_db:.1f} dB" in text
    assert f"box deltas {error.deltas.sqnr_db:.1f} dB" in text
    win.quant_panel.bits.setValue(5)  # another config: the old split is not shown
    assert win.summary.head.text() == "" or win.state.image_head[0][3].bits == 5
