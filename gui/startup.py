"""What the window opens at start-up, and what "Reopen last files" opens.

``squeezelens gui`` opens what its arguments name; without any, the bundled
sample model and scenes (as README and ``--help`` say), or, when the user turned
on *Reopen last files at start-up*, the last checkpoint and folder.  A remembered
file or folder that is gone falls back to the bundled sample, with a note that
says so (shown until dismissed); a remembered split that a folder no longer has
falls back when the folder opens (:meth:`gui.controller.Controller.open_dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from squeezelens.gui.settings import Settings

REOPEN_LAST = "reopenLast"  # the setting: reopen the last files at start-up


class StartArgs(Protocol):
    """The ``squeezelens gui`` arguments that choose what opens."""

    checkpoint: str | None
    kitti_root: str | None
    images: str | None
    split: str


@dataclass(frozen=True)
class StartupPlan:
    """Files to open: ``split`` is the user's explicit choice unless ``remembered`` (then a
    folder without it opens another split and says so)."""

    checkpoint: str | None
    root: str | None
    split: str
    remembered: bool = False
    notes: tuple[str, ...] = ()


def checkpoint_exists(checkpoint: str) -> bool:
    """A checkpoint path or TF1 prefix that is still there."""
    p = Path(checkpoint)
    return p.exists() or Path(checkpoint + ".index").exists()


def bundled() -> tuple[str | None, str | None]:
    """The bundled sample model and KITTI folder (None where this install has none)."""
    from squeezelens.engine.samples import default_checkpoint, default_kitti_root

    ckpt, root = default_checkpoint(), default_kitti_root()
    return (str(ckpt) if ckpt else None), (str(root) if root else None)


def plan_startup(args: StartArgs, settings: Settings, remembered_split: str) -> StartupPlan:
    """What to open for these arguments: the named files; else the last ones when the user
    asked for that; else the bundled sample."""
    if args.images:
        return StartupPlan(args.checkpoint, args.images, "all")
    if args.checkpoint or args.kitti_root:
        return StartupPlan(args.checkpoint, args.kitti_root, args.split)
    if settings.value(REOPEN_LAST, False, bool):
        return plan_reopen_last(settings, remembered_split)
    ckpt, root = bundled()
    return StartupPlan(ckpt, root, "val")


def plan_reopen_last(settings: Settings, remembered_split: str) -> StartupPlan:
    """The last checkpoint and folder opened; what is gone falls back to the bundled sample."""
    sample_ckpt, sample_root = bundled()
    notes = []
    ckpt = settings.last("checkpoint")
    if ckpt and not checkpoint_exists(ckpt):
        notes.append(
            f"The last checkpoint {ckpt} no longer exists: opened the bundled sample model"
        )
        ckpt = sample_ckpt
    kind, root = next(((k, p) for k, p in settings.recent() if k in ("kitti", "images")),
                      ("kitti", None))  # fmt: skip
    if root and not Path(root).is_dir():
        notes.append(f"The last folder {root} no longer exists: opened the bundled sample scenes")
        kind, root = "kitti", sample_root
    ckpt, root = ckpt or sample_ckpt, root or sample_root  # nothing remembered yet
    split = "all" if kind == "images" else remembered_split
    return StartupPlan(ckpt, root, split, remembered=kind == "kitti", notes=tuple(notes))
