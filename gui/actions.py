"""The window's actions in a typed NamedTuple, with their texts and shortcuts."""

from __future__ import annotations

from typing import NamedTuple

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget


class Actions(NamedTuple):
    open_checkpoint: QAction
    open_kitti: QAction
    open_images: QAction
    open_session: QAction
    save_session: QAction
    copy_command: QAction
    reopen_last: QAction
    reopen_at_start: QAction
    quit: QAction
    export_any: QAction
    export_canvas: QAction
    export_pr: QAction
    export_errors: QAction
    export_sweep: QAction
    export_ap: QAction
    export_params: QAction
    export_window: QAction
    prev_image: QAction
    next_image: QAction
    flip: QAction
    overlay: QAction
    side_by_side: QAction
    reset_zoom: QAction
    evaluate: QAction
    sweep: QAction
    cancel: QAction
    shortcuts: QAction
    about: QAction


def _action(parent: QObject, text: str, shortcut=None, tip: str = "", icon=None) -> QAction:
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    if icon is not None:
        action.setIcon(icon)
    return action


def _file_actions(window: QWidget, style: QStyle) -> dict[str, QAction]:
    sp, key = QStyle.StandardPixmap, QKeySequence.StandardKey
    return dict(
        open_checkpoint=_action(window, "Open &checkpoint…", key.Open, "Open a SqueezeDet checkpoint (TF1, .h5, .npz)",
                                style.standardIcon(sp.SP_DialogOpenButton)),
        open_kitti=_action(window, "Open &KITTI folder…", "Ctrl+K", "Open a KITTI object folder (training/image_2, label_2)",
                           style.standardIcon(sp.SP_DirOpenIcon)),
        open_images=_action(window, "Open &image folder…", "Ctrl+I", "Open a folder of images (no labels)",
                            style.standardIcon(sp.SP_DirIcon)),
        open_session=_action(window, "Open session…", "Ctrl+Shift+O", "Reopen a saved session (.json)"),
        save_session=_action(window, "&Save session…", key.Save, "Save the whole view as JSON"),
        copy_command=_action(window, "Copy as &command", "Ctrl+Shift+C", "Copy the equivalent squeezelens command"),
        reopen_last=_action(window, "Reopen &last files", "Ctrl+Shift+R", "Open the last checkpoint and folder again"),
        reopen_at_start=_action(window, "Reopen last files at start-up", None,
                                "squeezelens gui without arguments reopens the last files (else the bundled sample)"),
        quit=_action(window, "&Quit", key.Quit, "Quit SqueezeLens"),
    )  # fmt: skip


def _export_actions(window: QWidget, style: QStyle) -> dict[str, QAction]:
    return dict(
        export_any=_action(window, "&Export…", "Ctrl+E", "Choose what to export (Ctrl+E)",
                           style.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton)),
        export_canvas=_action(window, "Canvas as PNG…", None, "Save the image with its boxes as PNG"),
        export_pr=_action(window, "PR curves (PNG, SVG, CSV)…", None, "Export the PR plot"),
        export_errors=_action(window, "Detection errors (PNG, SVG, CSV)…", None, "Export the error chart"),
        export_sweep=_action(window, "Sweep plot (PNG, SVG, CSV)…", None, "Export the mAP-vs-bits plot"),
        export_ap=_action(window, "AP table (CSV + JSON)…", None, "Export the AP table"),
        export_params=_action(window, "Quantized parameters (.npz)…", None, "Write the quantized weights"),
        export_window=_action(window, "Window screenshot (PNG)…", None, "Save a screenshot of the window"),
    )  # fmt: skip


def _view_actions(window: QWidget) -> dict[str, QAction]:
    return dict(
        prev_image=_action(window, "Previous image", Qt.Key.Key_Left, "Previous image (Left)"),
        next_image=_action(window, "Next image", Qt.Key.Key_Right, "Next image (Right)"),
        flip=_action(window, "Flip float / quantized", Qt.Key.Key_Space, "Blink between the two models' boxes (Space)"),
        overlay=_action(window, "Overlay", "Ctrl+1", "All boxes in one view"),
        side_by_side=_action(window, "Side by side", "Ctrl+2", "Float | quantized, synced zoom"),
        reset_zoom=_action(window, "Reset zoom", "Ctrl+0", "Fit the image"),
    )  # fmt: skip


def _run_actions(window: QWidget, style: QStyle) -> dict[str, QAction]:
    sp = QStyle.StandardPixmap
    return dict(
        evaluate=_action(window, "Evaluate", "Ctrl+R", "KITTI AP of both models on the split (background)",
                         style.standardIcon(sp.SP_MediaPlay)),
        sweep=_action(window, "Sweep", None, "mAP vs bits (background)"),
        cancel=_action(window, "Cancel job", Qt.Key.Key_Escape, "Cancel the running evaluation, sweep, sensitivity or INT8 conversion",
                       style.standardIcon(sp.SP_BrowserStop)),
        shortcuts=_action(window, "Keyboard shortcuts", "F1"),
        about=_action(window, "About SqueezeLens"),
    )  # fmt: skip


def create_actions(window: QWidget) -> Actions:
    """Every action of the main window (not yet connected)."""
    style = window.style()
    a = Actions(**_file_actions(window, style), **_export_actions(window, style),
                **_view_actions(window), **_run_actions(window, style))  # fmt: skip
    a.reopen_at_start.setCheckable(True)
    a.overlay.setCheckable(True)
    a.side_by_side.setCheckable(True)
    a.overlay.setChecked(True)
    a.open_checkpoint.setIconText("Checkpoint")
    a.open_kitti.setIconText("KITTI folder")
    a.open_images.setIconText("Image folder")
    a.export_any.setIconText("Export")
    return a


EXPORT_ACTIONS = ("export_canvas", "export_pr", "export_errors", "export_sweep", "export_ap", "export_params",
                  "export_window")  # fmt: skip


SHORTCUTS_HELP = """<b>Keyboard</b><br>
Left / Right: previous / next image<br>
Space: flip between float and quantized boxes<br>
Ctrl+E: export… (canvas, PR or sweep plot, AP table, quantized parameters)<br>
Ctrl+1 / Ctrl+2: overlay / side by side; Ctrl+0: reset zoom<br>
Ctrl+R: evaluate; Esc: cancel the running job<br>
Ctrl+O / Ctrl+K / Ctrl+I: open checkpoint / KITTI folder / image folder<br>
Ctrl+S: save session; Ctrl+Shift+C: copy as command<br>
Mouse: wheel zooms, drag pans, hover a box for its score and IoU"""
