"""Run a detector over a dataset and score it with the KITTI protocol.

Images are decoded and preprocessed (resized, means subtracted) in background
threads, either a few at a time on every core between forward passes
(``loading="bursts"``, :func:`engine.prefetch.load_in_bursts`; best when
TensorFlow keeps every core busy, as on an otherwise idle machine) or by a reader
running beside the model (``"ahead"``, :func:`engine.prefetch.prefetch`; best when
the model leaves cores idle, as on a busy machine).  The default, ``"auto"``,
times both on the first images and keeps the faster.  Each finished image
can be handed to a callback (the CLI writes its KITTI result file at once, so
an interrupted run loses nothing finished).  Dataset images bypass the
detector's per-image float cache (no hashing of full images).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np

from squeezelens.engine.data.images import read_image_bgr
from squeezelens.engine.data.kitti import Dataset
from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, Progress, check
from squeezelens.engine.prefetch import load_adaptively, load_in_bursts, prefetch
from squeezelens.engine.types import Detections, ImageRecord


class SupportsDetect(Protocol):
    """What evaluation needs.  Detectors that also have ``preprocess(image) -> (x, scale)``,
    ``forward(batch, quant)`` and ``decode(raw, scale)`` (:class:`engine.detector.Detector`,
    the INT8 detector) get their preprocessing run in the loader threads."""

    class_names: tuple[str, ...]

    def detect(self, image: np.ndarray, quant=None, threshold: float = 0.0) -> Detections: ...


OnImage = Callable[[ImageRecord, Detections], None]
ReadImage = Callable[[ImageRecord], np.ndarray]  # record -> BGR image
LOADERS = {"auto": load_adaptively, "bursts": load_in_bursts, "ahead": prefetch}
LOADING = "auto"
_STAGES = ("preprocess", "forward", "decode")


def has_stages(detector) -> bool:
    """Whether ``detector`` exposes ``preprocess``, ``forward`` and ``decode`` separately
    (so a caller can prepare an image once and reuse the network input)."""
    return all(callable(getattr(detector, name, None)) for name in _STAGES)


def read_record(record: ImageRecord) -> np.ndarray:
    """The image of a record, read from its path (the default :data:`ReadImage`)."""
    return read_image_bgr(record.path)


def _pipeline(detector: SupportsDetect, quant, read: ReadImage) -> tuple[Callable, Callable]:
    """(prepare(record) for the loader threads, run(prepared) -> Detections in series)."""
    if has_stages(detector):

        def prepare(record: ImageRecord):
            return detector.preprocess(read(record))

        def run(prepared) -> Detections:
            x, scale = prepared
            return detector.decode(detector.forward(x[None], quant)[0], scale)

        return prepare, run

    def run_plain(image: np.ndarray) -> Detections:
        return detector.detect(image) if quant is None else detector.detect(image, quant=quant)

    return read, run_plain


def prepared_records(
    records: Sequence[ImageRecord],
    prepare: Callable,
    cancel: CancelToken | None = None,
    loading: str | None = None,
) -> Iterator[tuple[ImageRecord, object]]:
    """(record, prepare(record)) in order, prepared by the loader threads of ``loading``;
    an image that fails to load raises InputError naming it; cancel is checked per image."""
    for record, prepared in LOADERS[loading or LOADING](records, prepare):
        check(cancel)
        if isinstance(prepared, BaseException):
            if isinstance(prepared, InputError):
                raise prepared
            raise InputError(f"cannot read image ({prepared})", record.path)
        yield record, prepared


def detect_dataset(
    detector: SupportsDetect,
    dataset: Dataset,
    quant=None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    on_image: OnImage | None = None,
    loading: str | None = None,
    read: ReadImage | None = None,
) -> dict[str, Detections]:
    """Detections (every kept box, no threshold) for each image of a dataset, by stem.

    loading: how images are read while the model runs, a key of :data:`LOADERS`
    (default :data:`LOADING`).  read: how a record's image is obtained (default
    from its path; a Ray worker decodes shipped bytes).
    """
    out: dict[str, Detections] = {}
    total = len(dataset)
    prepare, run = _pipeline(detector, quant, read or read_record)
    for record, prepared in prepared_records(dataset.records, prepare, cancel, loading):
        dets = run(prepared)
        out[record.stem] = dets
        if on_image is not None:
            on_image(record, dets)
        if progress is not None:
            progress(len(out), total)
    return out


def require_labels(dataset: Dataset) -> None:
    """InputError unless every image of ``dataset`` has a label file (it can be scored)."""
    if not dataset.has_labels:
        raise InputError(
            "cannot evaluate: the folder has no KITTI labels (training/label_2)", dataset.root
        )


def evaluate(
    detector: SupportsDetect,
    dataset: Dataset,
    quant=None,
    protocol: str = "official",
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    on_image: OnImage | None = None,
    loading: str | None = None,
):
    """Detect on every image of a labelled dataset and return its KITTI EvalResult."""
    from squeezelens.engine.eval import evaluate_detections

    require_labels(dataset)
    dets = detect_dataset(detector, dataset, quant, progress, cancel, on_image, loading)
    return evaluate_detections(
        dataset.records, dets, protocol=protocol, classes=tuple(detector.class_names)
    )
