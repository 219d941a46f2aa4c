"""Run › Compute…: where sweeps and sensitivity runs compute, kept in QSettings.

"This process" (the default), "Local Ray workers: N" (a Ray runtime started on
this machine) or "Ray cluster: ADDRESS" (``auto``: the cluster ``ray start``
started here).  Without Ray (the ``distributed`` extra) the Ray choices are
disabled and say which package to install.  The chosen place is shown beside
the sweep's Run button and in the progress text of every job that uses it;
:class:`gui.compute_pool.RayCompute` runs the jobs there.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from squeezelens.engine.errors import InputError
from squeezelens.gui.compute_pool import EXTRA_HINT, WHERE, ComputeChoice, RayCompute, ray_installed
from squeezelens.gui.settings import Settings

KEY = "compute/"  # QSettings keys: compute/where, compute/workers, compute/address
MISSING_TIP = f"Ray is not installed: {EXTRA_HINT}"
ERROR_STYLE = "color: #D55E00;"


def load_choice(settings: Settings) -> ComputeChoice:
    """The saved setting (the default where none, or where it is unreadable)."""
    where = settings.value(KEY + "where", "process", str)
    choice = ComputeChoice(
        where if where in WHERE else "process",
        max(1, settings.value(KEY + "workers", 2, int) or 2),
        settings.value(KEY + "address", "auto", str) or "auto",
    )
    try:
        choice.spec()
    except InputError:
        return ComputeChoice()
    return choice


def save_choice(settings: Settings, choice: ComputeChoice) -> None:
    settings.set(KEY + "where", choice.where)
    settings.set(KEY + "workers", choice.workers)
    settings.set(KEY + "address", choice.address)


class ComputeDialog(QDialog):
    """Three choices, the Ray ones disabled (with the extra's name) where Ray is missing."""

    def __init__(self, choice: ComputeChoice, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="computeDialog")
        self.setWindowTitle("Compute — where sweeps and sensitivity run")
        self.process = QRadioButton("This process", objectName="computeProcess")
        self.local = QRadioButton("Local Ray workers:", objectName="computeWorkers")
        self.cluster = QRadioButton("Ray cluster:", objectName="computeCluster")
        self.group = QButtonGroup(self)
        for button in (self.process, self.local, self.cluster):
            self.group.addButton(button)
        self.workers = QSpinBox(objectName="computeWorkersSpin", minimum=1, maximum=4096)
        self.workers.setValue(choice.workers)
        self.address = QLineEdit(choice.address, objectName="computeAddress")
        self.address.setPlaceholderText("host:port, or auto")
        self.address.setToolTip("The head node's address (ray start --head prints it), or "
                                "auto for the cluster started on this machine")  # fmt: skip
        self.problem = QLabel("", objectName="computeProblem", wordWrap=True)
        self.problem.setStyleSheet(ERROR_STYLE)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._layout()
        self._offer_ray(ray_installed())
        selected = {"workers": self.local, "cluster": self.cluster}.get(choice.where)
        (selected if selected is not None and selected.isEnabled() else self.process).setChecked(
            True
        )
        self.group.buttonToggled.connect(self._sync)
        self._sync()

    def _layout(self) -> None:
        grid = QGridLayout()
        grid.addWidget(self.process, 0, 0, 1, 2)
        grid.addWidget(self.local, 1, 0)
        grid.addWidget(self.workers, 1, 1)
        grid.addWidget(self.cluster, 2, 0)
        grid.addWidget(self.address, 2, 1)
        note = QLabel("Sweeps and sensitivity runs are cut into tasks (config × image shard); "
                      "each Ray worker loads the model once. Results are identical to this "
                      "process's.", wordWrap=True)  # fmt: skip
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(note)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

    def _offer_ray(self, installed: bool) -> None:
        for widget in (self.local, self.cluster, self.workers, self.address):
            widget.setEnabled(installed)
            if not installed:
                widget.setToolTip(MISSING_TIP)
        if not installed:
            self.problem.setText(MISSING_TIP)

    def _sync(self, *_args) -> None:
        if self.local.isEnabled():
            self.workers.setEnabled(self.local.isChecked())
            self.address.setEnabled(self.cluster.isChecked())

    def choice(self) -> ComputeChoice:
        """What the dialog shows (not yet checked: see :meth:`accept`)."""
        where = "workers" if self.local.isChecked() else "process"
        where = "cluster" if self.cluster.isChecked() else where
        return ComputeChoice(where, self.workers.value(), self.address.text().strip())

    def accept(self) -> None:
        """Keep the dialog open with a one-line problem for a value the engine refuses."""
        try:
            self.choice().spec()
        except InputError as exc:
            self.problem.setText(str(exc))
            return
        super().accept()


class ComputeSettings(QObject):
    """The Run › Compute… action, the saved setting, and the 'runs on' label."""

    changed = Signal(str)  # where jobs run now (ComputeChoice.describe)

    def __init__(self, settings: Settings, compute: RayCompute, parent: QWidget) -> None:
        super().__init__(parent)
        self.settings, self.compute, self.window = settings, compute, parent
        self.action = QAction("Compute…", parent, objectName="computeAction")
        self.action.setStatusTip("Where sweeps and sensitivity runs compute: this process or Ray")
        self.action.triggered.connect(self.ask)
        self.label = QLabel("", objectName="computeLabel")
        self.label.setToolTip("Where sweeps and sensitivity runs compute (Run › Compute…)")
        self.dialog: ComputeDialog | None = None
        self.apply(load_choice(settings), save=False)

    def apply(self, choice: ComputeChoice, save: bool = True) -> None:
        """Use ``choice`` from the next job on (a pool kept for the old one stops)."""
        if save:
            save_choice(self.settings, choice)
        self.compute.set_choice(choice)
        self.label.setText(choice.place())
        self.changed.emit(choice.describe())

    def ask(self) -> None:
        """Open the dialog (modal); OK applies and saves the choice."""
        self.dialog = ComputeDialog(self.compute.choice, self.window)
        self.dialog.accepted.connect(lambda: self.apply(self.dialog.choice()))
        self.dialog.open()
