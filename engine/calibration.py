"""The calibration set: which images fix activation ranges and the INT8 model's scales.

One rule for the CLI, the GUI and the Python API (so they give the same numbers):

    the first ``count`` (default 32) images, in file-path order, of the ``--calib``
    paths (files or folders) when given, else of the ``train`` split of the KITTI
    folder in use (``--kitti-root``; the bundled sample data when there is none).

The split being evaluated is never the default (``val`` is the usual one); a KITTI
folder without a ``train`` split needs explicit ``--calib`` paths.  A
:class:`CalibrationSource` says where the images come from;
:meth:`CalibrationSource.resolve` lists them as a :class:`CalibrationSet` (paths plus a
provenance record).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezelens.engine.errors import InputError

CALIBRATION_SPLIT = "train"
CALIBRATION_COUNT = 32
CALIBRATION_RULE = (
    f"the first {CALIBRATION_COUNT} images (--calib-count), in file-path order, of --calib PATH... "
    f"when given, else of the {CALIBRATION_SPLIT} split of the KITTI folder (--kitti-root; the "
    "bundled sample data when none)"
)


@dataclass(frozen=True)
class CalibrationSet:
    """The resolved calibration images and where they came from."""

    paths: tuple[str, ...]
    source: str  # one line: "train split of ROOT" or "PATH ..."

    def __len__(self) -> int:
        return len(self.paths)

    def record(self) -> dict:
        """{"count", "sha256", "source"} for provenance (see engine.provenance)."""
        from squeezelens.engine.provenance import calibration_record

        return calibration_record(self.paths, self.source)

    def images(self) -> list:
        """The decoded BGR images (InputError naming a file that cannot be read)."""
        from squeezelens.engine.data.images import read_image_bgr

        return [read_image_bgr(p) for p in self.paths]


@dataclass(frozen=True, eq=False)
class CalibrationInputs:
    """The calibration images as network inputs, kept by a detector for activation ranges,
    bias correction and AdaRound (``Detector.set_calibration``).

    inputs: (N, h, w, 3) float32 preprocessed images; key: sha256 of the decoded images
    (cache keys); record: provenance ({"count", "sha256", "source"}) when known.
    """

    inputs: np.ndarray
    key: str
    record: dict | None = None


@dataclass(frozen=True)
class CalibrationSource:
    """Where calibration images come from: explicit ``paths``, else ``kitti_root``'s train split.

    ``kitti_root`` None means the bundled sample data.  ``count`` caps the set.
    """

    paths: tuple[str, ...] = ()
    kitti_root: str | None = None
    count: int = CALIBRATION_COUNT

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < 1:
            raise InputError(f"--calib-count must be at least 1, got {self.count!r}")

    def resolve(self) -> CalibrationSet:
        """List the images (sorted by path, the first ``count``); InputError when there are none."""
        from squeezelens.engine.data.images import list_images

        if self.paths:
            found = sorted(str(p) for p in list_images(list(self.paths)))
            if not found:
                raise InputError(f"no images found in {' '.join(self.paths)} (--calib)")
            return CalibrationSet(tuple(found[: self.count]), " ".join(self.paths))
        root = self._root()
        found = sorted(_split_images(root, CALIBRATION_SPLIT))
        source = f"{CALIBRATION_SPLIT} split of {root}"
        if not self.kitti_root:
            source += " (bundled sample data)"
        return CalibrationSet(tuple(found[: self.count]), source)

    def _root(self) -> str:
        if self.kitti_root:
            return str(self.kitti_root)
        from squeezelens.engine.samples import default_kitti_root

        root = default_kitti_root()
        if root is None:
            raise InputError("no calibration images: give --calib PATH or --kitti-root ROOT")
        return str(root)


def _split_images(root: str, split: str) -> list[str]:
    from squeezelens.engine.data.kitti import available_splits, open_dataset

    if split not in available_splits(root):
        raise InputError(
            f"no calibration images: the folder has no {split} split (calibration never uses "
            "the evaluated split); give --calib PATH",
            Path(root),
        )
    return [str(r.path) for r in open_dataset(root, split).records]


def default_calibration(
    kitti_root: str | os.PathLike | None = None,
    paths: Sequence[str | os.PathLike] = (),
    count: int = CALIBRATION_COUNT,
) -> CalibrationSet:
    """The calibration set the rule gives (see the module docstring)."""
    source = CalibrationSource(
        tuple(str(p) for p in paths), str(kitti_root) if kitti_root else None, count
    )
    return source.resolve()
