"""Result captions: what a result view was computed with, and a visible "stale" state.

A :class:`ResultCaption` is the line above a result (AP table and PR curves, sweep
plot): the compared configs, images, split and protocol of its
:class:`~gui.provenance.ResultTag`.  When the settings change, :meth:`set_stale`
turns the line into a warning ("settings changed — Evaluate again") and greys the
result widgets: a translucent white veil over them (:class:`StaleVeil`), so they stay
readable but read as old, on any style and in screenshots alike.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QLabel, QWidget

from squeezelens.gui.provenance import ResultTag, stale_text

VEIL = QColor(255, 255, 255, 175)
STALE_STYLE = "color: #D55E00; font-weight: 600;"


class ResultCaption(QLabel):
    """One wrapped line naming what the results below were computed with."""

    def __init__(self, empty: str, action: str, object_name: str) -> None:
        super().__init__(empty, objectName=object_name, wordWrap=True)
        self.empty, self.action = empty, action
        self.stale = False
        self._greyed: list[QWidget] = []

    def show_tag(self, tag: ResultTag | None, stale: bool, extra: str = "") -> None:
        """The tag's caption (or the empty text), marked stale when ``stale``."""
        self.stale = bool(tag is not None and stale)
        if tag is None:
            self.setText(self.empty)
        else:
            text = tag.caption() + extra
            self.setText(f"{stale_text(self.action)} · was: {text}" if self.stale else text)
        self.setStyleSheet(STALE_STYLE if self.stale else "")
        self.setToolTip(
            f"These results were computed with other settings: {self.action} to update them."
            if self.stale
            else "The settings these results were computed with"
        )
        for widget in self._greyed:
            grey(widget, self.stale)

    def greys(self, *widgets: QWidget) -> None:
        """Widgets drawn translucent while the caption is stale."""
        self._greyed.extend(widgets)


class StaleVeil(QWidget):
    """A translucent white layer over a widget, passing every mouse event through."""

    def __init__(self, target: QWidget) -> None:
        super().__init__(target, objectName="staleVeil")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        target.installEventFilter(self)
        self.setGeometry(target.rect())
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize:
            self.setGeometry(watched.rect())
        return False

    def paintEvent(self, event) -> None:  # noqa: N802
        QPainter(self).fillRect(self.rect(), VEIL)


def grey(widget: QWidget, on: bool) -> None:
    """Veil ``widget`` (``on``) or show it plainly."""
    veil = widget.findChild(StaleVeil, "staleVeil")
    if veil is None:
        if not on:
            return
        veil = StaleVeil(widget)
    veil.setVisible(on)
    if on:
        veil.raise_()


def is_greyed(widget: QWidget) -> bool:
    veil = widget.findChild(StaleVeil, "staleVeil")
    return veil is not None and veil.isVisibleTo(widget)
