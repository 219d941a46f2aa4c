"""A cheap "working" indicator for the window's busy states.

Why not an indeterminate QProgressBar: its style animation repaints the bar (and
the widgets it overlaps) at the display's frame rate through the style's
gradients, and under load those repaints were a fifth of the UI thread's
painting during an evaluation.  This one draws two flat rectangles a dozen
times a second, and only while it is shown.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QWidget

FRAME_MS = 80
STEPS = 24  # frames per sweep of the block across the track
BLOCK = 0.3  # block width, as a fraction of the track


class BusyIndicator(QWidget):
    """A thin track with a block sliding across it while visible."""

    def __init__(self, height: int = 6, parent: QWidget | None = None, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.setFixedHeight(height)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._phase = 0
        self._timer = QTimer(self, interval=FRAME_MS)
        self._timer.timeout.connect(self._advance)

    def setVisible(self, visible: bool) -> None:  # noqa: N802
        super().setVisible(visible)
        if visible:
            self._timer.start()
        else:
            self._timer.stop()

    def _advance(self) -> None:
        self._phase = (self._phase + 1) % STEPS
        self.update()

    def block_rect(self) -> QRectF:
        """The block's rectangle at the current phase (it enters from the left)."""
        w, h = float(self.width()), float(self.height())
        span = w * (1 + BLOCK)
        x = -w * BLOCK + span * self._phase / STEPS
        return QRectF(x, 0, w * BLOCK, h)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(palette.ColorRole.Mid))
        painter.fillRect(self.block_rect(), QColor(palette.color(palette.ColorRole.Highlight)))
        painter.end()
