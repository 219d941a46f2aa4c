"""Status bar pieces: model summary, job progress with Cancel, messages and errors.

Errors (and notices, such as a remembered folder that fell back to the sample) are
shown in a banner above the canvas and, as a copy, in the status bar; no modal
dialog, so a bad input never blocks the window (or a test).  A banner message stays
until the user dismisses it (✕) or acts again (the window clears it when an action
is triggered): a later status message never hides it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from squeezelens.gui.panels.quant_presets import describe_size
from squeezelens.gui.state import AppState

MESSAGE_MS = 8000
MAX_ROWS = 3  # the newest messages; older ones are dropped
# (background, text): set both, never inherited, so each reads on light and dark themes
# (contrast: white on #9B1C1C 7.4:1, #1A1A1A on #FFE08A 14:1)
COLOURS = {"error": ("#9B1C1C", "#FFFFFF"), "notice": ("#FFE08A", "#1A1A1A")}


class BannerRow(QFrame):
    """One message with its dismiss button."""

    def __init__(self, kind: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName=f"{kind}Row")
        self.kind = kind
        background, colour = COLOURS[kind]
        self.setStyleSheet(
            f"QFrame#{kind}Row {{ background: {background}; border: none; }}"
            f"QFrame#{kind}Row QLabel, QFrame#{kind}Row QToolButton {{ color: {colour};"
            " background: transparent; font-weight: 600; }"
        )
        self.label = QLabel(text, objectName="errorText", wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton(text="✕", objectName="errorClose")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss this message")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 3, 4, 3)
        row.addWidget(self.label, 1)
        row.addWidget(self.close_button)

    @property
    def text(self) -> str:
        return self.label.text()


class ErrorBanner(QWidget):
    """Errors and notices above the canvas, newest first, each dismissable."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.rows: list[BannerRow] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(1)
        self.hide()

    def show_error(self, text: str) -> None:
        self._add("error", text)

    def show_notice(self, text: str) -> None:
        self._add("notice", text)

    def _add(self, kind: str, text: str) -> None:
        for row in [r for r in self.rows if r.text == text]:  # shown once, as the newest
            self._remove(row)
        row = BannerRow(kind, text, self)
        row.close_button.clicked.connect(lambda: self._remove(row))
        self.rows.insert(0, row)
        self._layout.insertWidget(0, row)
        for old in self.rows[MAX_ROWS:]:
            self._remove(old)
        self.show()

    def _remove(self, row: BannerRow) -> None:
        if row in self.rows:
            self.rows.remove(row)
            row.hide()
            row.deleteLater()
        self.setVisible(bool(self.rows))

    def clear(self) -> None:
        """Dismiss every message (the user acted again)."""
        for row in list(self.rows):
            self._remove(row)

    @property
    def text(self) -> str:
        """The messages shown, newest first, one per line ('' when hidden)."""
        return "\n".join(r.text for r in self.rows) if self.isVisible() else ""


class StatusPanel:
    """Fills a QStatusBar: message (left), progress + Cancel, model summary (right)."""

    def __init__(self, bar: QStatusBar, state: AppState) -> None:
        self.bar, self.state = bar, state
        self.loading = QLabel("", objectName="loadingLabel")
        self.progress = QProgressBar(objectName="jobProgress")
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%v / %m")
        self.cancel = QPushButton("Cancel", objectName="cancelButton")
        self.cancel.setToolTip("Cancel the running evaluation, sweep or sensitivity (Esc)")
        self.job_label = QLabel("", objectName="jobLabel")
        self.summary = QLabel("No model", objectName="modelSummary")
        self.summary.setToolTip(
            "Model: variant, parameters, size at the current bit width vs float"
        )
        bar.addWidget(self.loading)
        bar.addPermanentWidget(self.job_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel)
        bar.addPermanentWidget(self.summary)
        self.set_job("", 0, 0)
        self._busy_timer = QTimer(singleShot=True, interval=150)
        state.message.connect(self.show_message)
        state.error.connect(self.show_error)
        state.notice.connect(self.show_message)
        state.loading.connect(self.set_loading)
        state.job_progress.connect(self.set_job)
        for sig in (state.model_changed, state.quant_changed):
            sig.connect(self.update_summary)

    def show_message(self, text: str) -> None:
        self.bar.setStyleSheet("")
        self.bar.showMessage(self._fit(text), MESSAGE_MS)
        self.bar.setToolTip(text)

    def show_error(self, text: str) -> None:
        self.bar.setStyleSheet("QStatusBar { color: #D55E00; font-weight: 600; }")
        self.bar.showMessage(self._fit(f"Error: {text}", bold=True), 2 * MESSAGE_MS)
        self.bar.setToolTip(f"Error: {text}")

    def _fit(self, text: str, bold: bool = False) -> str:
        """``text`` elided to the room left of the model summary (Qt would draw a long
        message under it); the whole text is the bar's tooltip.  The job widgets are not
        counted: they show only while a job runs, and a message often ends one."""
        font = self.bar.font()
        font.setBold(bold)
        room = max(120, self.bar.width() - self.summary.sizeHint().width() - 32)
        return QFontMetrics(font).elidedText(text, Qt.TextElideMode.ElideRight, room)

    def set_loading(self, text: str) -> None:
        self.loading.setText(text)
        self.loading.setVisible(bool(text))

    def set_job(self, label: str, done: int, total: int) -> None:
        """Show a job's progress; called per progress step, so it only touches what changed
        (a visibility or text change re-lays out the status bar)."""
        active = total > 0
        if self.progress.isVisibleTo(self.bar) != active:
            for w in (self.progress, self.cancel, self.job_label):
                w.setVisible(active)
        self.cancel.setEnabled(active)
        if active:
            if self.job_label.text() != label:
                self.job_label.setText(label)
            if self.progress.maximum() != total:
                self.progress.setRange(0, total)
            self.progress.setValue(done)

    def update_summary(self) -> None:
        info = self.state.model
        if info is None:
            self.summary.setText("No model")
            return
        variant = "SqueezeDet+" if info.variant == "squeezedet+" else "SqueezeDet"
        w, h = info.input_size
        self.summary.setText(f"{variant} {w}×{h} · {describe_size(self.state)}")
