"""The mixed-precision search run from the window, and searches opened from disk.

:func:`start_search` runs :func:`engine.search.run_search` as a long job (progress
in the status bar, Esc cancels) on the **train** split of the open KITTI folder:
like calibration, the search never chooses on the split the window evaluates.
Its folder is the user's choice or one per checkpoint, folder, widths and base
config under the window's results folder, so running the same search again
resumes it as the CLI does (the csv files are written as measured).  The base
config is the edited config without its per-layer widths (the search chooses
them), at the widest candidate width; activation bits and INT8 are refused, as
the CLI refuses them.  :func:`open_search` reads a finished search
(:func:`engine.search_files.read_search`) on the io worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig

if TYPE_CHECKING:
    from squeezelens.engine.search_files import SavedSearch
    from squeezelens.gui.controller import Controller
    from squeezelens.gui.workers import JobContext

LABEL = "search"
SEARCH_SPLIT = "train"


def parse_widths(text: str) -> list[int]:
    """'2,3,4,6,8' -> [2, 3, 4, 6, 8] (InputError naming the bad entry)."""
    widths = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        if not item.isdigit():
            raise InputError(f"widths must be whole numbers separated by commas, got {item!r}")
        widths.add(QuantConfig(bits=int(item)).bits)  # 1-16, else the engine's message
    if not widths:
        raise InputError("give the candidate widths, e.g. 2,3,4,6,8")
    return sorted(widths)


def search_base(config: QuantConfig | None, widths: Sequence[int], int8: bool) -> QuantConfig:
    """The config every point shares (the CLI's rules: no activation bits, no INT8)."""
    if int8:
        raise InputError("the search chooses weight widths: untick TFLite INT8 first")
    base = config or QuantConfig()
    if base.activation_bits:
        raise InputError("the search chooses weight widths only: set Activations to off first")
    return base.replace(bits=max(widths), overrides=())


def default_folder(root: Path, sha256: str, kitti_root: str, protocol: str,
                   widths: Sequence[int], base: QuantConfig) -> Path:  # fmt: skip
    """One resumable folder per checkpoint, KITTI folder, protocol, widths and base config."""
    from squeezelens.engine.sweep import config_key

    what = f"{kitti_root}\n{list(widths)}\n{config_key(base.to_dict())}"
    where = hashlib.sha256(what.encode()).hexdigest()[:8]
    return root / f"{(sha256 or 'weights')[:16]}_{SEARCH_SPLIT}_{protocol}_{where}"


def _images(meta: dict) -> int:
    """How many images the search scored (its split of its folder, if still there)."""
    from squeezelens.engine.data.kitti import open_dataset

    try:
        return len(open_dataset(meta["kitti_root"], meta["split"]))
    except (InputError, KeyError, TypeError, OSError):
        return 0


def open_search(path: str | Path) -> Callable[[JobContext], tuple[SavedSearch, int]]:
    """A job reading a finished search (folder, search.json or front.csv)."""

    def job(ctx: JobContext) -> tuple[SavedSearch, int]:
        from squeezelens.engine.search_files import read_search

        saved = read_search(path)
        return saved, _images(saved.meta)

    return job


def search_job(controller: Controller, widths: Sequence[int], max_drop: float, base: QuantConfig,
               out_dir: Path, protocol: str) -> Callable[[JobContext], Any]:  # fmt: skip
    """The job body: the train split of the open folder, calibrated where the base needs it."""
    handle, root = controller.handle, str(controller.state.dataset.root)
    calibration = controller.calibration

    def job(ctx: JobContext) -> tuple[SavedSearch, int]:
        from squeezelens.engine.data.kitti import available_splits, open_dataset
        from squeezelens.engine.search import run_search
        from squeezelens.engine.search_files import read_search
        from squeezelens.engine.sweep import sweep_meta

        if SEARCH_SPLIT not in available_splits(root):
            raise InputError("no train split to search on (the search never chooses on the "
                             "split it is evaluated on)", root)  # fmt: skip
        dataset = open_dataset(root, SEARCH_SPLIT)
        if not dataset.has_labels:
            raise InputError("cannot search: the train split has no KITTI labels", root)
        calib = calibration() if base.needs_calibration else None
        if calib is not None:
            handle.use_calibration(calib)
        meta = sweep_meta(handle.detector, dataset, protocol, calib)

        def progress(phase: str, done: int, total: int) -> None:
            ctx.set_text(f"Search: {phase} on {len(dataset)} train images")
            ctx.progress(done, total)

        run_search(handle.detector, dataset, base, widths, max_drop, out_dir, meta, protocol,
                   progress=progress, cancel=ctx.token)  # fmt: skip
        return read_search(out_dir), len(dataset)

    return job


def start_search(controller: Controller, widths: Sequence[int], max_drop: float,
                 base: QuantConfig, out_dir: Path, protocol: str,
                 on_done: Callable[[Any], None]) -> bool:  # fmt: skip
    """Start the search as a long job (False when there is no model / KITTI folder, or another
    long job runs; the reason is shown)."""
    state = controller.state
    if controller.handle is None or state.dataset is None or state.dataset.split == "images":
        state.error.emit("Open a checkpoint and a KITTI folder (with a train split) first")
        return False
    job = search_job(controller, widths, max_drop, base, out_dir, protocol)
    text = f"Search: widths {','.join(map(str, widths))} on the train split"
    return controller.long.submit(job, LABEL, text, on_done=on_done)
