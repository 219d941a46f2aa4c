"""The range-hijack hint: a bar above the canvas naming the tensor and the remedies.

Shown while a compared quantized config has a range hijack
(:func:`engine.quant.hijack.hijack_warnings`): its summary, and as the tooltip the line the
CLI prints as a warning, with every number and the remedies' flags; "Show in
Layers" opens the Layers tab at the hijacked layer (highlighted there).  Dismissed,
it stays hidden until the findings change.  Dark text on a light amber background
set on the frame itself, legible under light and dark themes alike.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton

from squeezelens.gui.state import AppState

STYLE = (
    "#hijackHint { background: #FFF1C2; border-bottom: 1px solid #E69F00; }"
    " #hijackHint QLabel { color: #3D2B00; }"
)


class HintBar(QFrame):
    """One dismissable hint about the quantized config's ranges."""

    show_layer = Signal(str)  # the user asked to see this layer in the Layers tab

    def __init__(self, state: AppState) -> None:
        super().__init__(objectName="hijackHint")
        self.state = state
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(STYLE)
        self.label = QLabel("", objectName="hijackText", wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton("Show in Layers", objectName="hijackShowButton")
        close = QToolButton(text="✕", objectName="hijackClose")
        close.setAutoRaise(True)
        close.setToolTip("Hide this hint (it returns when the findings change)")
        close.clicked.connect(self.dismiss)
        self.button.clicked.connect(self._show_layer)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 3, 4, 3)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)
        row.addWidget(close)
        self._dismissed: tuple[str, ...] = ()
        state.hijacks_changed.connect(self.update_hint)
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def update_hint(self) -> None:
        warnings = self.state.hijack_warnings
        if not warnings or warnings == self._dismissed:
            self.hide()
            return
        more = len(warnings) - 1
        text = f"⚠ Range hijacked: {self.state.hijacks[0].summary()}"
        if more:
            text += f" (+{more} more range{'s' if more > 1 else ''} hijacked: see the Layers tab)"
        self.label.setText(text)
        self.setToolTip("\n\n".join(warnings))
        self.show()

    def dismiss(self) -> None:
        self._dismissed = self.state.hijack_warnings
        self.hide()

    def _show_layer(self) -> None:
        if self.state.hijacks:
            self.show_layer.emit(self.state.hijacks[0].layer)
