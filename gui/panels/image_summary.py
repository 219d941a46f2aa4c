"""'This image': counts per source and the list of what quantization changed, and why.

Each change (lost, new, class flip) is a row; a lost box says why it is lost
(missed / mislocalized, IoU 0.xx / misclassified as Y / out-scored by a
duplicate), a new box what it is (background / duplicate / mislocalized), from
:func:`engine.box_reasons.explain_changes` (computed with the detections, on the
worker: ``ImageResult.reasons``).  Clicking a row zooms the canvas to its box and
frames it; clicking it again, or anywhere else, clears the frame.  Under the list:
the twins (matched boxes: mean IoU, score shift; ``ImageResult.twins``) and the
ConvDet error by head (``AppState.image_head``).  Nothing is computed here.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from squeezelens.gui.canvas.boxes import HIGHLIGHT
from squeezelens.gui.canvas.image_view import Canvas, line_icon
from squeezelens.gui.facts import gt_count
from squeezelens.gui.palette import styles
from squeezelens.gui.panels.image_facts_text import change_rows, head_text, twins_text
from squeezelens.gui.provenance import int8_on
from squeezelens.gui.state import AppState

BOX_ROLE = Qt.ItemDataRole.UserRole + 1


class ImageSummary(QWidget):
    """Counts of GT / reference / other boxes and the changed boxes of the current image."""

    def __init__(self, state: AppState, canvas: Canvas, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.canvas = state, canvas
        self.counts: dict[str, QLabel] = {}
        self.names: dict[str, QLabel] = {}
        box = QGroupBox("This image")
        grid = QGridLayout(box)
        for row, key in enumerate(("gt", "ref", "other")):
            swatch = QLabel()
            self.names[key] = QLabel()
            self.counts[key] = QLabel("–", objectName=f"count_{key}")
            self.counts[key].setAlignment(Qt.AlignmentFlag.AlignRight)
            grid.addWidget(swatch, row, 0)
            grid.addWidget(self.names[key], row, 1)
            grid.addWidget(self.counts[key], row, 2)
            self.names[key].setProperty("swatch", swatch)
        self.changes = QListWidget(objectName="changeList")
        self.changes.setToolTip("What changed on this image and why; click a row to zoom to "
                                "its box and frame it, click again to clear")  # fmt: skip
        self.changes.setWordWrap(True)
        # six lines at least: on a short screen the column scrolls to them, never squeezes them
        self.changes.setMinimumHeight(6 * (self.fontMetrics().height() + 4) + 6)
        self.changes.itemClicked.connect(self._clicked)
        self.changes.viewport().installEventFilter(self)
        grid.addWidget(self.changes, 5, 0, 1, 3)
        self.twins = QLabel("", objectName="twinsLabel", wordWrap=True)
        self.head = QLabel("", objectName="headLabel", wordWrap=True)
        self.head.setToolTip("The ConvDet output's error on this image, split by head: SQNR in "
                             "dB of the other model's class probabilities, confidence and box "
                             "deltas against the reference's (higher is closer)")  # fmt: skip
        grid.addWidget(self.twins, 3, 0, 1, 3)
        grid.addWidget(self.head, 4, 0, 1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 4)
        layout.addWidget(box)
        for sig in (state.result_changed, state.quant_changed, state.image_changed):
            sig.connect(self.refresh)
        state.image_head_changed.connect(self._show_head)
        canvas.highlighted.connect(self._on_highlight)
        self.refresh()

    def refresh(self) -> None:
        st = styles(self.state.ref_label, self.state.other_label)
        for key, label in self.names.items():
            label.setText(st[key].label)
            label.property("swatch").setPixmap(line_icon(st[key]).pixmap(28, 14))
        result, record = self.state.result, self.state.record
        names = self.state.model.class_names if self.state.model else ()
        self.counts["gt"].setText(str(gt_count(record, names)) if record is not None else "–")
        self.changes.clear()
        self._show_head()
        if result is None or result.index != self.state.index:
            self.counts["ref"].setText("–")
            self.counts["other"].setText("–")
            self.twins.setText("")
            return
        ref, other = result.ref.above(result.threshold), result.other.above(result.threshold)
        self.counts["ref"].setText(str(len(ref)))
        self.counts["other"].setText(str(len(other)))
        self._fill_changes(result, ref, other)
        self.twins.setText(twins_text(result.twins, self.state.other_label))

    def _fill_changes(self, result, ref, other) -> None:
        rows = change_rows(result, ref, other, self.state.ref_label, self.state.other_label)
        if not rows:
            self.changes.addItem(f"No change at score ≥ {self.state.threshold:.2f}")
            self.canvas.highlight(None)
            return
        marked = None
        for text, kind, xyxy in rows:
            item = QListWidgetItem(text)
            item.setToolTip(text)
            color = QColor(HIGHLIGHT[kind])
            color.setAlpha(90)
            item.setBackground(QBrush(color))
            box = tuple(float(v) for v in xyxy)
            item.setData(BOX_ROLE, list(box))
            self.changes.addItem(item)
            if box == self.canvas.highlighted_box:
                marked = item
        if marked is None:
            self.canvas.highlight(None)  # the framed box is not on the list any more
        else:
            self.changes.setCurrentItem(marked)

    def _show_head(self) -> None:
        s, head = self.state, self.state.image_head
        now = (s.index, s.ref_config, s.other_config, int8_on(s))
        self.head.setText(head_text(head[1] if head is not None and head[0][1:] == now else None))

    def _clicked(self, item: QListWidgetItem) -> None:
        """Frame and zoom to the row's box; the framed row clicked again clears it."""
        xyxy = item.data(BOX_ROLE)
        if not xyxy:
            self.canvas.highlight(None)
        elif tuple(xyxy) == self.canvas.highlighted_box:
            self.canvas.highlight(None)
        else:
            self.canvas.highlight(xyxy)
            self.canvas.zoom_to(xyxy)

    def _on_highlight(self, box) -> None:
        if box is None:
            self.changes.clearSelection()
            self.changes.setCurrentItem(None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """A click on the list's empty space clears the frame."""
        if (
            event.type() == QEvent.Type.MouseButtonPress
            and self.changes.itemAt(event.pos()) is None
        ):
            self.canvas.highlight(None)
        return False
