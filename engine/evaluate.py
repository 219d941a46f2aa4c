"""Run a detector over a dataset and score it with the KITTI protocol.

Images are decoded in a background thread (see :mod:`engine.prefetch`) while
the model runs; each finished image can be handed to a callback (the CLI writes
its KITTI result file at once, so an interrupted run loses nothing finished).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from engine.data.images import read_image_bgr
from engine.data.kitti import Dataset
from engine.errors import InputError
from engine.jobs import CancelToken, Progress, check
from engine.prefetch import prefetch
from engine.types import Detections, ImageRecord


class SupportsDetect(Protocol):
    class_names: tuple[str, ...]

    def detect(self, image: np.ndarray, quant=None, threshold: float = 0.0) -> Detections: ...


OnImage = Callable[[ImageRecord, Detections], None]


def detect_dataset(
    detector: SupportsDetect,
    dataset: Dataset,
    quant=None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    on_image: OnImage | None = None,
) -> dict[str, Detections]:
    """Detections (every kept box, no threshold) for each image of a dataset, by stem."""
    out: dict[str, Detections] = {}
    total = len(dataset)
    for record, image in prefetch(dataset.records, lambda r: read_image_bgr(r.path)):
        check(cancel)
        if isinstance(image, BaseException):
            if isinstance(image, InputError):
                raise image
            raise InputError(f"cannot read image ({image})", record.path)
        dets = detector.detect(image) if quant is None else detector.detect(image, quant=quant)
        out[record.stem] = dets
        if on_image is not None:
            on_image(record, dets)
        if progress is not None:
            progress(len(out), total)
    return out


def evaluate(
    detector: SupportsDetect,
    dataset: Dataset,
    quant=None,
    protocol: str = "official",
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    on_image: OnImage | None = None,
):
    """Detect on every image of a labelled dataset and return its KITTI EvalResult."""
    from engine.eval import evaluate_detections

    if not dataset.has_labels:
        raise InputError(
            "cannot evaluate: the folder has no KITTI labels (training/label_2)", dataset.root
        )
    dets = detect_dataset(detector, dataset, quant, progress, cancel, on_image)
    return evaluate_detections(
        dataset.records, dets, protocol=protocol, classes=tuple(detector.class_names)
    )
