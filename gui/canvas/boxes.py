"""Render-only box items and the description of what to draw for one image.

:func:`box_specs` turns an :class:`~gui.state.ImageResult` (detections and the
engine's comparison) into plain :class:`BoxSpec` records per pane; it only
formats, it never matches or scores anything itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsSceneHoverEvent

from squeezelens.gui.palette import FLIPPED, GAINED, LOST, SourceStyle

HIGHLIGHT = {"lost": LOST, "gained": GAINED, "flipped": FLIPPED}
TAGS = {"lost": "−", "gained": "+"}  # shape cues besides colour: − lost, + new


@dataclass(frozen=True)
class BoxSpec:
    """One box to draw: where, in which source style, how it changed, what hover says."""

    xyxy: tuple[float, float, float, float]
    source: str  # "gt" | "ref" | "other"
    info: str
    change: str = ""  # "" | "lost" | "gained" | "flipped"
    tag: str = ""


def _fmt_box(prefix: str, name: str, score: float) -> str:
    return f"{prefix}: {name} {score:.2f}"


def _side_specs(result, labels: tuple[str, str], source: str) -> list[BoxSpec]:
    """The boxes of one side ("ref" or "other") with what the comparison says of each:
    its counterpart on the other side (IoU, score shift, class flip) or that it is
    lost (reference only) or new (other only)."""
    sides = (result.ref.above(result.threshold), result.other.above(result.threshold))
    cmp, mine = result.comparison, 0 if source == "ref" else 1
    dets, theirs, their_label = sides[mine], sides[1 - mine], labels[1 - mine]
    counterpart = cmp.counterpart_of_ref if mine == 0 else cmp.counterpart_of_other
    unmatched = "lost" if mine == 0 else "gained"
    out = []
    for i in range(len(dets)):
        m = counterpart(i)
        info = _fmt_box(labels[mine], dets.class_name(i), float(dets.scores[i]))
        if m is None:
            word = "lost" if mine == 0 else "new"
            info += f" — {word}: no {their_label} box with IoU > {cmp.iou_threshold:.2f}"
            change, tag = unmatched, TAGS[unmatched]
        else:
            j = m.other if mine == 0 else m.ref
            info += (f" — IoU {m.iou:.2f} with {their_label} {theirs.class_name(j)} "
                     f"{float(theirs.scores[j]):.2f} (Δscore {m.score_shift:+.2f})")  # fmt: skip
            change = "flipped" if m.class_flip else ""
            flip = f"{dets.class_name(i)}→{theirs.class_name(j)}"
            tag = flip if m.class_flip and mine == 0 else ""  # the tag once, on the reference
        out.append(BoxSpec(tuple(map(float, dets.boxes_xyxy[i])), source, info, change, tag))
    return out


def gt_specs(record, class_names: tuple[str, ...]) -> list[BoxSpec]:
    """Ground-truth boxes of the detector's classes (DontCare and others skipped)."""
    if record is None:
        return []
    names = {c.lower() for c in class_names}
    out = []
    for obj in record.objects:
        if obj.type.lower() not in names:
            continue
        info = (f"Ground truth: {obj.type}, height {obj.height:.0f} px, "
                f"occluded {obj.occluded}, truncated {obj.truncated:.2f}")  # fmt: skip
        out.append(BoxSpec(tuple(map(float, obj.box_xyxy)), "gt", info))
    return out


def box_specs(result, record, class_names, labels, visible, view_mode) -> dict[str, list[BoxSpec]]:
    """What each pane draws: ``{"main": [...]}`` (overlay) or ``{"left", "right"}`` (side)."""
    gt = gt_specs(record, class_names) if visible.get("gt") else []
    ref = _side_specs(result, labels, "ref") if result is not None and visible.get("ref") else []
    other = (
        _side_specs(result, labels, "other") if result is not None and visible.get("other") else []
    )
    if view_mode == "side":
        return {"left": gt + ref, "right": gt + other}
    return {"main": gt + ref + other}


@functools.lru_cache(maxsize=64)
def _pens(style: SourceStyle) -> tuple[QPen, QPen, QPen | None, QPen | None]:
    """(pen, hover pen, backing, hover backing) of a source style, built once."""
    return (style.pen(), style.pen(width_scale=1.8), style.backing_pen(),
            style.backing_pen(width_scale=1.8))  # fmt: skip


def _rect(xyxy: tuple[float, float, float, float]) -> QRectF:
    x1, y1, x2, y2 = xyxy
    return QRectF(x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0))


class BoxItem(QGraphicsRectItem):
    """A rectangle in image coordinates that reports hover with its info text.

    Reusable: :meth:`show_spec` turns it into another box (the canvas keeps a
    pool of them instead of creating and deleting scene items on every redraw).
    """

    def __init__(self, on_hover: Callable[[str], None], spec: BoxSpec | None = None,
                 style: SourceStyle | None = None):  # fmt: skip
        super().__init__()
        self._on_hover = on_hover
        self._hovered = False
        self.setBrush(QBrush(QColor(0, 0, 0, 0)))
        self.setAcceptHoverEvents(True)
        self.spec: BoxSpec | None = None
        if spec is not None and style is not None:
            self.show_spec(spec, style)

    def show_spec(self, spec: BoxSpec, style: SourceStyle) -> None:
        """Draw ``spec`` in ``style`` from now on."""
        self.spec = spec
        self._pen, self._hover_pen, self._backing, self._hover_backing = _pens(style)
        self._hovered = False
        self.setRect(_rect(spec.xyxy))
        self.setPen(self._pen)
        self.setToolTip(spec.info)
        self.setZValue({"gt": 1, "ref": 2, "other": 3}[spec.source])

    def paint(self, painter: QPainter, option, widget=None) -> None:
        """The solid backing (ground truth: black under white dashes), then the line."""
        backing = self._hover_backing if self._hovered else self._backing
        if backing is not None:
            painter.setPen(backing)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.rect())
        super().paint(painter, option, widget)

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        self._hovered = True
        self.setPen(self._hover_pen)
        self._on_hover(self.spec.info if self.spec else "")
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        self._hovered = False
        self.setPen(self._pen)
        self._on_hover("")
        super().hoverLeaveEvent(event)


@functools.lru_cache(maxsize=8)
def _halo_pen(change: str) -> QPen:
    color = QColor(HIGHLIGHT[change])
    color.setAlpha(170)
    pen = QPen(color)
    pen.setWidthF(7.0)
    pen.setCosmetic(True)
    return pen


class HaloItem(QGraphicsRectItem):
    """A wide translucent outline behind a changed box (lost / gained / flipped); reusable."""

    def __init__(self, spec: BoxSpec | None = None):
        super().__init__()
        self.setZValue(0.5)
        self.setAcceptHoverEvents(False)
        if spec is not None:
            self.show_spec(spec)

    def show_spec(self, spec: BoxSpec) -> None:
        self.setRect(_rect(spec.xyxy))
        self.setPen(_halo_pen(spec.change))


@functools.lru_cache(maxsize=16)
def _badge_size(tag: str, pad: float) -> tuple[float, float]:
    """(width, height) of a badge's box in screen pixels (measured once per tag)."""
    metrics = QFontMetricsF(QFont())
    return metrics.horizontalAdvance(tag) + 2 * pad, metrics.height() + pad


class BadgeItem(QGraphicsItem):
    """A small filled label on a changed box (− lost top-left, + new top-right, flip
    bottom-left), drawn in screen pixels whatever the zoom.

    A plain QGraphicsItem that ignores the view's scale: far cheaper to create and
    move than a text item that tracks the view's transform itself.
    """

    PAD = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setAcceptHoverEvents(False)
        self.setZValue(5)
        self._text, self._fill = "", QColor()
        self._box = QRectF()

    def show_spec(self, spec: BoxSpec) -> None:
        """Badge ``spec.tag`` at the corner its change calls for."""
        x1, y1, x2, y2 = spec.xyxy
        (ax, ay), (px, py) = {"lost": ((0, 1), (x1, y1)), "gained": ((1, 1), (x2, y1))}.get(
            spec.change, ((0, 0), (x1, y2))
        )
        w, h = _badge_size(spec.tag, self.PAD)
        self.prepareGeometryChange()
        self._text, self._fill = spec.tag, QColor(HIGHLIGHT[spec.change])
        self._box = QRectF(-ax * w, -ay * h, w, h)
        self.setPos(QPointF(px, py))
        self.update()

    @property
    def text(self) -> str:
        return self._text

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._box

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.fillRect(self._box, self._fill)
        painter.setPen(QColor("#000000"))
        painter.drawText(self._box, Qt.AlignmentFlag.AlignCenter, self._text)
