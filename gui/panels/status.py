"""Status bar pieces: model summary, job progress with Cancel, messages and errors.

Errors are shown in a banner above the canvas and in the status bar; no modal
dialog, so a bad input never blocks the window (or a test).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QToolButton,
    QWidget,
)

from squeezelens.gui.panels.quant_presets import describe_size
from squeezelens.gui.state import AppState

MESSAGE_MS = 8000


class ErrorBanner(QWidget):
    """A dismissable one-line error above the canvas."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.label = QLabel("", objectName="errorText", wordWrap=True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(text="✕", objectName="errorClose")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 3, 4, 3)
        row.addWidget(self.label, 1)
        row.addWidget(close)
        self.setStyleSheet(
            "#errorBanner { background: #5c1f00; } #errorText { color: #ffffff; font-weight: 600; }"
        )
        self.setAutoFillBackground(True)
        self.hide()

    def show_error(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


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
        state.loading.connect(self.set_loading)
        state.job_progress.connect(self.set_job)
        for sig in (state.model_changed, state.quant_changed):
            sig.connect(self.update_summary)

    def show_message(self, text: str) -> None:
        self.bar.setStyleSheet("")
        self.bar.showMessage(text, MESSAGE_MS)

    def show_error(self, text: str) -> None:
        self.bar.setStyleSheet("QStatusBar { color: #D55E00; font-weight: 600; }")
        self.bar.showMessage(f"Error: {text}", 2 * MESSAGE_MS)

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
