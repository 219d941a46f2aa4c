"""The "most hurt" workflow (issue 10, item 5): sorts by what users mean, a badge that is
never cut off, the true-positive-lost filter, a sortable layer table with the most
sensitive layers highlighted and a noise-aware "mAP drop" column."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QStyleOptionViewItem

from squeezelens.gui.panels.image_rows import BADGE_ROLE, SORTS
from squeezelens.gui.state import ImageCounts
from tests.gui.conftest import wait_idle

# row 0: many changes, none of them a lost true positive (a spurious box flickers);
# row 1: one change, and it is a car the quantized model misses
SPURIOUS = ImageCounts(3, 4, 13, 9, True, 0, 0.0, 9)
LOST_CAR = ImageCounts(3, 3, 2, 1, True, 1, 1 / 3, 0)
MORE_FP = ImageCounts(3, 3, 3, 2, True, 0, 0.0, 2)


def _visible_rows(panel) -> list[int]:
    proxy = panel.proxy
    return [proxy.mapToSource(proxy.index(r, 0)).row() for r in range(proxy.rowCount())]


def _choose(panel, label: str) -> None:
    panel.sort.setCurrentIndex([s.label for s in SORTS].index(label))


def test_sorts_badges_and_the_lost_true_positive_filter(loaded, qtbot):
    win, panel = loaded, loaded.image_list
    n = len(win.state.dataset)
    counts = {0: SPURIOUS, 1: LOST_CAR, 2: MORE_FP}
    counts.update({i: ImageCounts(1, 1, 1, 0, True) for i in range(3, n)})
    win.state.reset_counts(counts)
    _choose(panel, "Most changes")
    assert _visible_rows(panel)[:3] == [0, 2, 1]  # the spurious box first
    _choose(panel, "True positives lost")
    assert _visible_rows(panel)[0] == 1  # the lost car first
    top = panel.proxy.index(0, 0)
    assert top.data(BADGE_ROLE) == "−1 TP"
    assert "loses 1 of Float's true positives" in top.data(Qt.ItemDataRole.ToolTipRole)
    _choose(panel, "Recall drop")
    assert _visible_rows(panel)[0] == 1 and panel.proxy.index(0, 0).data(BADGE_ROLE) == "R −33%"
    _choose(panel, "False positives gained")
    assert _visible_rows(panel)[:2] == [0, 2]
    assert panel.proxy.index(0, 0).data(BADGE_ROLE) == "+9 FP"
    panel.only_tp_lost.setChecked(True)
    assert _visible_rows(panel) == [1]
    panel.only_tp_lost.setChecked(False)
    panel.only_changed.setChecked(True)
    assert sorted(_visible_rows(panel)) == [0, 1, 2]


def test_the_scan_counts_true_positives_lost_by_the_devkits_matching(loaded, qtbot):
    from squeezelens.engine.eval.hurt import image_hurt

    win = loaded
    win.quant_panel.bits.setValue(2)  # 2 bits: the tiny model loses most of its boxes
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: len(win.state.counts) == len(win.state.dataset), timeout=60000)
    pair = win.controller.scan.pairs[0]
    record = win.state.dataset.records[0]
    expected = image_hurt(record, *pair, win.state.threshold)
    counts = win.state.counts[0]
    assert counts.scored and (counts.tp_lost, counts.fp_gained) == (
        expected.tp_lost,
        expected.fp_gained,
    )
    assert any(c.tp_lost > 0 for c in win.state.counts.values())


def test_row_text_and_badge_fit_at_the_default_width(loaded):
    """The badge is laid out first (never cut); the lines fit at the default list width and
    a line too long for the row is elided in the middle, its full text in the tooltip."""
    win, panel = loaded, loaded.image_list
    n = len(win.state.dataset)
    win.state.reset_counts({i: ImageCounts(12, 12, 17, 21, True, 10, 0.83, 13) for i in range(n)})
    _choose(panel, "False positives gained")
    view, delegate = panel.view, panel.delegate
    metrics = QFontMetrics(view.font())
    for r in range(min(n, 4)):
        index = panel.proxy.index(r, 0)
        option = QStyleOptionViewItem()
        view.initViewItemOption(option)
        option.rect = view.visualRect(index)
        delegate.initStyleOption(option, index)
        first, second, badge = delegate.row_layout(option, index.data(BADGE_ROLE))
        stem, counts = index.data(Qt.ItemDataRole.DisplayRole).split("\n")
        assert metrics.horizontalAdvance(stem) <= first.width()
        assert metrics.horizontalAdvance(counts) <= second.width()
        assert not badge.intersects(first) and not badge.intersects(second)
        assert badge.width() >= metrics.horizontalAdvance(index.data(BADGE_ROLE))
        assert option.rect.contains(badge)  # whole: never cut off
    assert panel.only_tp_lost.sizeHint().width() <= panel.only_tp_lost.width()


def test_layer_table_sorts_numerically_and_highlights_the_most_sensitive(loaded, qtbot):
    from squeezelens.engine.sensitivity import SensitivityResult, apply_recommendation
    from squeezelens.gui.panels import layers_panel as lp
    from squeezelens.gui.provenance import result_tag, sensitivity_key

    win = loaded
    win.tabs.setCurrentWidget(win.layers_panel)
    win.quant_panel.bits.setValue(4)
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: bool(win.state.layer_rows), timeout=30000)
    table = win.layers_panel.table
    table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # Params, as numbers (not "9,280" text)
    params = [int(table.item(r, 1).text().replace(",", "")) for r in range(table.rowCount())]
    assert params == sorted(params, reverse=True) and params[0] > 100000
    config, layers = (
        win.state.quant,
        ("fire2/squeeze1x1", "fire3/expand1x1", "conv12", "fire9/expand3x3"),
    )
    drops = {(layers[0], 4): 0.30, (layers[1], 4): 0.20, (layers[2], 4): 0.10, (layers[3], 4): 0.04}
    noise = {(layers[0], 4): 0.01, (layers[1], 4): 0.02, (layers[2], 4): 0.08, (layers[3], 4): 0.0}
    result = SensitivityResult(0.5, drops, (4,), layers, config, 6, noise)
    tag = result_tag(win.state, sensitivity_key(win.state, "official"), "official", images=6)
    win.analysis.sensitivity.ready((result, apply_recommendation(config, result),
                                     win.controller.handle, config, tag))  # fmt: skip
    assert win.layers_panel.most_sensitive() == {layers[0], layers[1], layers[3]}  # not noise
    table.sortByColumn(lp.SENS_COL, Qt.SortOrder.DescendingOrder)
    order = [table.item(r, 0).text() for r in range(4)]
    assert order == list(layers)
    assert table.item(0, lp.SENS_COL).text() == "+0.3000 ±0.0100"
    assert table.item(0, lp.SENS_COL).background().color() == lp.SENSITIVE_BRUSH
    assert table.item(2, lp.SENS_COL).background().style() == Qt.BrushStyle.NoBrush  # in noise
    assert table.horizontalHeaderItem(lp.SENS_COL).text() == "mAP drop (6 img)"
    assert "positive = worse" in table.horizontalHeaderItem(lp.SENS_COL).toolTip()
    assert "6 images of val" in win.layers_panel.sens_caption.text()
    table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # Layer: forward order
    assert table.item(0, 0).text() == "conv1"
