"""'This image': counts per source and the list of what quantization changed.

Each change (lost, new, class flip) is a row; clicking it zooms the canvas to
that box.  Everything shown comes from the engine's Comparison in AppState.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
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
        self.changes.setToolTip("What changed on this image; click a row to zoom to the box")
        self.changes.itemClicked.connect(self._zoom)
        grid.addWidget(self.changes, 3, 0, 1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 4)
        layout.addWidget(box)
        for sig in (state.result_changed, state.quant_changed, state.image_changed):
            sig.connect(self.refresh)
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
        if result is None or result.index != self.state.index:
            self.counts["ref"].setText("–")
            self.counts["other"].setText("–")
            return
        ref, other = result.ref.above(result.threshold), result.other.above(result.threshold)
        self.counts["ref"].setText(str(len(ref)))
        self.counts["other"].setText(str(len(other)))
        self._fill_changes(result.comparison, ref, other)

    def _fill_changes(self, cmp, ref, other) -> None:
        r, o = self.state.ref_label, self.state.other_label
        rows = [(f"lost: {ref.class_name(i)} {ref.scores[i]:.2f} ({r} only)", "lost", ref.boxes_xyxy[i])
                for i in cmp.lost]  # fmt: skip
        rows += [(f"new: {other.class_name(j)} {other.scores[j]:.2f} ({o} only)", "gained",
                  other.boxes_xyxy[j]) for j in cmp.gained]  # fmt: skip
        rows += [(f"flip: {ref.class_name(m.ref)} → {other.class_name(m.other)} (IoU {m.iou:.2f})",
                  "flipped", ref.boxes_xyxy[m.ref]) for m in cmp.flips]  # fmt: skip
        if not rows:
            self.changes.addItem(f"No change at score ≥ {self.state.threshold:.2f}")
            return
        for text, kind, xyxy in rows:
            item = QListWidgetItem(text)
            color = QColor(HIGHLIGHT[kind])
            color.setAlpha(90)
            item.setBackground(QBrush(color))
            item.setData(BOX_ROLE, [float(v) for v in xyxy])
            self.changes.addItem(item)

    def _zoom(self, item: QListWidgetItem) -> None:
        xyxy = item.data(BOX_ROLE)
        if xyxy:
            self.canvas.zoom_to(xyxy)
