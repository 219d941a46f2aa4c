"""The image browser's rows: what they sort by, and how they are drawn.

A row is the thumbnail, the image's name and its counts (ground truth, reference,
other), each line elided in the middle when the list is narrow (the full text is in
the tooltip), and, right of the name, a badge with the value the list is sorted by
(changes, true positives lost, recall drop, false positives gained), which is laid
out first and so never cut off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

Index = QModelIndex | QPersistentModelIndex
ROLE = Qt.ItemDataRole.UserRole
CHANGES_ROLE, ROW_ROLE, TP_LOST_ROLE, RECALL_ROLE, FP_ROLE, BADGE_ROLE, LINES_ROLE = (
    ROLE + k for k in range(1, 8)
)
BADGE_COLOR = {"changes": "#56B4E9", "tp_lost": "#D55E00", "recall": "#D55E00", "fp": "#E69F00"}
PAD = 4


@dataclass(frozen=True)
class Sort:
    """One choice of the Sort box: its label, the role it sorts by, its badge."""

    label: str
    role: int
    descending: bool
    badge: str  # key of BADGE_COLOR, or "changes" for file order


SORTS = (
    Sort("File order", ROW_ROLE, False, "changes"),
    Sort("Most changes", CHANGES_ROLE, True, "changes"),
    Sort("True positives lost", TP_LOST_ROLE, True, "tp_lost"),
    Sort("Recall drop", RECALL_ROLE, True, "recall"),
    Sort("False positives gained", FP_ROLE, True, "fp"),
)
UNSCORED = -1e9  # sort key of a row not scanned yet or without labels: last


def sort_value(counts: Any, role: int) -> float:
    """The number a row sorts by under ``role`` (UNSCORED when it has none)."""
    if counts is None:
        return UNSCORED
    if role == CHANGES_ROLE:
        return counts.changes
    if not counts.scored:
        return UNSCORED
    return {TP_LOST_ROLE: counts.tp_lost, RECALL_ROLE: counts.recall_drop,
            FP_ROLE: counts.fp_gained}[role]  # fmt: skip


def badge_text(counts: Any, badge: str) -> str:
    """'Δ 7', '−2 TP', 'R −40%', '+3 FP' ('…' before the scan, '–' without labels)."""
    if counts is None:
        return "…"
    if badge == "changes":
        return f"Δ {counts.changes}"
    if not counts.scored:
        return "–"
    if badge == "tp_lost":
        return f"−{counts.tp_lost} TP" if counts.tp_lost else "0 TP"
    if badge == "recall":
        pct = round(100 * counts.recall_drop)
        return "R ±0%" if pct == 0 else f"R {-pct:+d}%".replace("-", "−")
    return f"{counts.fp_gained:+d} FP".replace("-", "−")


def tooltip(path: str, counts: Any, ref: str, other: str) -> str:
    """The row's full text: path and every count."""
    if counts is None:
        return f"{path}\nnot scanned yet"
    text = (f"{path}\nGT {counts.gt} · {ref} {counts.ref} · {other} {counts.other} · "
            f"{counts.changes} boxes changed (lost + new + class flips)")  # fmt: skip
    if counts.scored:
        text += (f"\n{other} loses {counts.tp_lost} of {ref}'s true positives (devkit matching) · "
                 f"recall {-100 * counts.recall_drop:+.0f}% · false positives "
                 f"{counts.fp_gained:+d}")  # fmt: skip
    return text


class ImageRowDelegate(QStyledItemDelegate):
    """Thumbnail, two elided lines, and the sort key's badge (never elided)."""

    badge = "changes"

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:  # noqa: N802
        line = option.fontMetrics.height()
        icon = option.decorationSize.height() if option.decorationSize.isValid() else 0
        return QSize(option.rect.width() or 200, max(icon, 2 * line) + 2 * PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        style = opt.widget.style() if opt.widget else None
        lines = index.data(LINES_ROLE) or ("", "")
        opt.text = ""  # the panel is drawn by the style, the text here
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        painter.save()
        badge = index.data(BADGE_ROLE) or ""
        first, second, badge_rect = self.row_layout(opt, badge)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(opt.palette.color(role))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        for line, text in zip((first, second), lines):
            mode, room = Qt.TextElideMode.ElideMiddle, max(0, line.width())
            painter.drawText(line, align, opt.fontMetrics.elidedText(text, mode, room))
        self._draw_badge(painter, badge_rect, badge)
        painter.restore()

    def row_layout(self, opt: QStyleOptionViewItem, badge: str) -> tuple[QRect, QRect, QRect]:
        """(first text line, second text line, badge): the badge at the right end of the
        first line, which ends before it; the second line spans the row."""
        rect = opt.rect.adjusted(PAD, PAD, -PAD, -PAD)
        icon_w = opt.decorationSize.width() + PAD if opt.decorationSize.isValid() else 0
        line_h = opt.fontMetrics.height()
        first = QRect(rect.left() + icon_w, rect.top(), rect.width() - icon_w, line_h)
        second = first.translated(0, line_h)
        w = self.badge_width(opt, badge)
        badge_rect = QRect(first.right() - w + 1, first.top(), w, line_h)
        first.setRight(badge_rect.left() - PAD)
        return first, second, badge_rect

    @staticmethod
    def badge_width(option: QStyleOptionViewItem, text: str) -> int:
        return option.fontMetrics.horizontalAdvance(text) + 2 * PAD if text else 0

    def _draw_badge(self, painter: QPainter, rect: QRect, text: str) -> None:
        if not text:
            return
        color = QColor(BADGE_COLOR.get(self.badge, "#56B4E9"))
        if text in ("…", "–", "0 TP", "R ±0%", "+0 FP", "Δ 0"):
            color = QColor("#BBBBBB")
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(QColor("#000000"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
