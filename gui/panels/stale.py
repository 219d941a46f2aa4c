"""Result captions: what a result view was computed with, and a visible "stale" state.

A :class:`ResultCaption` is the line above a result (AP table and PR curves, sweep
plot): the compared configs, images, split and protocol of its
:class:`~gui.provenance.ResultTag`.  When the settings change, :meth:`set_stale`
turns the line into a warning ("settings changed — Evaluate again") and greys the
result widgets (translucent: they stay readable, but read as old).
"""

from __future__ import annotations

from PySide6.QtWidgets import QGraphicsOpacityEffect, QLabel, QWidget

from squeezelens.gui.provenance import ResultTag, stale_text

STALE_OPACITY = 0.35
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


def grey(widget: QWidget, on: bool) -> None:
    """Draw ``widget`` translucent (``on``) or normally."""
    if on and not is_greyed(widget):
        effect = QGraphicsOpacityEffect(widget)
        effect.setOpacity(STALE_OPACITY)
        widget.setGraphicsEffect(effect)
    elif widget.graphicsEffect() is not None:
        widget.setGraphicsEffect(None)


def is_greyed(widget: QWidget) -> bool:
    return isinstance(widget.graphicsEffect(), QGraphicsOpacityEffect)
