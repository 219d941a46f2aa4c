"""Evaluate with the loss explained: error types of float and quantized, head split, twins.

One pass over a labelled split: each image is read and preprocessed once (in
the loader threads, as ``evaluate`` does), then the float model and the
quantized model (simulated: the same Detector with a QuantConfig, which keeps
the quantized weights, so a swap is one assignment of about 3 ms; or an INT8
detector) run on the same input.  Per image the two raw ConvDet outputs feed
the head split (:class:`engine.diagnostics.HeadSplit`) and the two detection sets, at the
twin threshold, are compared (:func:`engine.compare.compare_detections`); the
raw outputs are then dropped.  Both detection sets are then scored and
explained by :func:`engine.eval.errors.analyse_errors`.

Without a quantized model only the float model runs (one detection pass, as
``evaluate``) and only its errors are analysed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from squeezelens.engine.compare import Comparison, TwinStats, compare_detections
from squeezelens.engine.data.images import read_image_bgr
from squeezelens.engine.data.kitti import Dataset
from squeezelens.engine.diagnostics import ConvDetError, HeadSplit
from squeezelens.engine.errors import InputError
from squeezelens.engine.eval.errors import ErrorAnalysis, analyse_errors
from squeezelens.engine.eval.tide import BACKGROUND_IOU
from squeezelens.engine.evaluate import OnImage, detect_dataset, prepared_records
from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.types import Detections, ImageRecord

TWIN_THRESHOLD = 0.4  # the desktop tool's default display threshold


@dataclass(frozen=True, eq=False)
class ErrorEvaluation:
    """Errors of the float model and (when compared) the quantized one, on one split.

    analyses: {"float": ..., "quantized": ...} (only "float" without a quantized model).
    head_split: the ConvDet error by head, summed over the split (None without quantized).
    twins: float/quantized twin statistics at ``twin_threshold`` (None without quantized).
    """

    analyses: Mapping[str, ErrorAnalysis]
    head_split: ConvDetError | None
    twins: TwinStats | None
    twin_threshold: float

    @property
    def result(self):
        """The EvalResult of the evaluated model: the quantized one when compared, else float."""
        return self.analyses.get("quantized", self.analyses["float"]).result

    def format(self) -> str:
        """The compact float-vs-quantized error table, then the head split and the twins."""
        from squeezelens.engine.eval.errors import format_error_summary

        lines = [format_error_summary(self.analyses)]
        if self.head_split is not None:
            lines.append(self.head_split.format())
        if self.twins is not None:
            lines.append(f"at score >= {self.twin_threshold:g}: " + self.twins.format())
        return "\n".join(lines)

    def to_json_dict(self) -> dict:
        """The "errors" section of results.json."""
        return {
            "models": {m: a.to_json_dict() for m, a in self.analyses.items()},
            "head_split": None if self.head_split is None else self.head_split.to_json_dict(),
            "twins": None if self.twins is None else self.twins.to_json_dict(),
            "twin_threshold": self.twin_threshold,
        }


@dataclass(frozen=True, eq=False)
class PairedDetections:
    """Float and quantized detections of every image, by stem, plus what the joint pass saw."""

    float: dict[str, Detections]
    quantized: dict[str, Detections]
    head_split: ConvDetError
    twins: TwinStats


def _prepared(detector, dataset: Dataset, cancel, loading) -> Iterator[tuple[ImageRecord, tuple]]:
    """(record, (network input, scale)) per image, read and preprocessed in loader threads."""

    def prepare(record: ImageRecord):
        return detector.preprocess(read_image_bgr(record.path))

    return prepared_records(dataset.records, prepare, cancel, loading)


def detect_float_and_quantized(
    detector,
    quantized,
    quant,
    dataset: Dataset,
    twin_threshold: float = TWIN_THRESHOLD,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    on_image: OnImage | None = None,
    loading: str | None = None,
) -> PairedDetections:
    """Run the float ``detector`` and ``quantized`` (with ``quant``; None for an INT8
    detector) on every image of ``dataset``; on_image(record, quantized detections)."""
    split = HeadSplit(detector.spec.num_classes, detector.spec.anchors_per_cell)
    floats: dict[str, Detections] = {}
    quants: dict[str, Detections] = {}
    comparisons: list[Comparison] = []
    for record, (x, scale) in _prepared(detector, dataset, cancel, loading):
        raw_f = detector.forward(x[None], None)[0]
        raw_q = quantized.forward(x[None], quant)[0]
        split.add(raw_f, raw_q)
        f = floats[record.stem] = detector.decode(raw_f, scale)
        q = quants[record.stem] = quantized.decode(raw_q, scale)
        comparisons.append(compare_detections(f.above(twin_threshold), q.above(twin_threshold)))
        if on_image is not None:
            on_image(record, q)
        if progress is not None:
            progress(len(floats), len(dataset))
    return PairedDetections(floats, quants, split.result(), TwinStats.of(comparisons))


def evaluate_errors(
    detector,
    dataset: Dataset,
    quantized=None,
    quant=None,
    protocol: str = "official",
    twin_threshold: float = TWIN_THRESHOLD,
    background_iou: float = BACKGROUND_IOU,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    on_image: OnImage | None = None,
    loading: str | None = None,
) -> ErrorEvaluation:
    """Evaluate the float ``detector`` (and ``quantized`` with ``quant``, when given) on a
    labelled split and explain each model's loss.  on_image gets the quantized detections
    (the float ones without a quantized model)."""
    if not dataset.has_labels:
        raise InputError(
            "cannot evaluate: the folder has no KITTI labels (training/label_2)", dataset.root
        )
    if not 0.0 <= twin_threshold <= 1.0:
        raise InputError(f"the twin threshold must be in [0, 1], got {twin_threshold}")
    classes = tuple(detector.class_names)

    def analyse(dets: dict[str, Detections]) -> ErrorAnalysis:
        return analyse_errors(dataset.records, dets, protocol, classes, background_iou)

    if quantized is None:
        dets = detect_dataset(detector, dataset, None, progress, cancel, on_image, loading)
        return ErrorEvaluation({"float": analyse(dets)}, None, None, twin_threshold)
    paired = detect_float_and_quantized(detector, quantized, quant, dataset, twin_threshold,
                                        progress, cancel, on_image, loading)  # fmt: skip
    analyses = {"float": analyse(paired.float), "quantized": analyse(paired.quantized)}
    return ErrorEvaluation(analyses, paired.head_split, paired.twins, twin_threshold)
