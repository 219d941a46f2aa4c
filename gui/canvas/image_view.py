"""The canvas: the current image with GT / reference / other boxes, zoom and pan.

Overlay mode draws all three sources in one view; side-by-side mode shows the
reference (left) and the other model (right) in two views whose zoom and pan
are linked.  A legend row switches each source on or off; hovering a box shows
its class, score and IoU with its counterpart below the image.  One box can be
highlighted (:meth:`Canvas.highlight`: a yellow frame, from a line of "This image");
a click on the image clears it.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from squeezelens.gui.canvas.boxes import HIGHLIGHT, BadgeItem, BoxItem, BoxSpec, HaloItem, box_specs
from squeezelens.gui.palette import OKABE_ITO, SourceStyle, styles
from squeezelens.gui.state import AppState

MARK = OKABE_ITO["yellow"]  # the highlighted box: no source, change or GT uses it
PLACEHOLDER = "Open a KITTI folder or an image folder (File menu), or drop one here"


def line_icon(style: SourceStyle | None = None, color: str = "", size=(28, 14)) -> QIcon:
    """A small legend swatch: the source's line (or a filled block of ``color``)."""
    pix = QPixmap(*size)
    pix.fill(QColor("#3a3a3a"))
    painter = QPainter(pix)
    if style is not None:
        for pen in (style.backing_pen(width_scale=1.2), style.pen(width_scale=1.2)):
            if pen is not None:
                pen.setCosmetic(False)
                painter.setPen(pen)
                painter.drawLine(2, size[1] // 2, size[0] - 2, size[1] // 2)
    else:
        painter.fillRect(3, 3, size[0] - 6, size[1] - 6, QColor(color))
    painter.end()
    return QIcon(pix)


class ImagePane:
    """One ViewBox with an ImageItem, a title and the current box items."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, col: int, on_hover) -> None:
        self.title = layout.addLabel("", row=row, col=col, color="#dddddd")
        self.view = layout.addViewBox(row=row + 1, col=col, lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self.placeholder = pg.TextItem(PLACEHOLDER, color="#bbbbbb", anchor=(0.5, 0.5))
        self.view.addItem(self.placeholder)
        # boxes are children of one group added to the view once: adding and removing
        # children skips the ViewBox's per-item bookkeeping (bounds, auto-range) on
        # every redraw
        self._group = pg.ItemGroup()
        self._group.setZValue(1)
        self.view.addItem(self._group, ignoreBounds=True)
        self._pools: dict[type, list] = {}
        self.mark = _mark_item(self._group)
        self._on_hover = on_hover
        self._shape: tuple[int, int] | None = None

    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show an RGB image (None clears it and shows the placeholder)."""
        if rgb is None:
            self.image_item.clear()
            self.placeholder.setVisible(True)
            self.placeholder.setPos(QPointF(0, 0))
            self._shape = None
            return
        self.placeholder.setVisible(False)
        self.image_item.setImage(rgb, autoLevels=False, levels=(0, 255))
        shape = rgb.shape[:2]
        if shape != self._shape:
            self._shape = shape
            self.view.autoRange(padding=0.01)

    def set_boxes(self, specs: list[BoxSpec], source_styles: dict[str, SourceStyle]) -> None:
        """Show ``specs``: pooled items are reused and the spare ones hidden (a redraw
        creates items only when it shows more boxes than any redraw before)."""
        changed = [s for s in specs if s.change]
        tagged = [s for s in specs if s.tag]
        for item, spec in zip(self._pool(BoxItem, len(specs)), specs):
            item.show_spec(spec, source_styles[spec.source])
        for item, spec in zip(self._pool(HaloItem, len(changed)), changed):
            item.show_spec(spec)
        for item, spec in zip(self._pool(BadgeItem, len(tagged)), tagged):
            item.show_spec(spec)

    def _pool(self, kind: type, count: int) -> list:
        """The first ``count`` items of ``kind``'s pool, shown (created as needed); the
        rest hidden."""
        pool = self._pools.setdefault(kind, [])
        while len(pool) < count:
            item = kind(self._on_hover) if kind is BoxItem else kind()
            item.setParentItem(self._group)
            pool.append(item)
        for k, item in enumerate(pool):
            item.setVisible(k < count)
        return pool[:count]

    @property
    def items(self) -> list:
        """Every item shown now: boxes, halos and badges."""
        return [i for pool in self._pools.values() for i in pool if i.isVisible()]


def _mark_item(parent: pg.ItemGroup) -> QGraphicsRectItem:
    """The highlight frame: thick yellow over a dark backing line, above every box."""
    item = QGraphicsRectItem()
    pen = QPen(QColor(MARK), 4)
    pen.setCosmetic(True)
    item.setPen(pen)
    fill = QColor(MARK)
    fill.setAlpha(60)
    item.setBrush(QBrush(fill))
    item.setZValue(10)
    item.setParentItem(parent)
    item.setVisible(False)
    return item


class Canvas(QWidget):
    """Image + boxes, overlay or side by side; reads everything from AppState."""

    highlighted = Signal(object)  # the highlighted box (xyxy) or None

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("canvas")
        self.state = state
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("#202020")
        self.graphics.ci.setContentsMargins(2, 2, 2, 2)
        self.hover_label = QLabel(" ")
        self.hover_label.setObjectName("hoverLabel")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.layer_checks: dict[str, QCheckBox] = {}
        self.pending_label = QLabel(objectName="remedyPendingLabel", visible=False)
        self.pending_label.setStyleSheet("background: #6b5200; color: white; padding: 2px 6px;")
        state.remedy_changed.connect(self._on_pending)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self._legend_row())
        layout.addWidget(self.pending_label)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.hover_label)
        self.panes: dict[str, ImagePane] = {}
        self.highlighted_box: tuple[float, ...] | None = None
        self.graphics.scene().sigMouseClicked.connect(lambda _event: self.highlight(None))
        self._mode: tuple = ()
        self._build_panes()
        state.image_changed.connect(self._on_image)
        for sig in (state.result_changed, state.view_changed, state.quant_changed):
            sig.connect(self.redraw)
        state.view_changed.connect(self._build_panes)
        state.dataset_changed.connect(self._on_image)

    # ----------------------------------------------------------------- legend
    def _legend_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setContentsMargins(4, 2, 4, 0)
        for key in ("gt", "ref", "other"):
            check = QCheckBox()
            check.setObjectName(f"layer_{key}")
            check.setChecked(self.state.visible[key])
            check.toggled.connect(lambda on, k=key: self.state.set_visible(k, on))
            self.layer_checks[key] = check
            row.addWidget(check)
        row.addSpacing(12)
        for change, text in (("lost", "− lost"), ("gained", "+ new"), ("flipped", "class flip")):
            swatch = QLabel()
            swatch.setPixmap(line_icon(color=HIGHLIGHT[change]).pixmap(28, 14))
            row.addWidget(swatch)
            row.addWidget(QLabel(text))
        row.addStretch(1)
        self._update_legend()
        return row

    def _update_legend(self) -> None:
        st = styles(self.state.ref_label, self.state.other_label)
        for key, check in self.layer_checks.items():
            check.setText(st[key].label)
            check.setIcon(line_icon(st[key]))
            check.setToolTip(f"Show or hide the {st[key].label.lower()} boxes")
            check.blockSignals(True)
            check.setChecked(self.state.visible[key])
            check.blockSignals(False)

    # ------------------------------------------------------------------ panes
    def _stacked(self) -> bool:
        """Side by side stacks the views vertically for wide images (KITTI is ~3.3:1)."""
        image = self.state.image
        return image is not None and image.shape[1] > 2 * image.shape[0]

    def _build_panes(self) -> None:
        mode = self.state.view_mode
        key = (mode, mode == "side" and self._stacked())
        if key == self._mode:
            return
        self._mode = key
        self.graphics.ci.clear()
        self.panes = {}
        if mode == "side":
            row, col = (2, 0) if key[1] else (0, 1)
            self.panes["left"] = ImagePane(self.graphics.ci, 0, 0, self._hover)
            self.panes["right"] = ImagePane(self.graphics.ci, row, col, self._hover)
            self.panes["right"].view.setXLink(self.panes["left"].view)
            self.panes["right"].view.setYLink(self.panes["left"].view)
        else:
            self.panes["main"] = ImagePane(self.graphics.ci, 0, 0, self._hover)
        self._on_image()

    def highlight(self, xyxy=None) -> None:
        """Frame the box ``xyxy`` in every view (None: no box framed)."""
        box = None if xyxy is None else tuple(float(v) for v in xyxy)
        for pane in self.panes.values():
            if box is not None:
                pane.mark.setRect(QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1]))
            pane.mark.setVisible(box is not None)
        if box != self.highlighted_box:
            self.highlighted_box = box
            self.highlighted.emit(box)

    def _on_image(self) -> None:
        self.highlight(None)
        if self.state.view_mode == "side" and self._mode != ("side", self._stacked()):
            self._build_panes()
            return
        image = self.state.image
        rgb = None if image is None else np.ascontiguousarray(image[:, :, ::-1])
        for pane in self.panes.values():
            pane.set_image(rgb)
        self.redraw()

    def redraw(self) -> None:
        """Redraw boxes and titles from the state (no computation)."""
        self._update_legend()
        st = styles(self.state.ref_label, self.state.other_label)
        result = self.state.result
        if result is not None and result.index != self.state.index:
            result = None
        names = self.state.model.class_names if self.state.model else ()
        specs = box_specs(result, self.state.record, names, (st["ref"].label, st["other"].label),
                          self.state.visible, self.state.view_mode)  # fmt: skip
        for key, pane in self.panes.items():
            pane.set_boxes(specs.get(key, []), st)
        self._set_titles(st, result)

    def _set_titles(self, st, result) -> None:
        record = self.state.record
        stem = record.stem if record is not None else ""
        if "main" in self.panes:
            text = stem
            if result is not None:
                c = result.comparison
                text += (f"  ·  {len(c.lost)} lost, {len(c.gained)} new, "
                         f"{len(c.flips)} class flips at score ≥ {result.threshold:.2f}")  # fmt: skip
            self.panes["main"].title.setText(text)
        else:
            self.panes["left"].title.setText(f"{stem}  ·  {st['ref'].label}")
            self.panes["right"].title.setText(f"{stem}  ·  {st['other'].label}")

    def _on_pending(self, text: str) -> None:
        """A remedies job runs: the boxes shown are the previous settings' (Esc cancels)."""
        self.pending_label.setText(f"{text} — Esc cancels" if text else "")
        self.pending_label.setVisible(bool(text))

    def _hover(self, text: str) -> None:
        self.hover_label.setText(text or " ")

    def zoom_to(self, xyxy, margin: float = 2.0) -> None:
        """Centre every view on a box, showing ``margin`` times its size."""
        x1, y1, x2, y2 = xyxy
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = max(x2 - x1, (y2 - y1) * 2, 40) * margin / 2
        for pane in self.panes.values():
            pane.view.setRange(xRange=(cx - half, cx + half), yRange=(cy - half / 2, cy + half / 2))

    def reset_zoom(self) -> None:
        for pane in self.panes.values():
            pane.view.autoRange(padding=0.01)
