"""What quantization cost one image, by the devkit's own matching: true positives lost.

"Changes" (boxes lost, gained or flipped, :mod:`engine.compare`) count a spurious new
box the same as a missed car.  Here each image is scored as the KITTI devkit scores
it at one score threshold (:func:`engine.eval.devkit.pass_two`: ``computeStatistics``'
second pass, per class at the class's IoU, 0.7 for cars, 0.5 otherwise, with its
ignored and DontCare rules), for the reference (float, or config A) and the other
model, and compared per ground-truth object: a *true positive lost* is an object the
reference detects (a TP) and the other misses.  Difficulty ``hard`` (the default)
scores every object KITTI scores.  Summed over images, the counts are the devkit
curve's TP and FP at that threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from squeezelens.engine.eval.devkit import MIN_OVERLAP, build_scene, pass_two
from squeezelens.engine.eval.results import DIFFICULTIES
from squeezelens.engine.types import Detections, ImageRecord


@dataclass(frozen=True)
class ImageScore:
    """One model on one image at one threshold: matched ground truth and false positives.

    tp: indices (into ``record.objects``) of the objects detected as true positives;
    gt: the objects scored (not ignored); fp: detections counted as false positives.
    """

    tp: frozenset[int]
    gt: int
    fp: int


@dataclass(frozen=True)
class ImageHurt:
    """How the other model fares against the reference on one image."""

    gt: int  # objects scored
    tp_ref: int
    tp_other: int
    tp_lost: int  # objects the reference detects and the other misses
    tp_found: int  # objects the other detects and the reference misses
    fp_ref: int
    fp_other: int

    @property
    def recall_drop(self) -> float:
        """Reference recall minus the other's, a fraction (0 when no object is scored)."""
        return (self.tp_ref - self.tp_other) / self.gt if self.gt else 0.0

    @property
    def fp_gained(self) -> int:
        """False positives of the other model minus the reference's (negative: fewer)."""
        return self.fp_other - self.fp_ref


def score_image(
    record: ImageRecord,
    detections: Detections,
    threshold: float = 0.0,
    protocol: str = "official",
    difficulty: str = "hard",
    classes: Sequence[str] | None = None,
) -> ImageScore:
    """The devkit's TP / FP of one image for the detections scoring >= ``threshold`` (their
    scores as the protocol's writer writes them, as the devkit compares them).

    classes: the evaluated classes (default: the detections' KITTI classes).
    """
    names = [c.lower() for c in (classes or detections.class_names)]
    d = DIFFICULTIES.index(difficulty)
    scene = build_scene([record], {record.stem: detections}, min(MIN_OVERLAP.values()), protocol)
    tp: set[int] = set()
    gt = fp = 0
    for cls in (c for c in names if c in MIN_OVERLAP):
        counted = pass_two(scene, cls, d, protocol, threshold)
        tp.update(int(g) for g in counted.tp_objects)
        gt += counted.valid
        fp += counted.false_positives
    return ImageScore(frozenset(tp), gt, fp)


def image_hurt(
    record: ImageRecord,
    reference: Detections,
    other: Detections,
    threshold: float = 0.0,
    protocol: str = "official",
    difficulty: str = "hard",
) -> ImageHurt:
    """True positives lost and found, and false positives, of ``other`` against
    ``reference`` on one labelled image at one score threshold."""
    ref = score_image(record, reference, threshold, protocol, difficulty)
    oth = score_image(record, other, threshold, protocol, difficulty)
    return ImageHurt(ref.gt, len(ref.tp), len(oth.tp), len(ref.tp - oth.tp),
                     len(oth.tp - ref.tp), ref.fp, oth.fp)  # fmt: skip
