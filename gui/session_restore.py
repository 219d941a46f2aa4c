"""Saving and reopening sessions in the window: the files load in the background, the view
is applied once they are the open ones.

:class:`SessionRestore` keeps the one pending session.  Opening a session reads and
validates the whole file first (:func:`gui.session.load_session`); a bad file is
reported and nothing changes.  Then the session's checkpoint and dataset are
opened (unless already open); each time a model or dataset arrives the pending
session is re-examined, and once both are the session's, its fields that name
things in them (layer, image, class) are checked and the view is applied at
once.  A session whose checkpoint or dataset fails to open is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QWidget

from squeezelens.engine.errors import InputError
from squeezelens.gui import session
from squeezelens.gui.controller import Controller
from squeezelens.gui.session import Session
from squeezelens.gui.settings import Settings
from squeezelens.gui.state import AppState

FILTER = "Session (*.json)"
WindowView = Callable[[], dict]  # the parts of a session that live in widgets
ApplyWindowView = Callable[[Session], None]


class SessionRestore(QObject):
    """Save the view as a session; reopen one (files first, then the view)."""

    def __init__(self, state: AppState, controller: Controller, settings: Settings,
                 window_view: WindowView, apply_window_view: ApplyWindowView,
                 parent: QWidget) -> None:  # fmt: skip
        super().__init__(parent)
        self.state, self.controller, self.settings = state, controller, settings
        self.window_view, self.apply_window_view = window_view, apply_window_view
        self.pending: Session | None = None
        self._path = ""  # the pending session's file (for messages)
        state.model_changed.connect(self.resume)
        state.dataset_changed.connect(self.resume)
        controller.failed.connect(self._on_job_failed)

    # ----------------------------------------------------------------- saving
    def ask_save(self) -> None:
        parent = self.parent()
        path, _ = QFileDialog.getSaveFileName(parent, "Save session", self._dialog_dir(), FILTER)
        if path:
            self.save(path if path.endswith(".json") else path + ".json")

    def save(self, path: str) -> None:
        data = {**session.session_dict(self.state), **self.window_view()}
        try:
            session.save_session(path, data)
        except OSError as exc:
            self.state.error.emit(f"{path}: cannot write the session ({exc.strerror or exc})")
            return
        self.settings.add_recent("session", path)
        self.state.message.emit(f"Saved session {path}")

    # ---------------------------------------------------------------- opening
    def ask_open(self) -> None:
        parent = self.parent()
        path, _ = QFileDialog.getOpenFileName(parent, "Open session", self._dialog_dir(), FILTER)
        if path:
            self.open(path)

    def open(self, path: str) -> None:
        """Reopen a session: validated first; files load in the background, the view after."""
        try:
            data = session.load_session(path)
        except InputError as exc:
            self.state.error.emit(str(exc))
            return
        self.settings.add_recent("session", path)
        self.pending, self._path = data, path
        model, ds = self.state.model, self.state.dataset
        if data.checkpoint and (model is None or model.checkpoint_path != data.checkpoint):
            self.controller.open_checkpoint(data.checkpoint)
        if data.kitti_root and (ds is None or str(ds.root) != data.kitti_root
                                or ds.split != (data.split or "val")):  # fmt: skip
            self.controller.open_dataset(data.kitti_root, data.split or "val")
        self.resume()

    def resume(self) -> None:
        """Apply the pending session once its checkpoint and dataset are the open ones."""
        data = self.pending
        if data is None:
            return
        model, ds = self.state.model, self.state.dataset
        if data.checkpoint and (model is None or model.checkpoint_path != data.checkpoint):
            return
        if data.kitti_root and (ds is None or str(ds.root) != data.kitti_root):
            return
        self.pending = None
        try:
            session.check_against(data, model, ds, self._path)
        except InputError as exc:
            self.state.error.emit(f"session not restored: {exc}")
            return
        session.apply_view(self.state, data)
        self.apply_window_view(data)
        if ds is not None and data.image is not None:
            self.controller.go_to(ds.stems.index(data.image))
        self.state.message.emit("Session restored")

    def _on_job_failed(self, label: str) -> None:
        """A session whose checkpoint or dataset failed to open is not restored later."""
        if label in ("load", "dataset") and self.pending is not None:
            self.pending = None
            what = "checkpoint" if label == "load" else "dataset"
            self.state.error.emit(f"session not restored: its {what} failed to open")

    def _dialog_dir(self) -> str:
        last = self.settings.last("session")
        return str(Path(last).parent) if last else str(Path.home())
