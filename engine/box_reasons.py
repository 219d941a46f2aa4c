"""Why each box quantization lost is lost, and what each box it added is (one image).

Built on :func:`engine.compare.compare_detections` (lost / new boxes at the
display threshold) and on the TIDE typing of :mod:`engine.eval.tide` (the
devkit's matching, at one difficulty, ``hard`` by default).  The reference
objects are the image's labels; an image without labels uses the float boxes
as its objects (so "missed" then means: no quantized box where the float model
had one).

A **lost** float box stands for the object it was matched to.  Its reason is
what the quantized model does with that object, first match wins:

* ``duplicate``: another quantized box now holds the object (out-scored by a
  duplicate of this one);
* ``mislocalized``: a quantized box of the right class is on it with
  ``t_b <= IoU <= t_f`` (a Loc error; ``iou`` is that box's IoU with the object);
* ``misclassified``: a quantized box of another class is on it (a Cls error,
  or Both when its IoU is below ``t_f``; ``other_class`` says which class);
* ``missed``: nothing of the quantized model's is near it.

A lost box that matched no object is ``false_positive`` (``error`` gives its
float TIDE type: losing it costs nothing) or ``ignored`` (DontCare, too small).
A **new** quantized box is ``background``, ``duplicate``, ``mislocalized``,
``misclassified``, ``both`` (its TIDE type), ``correct`` (it finds an object
the float model's boxes did not hold in that place) or ``ignored``.
Box indices are into the Detections given (score order); ``object_index`` into
the image's objects (label-file order) or, without labels, the float boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.compare import Comparison, compare_detections
from squeezelens.engine.eval.devkit import MIN_OVERLAP, build_scene
from squeezelens.engine.eval.results import DIFFICULTIES
from squeezelens.engine.eval.tide import FP_TYPES, ErrorTyping, type_errors
from squeezelens.engine.types import Detections, GroundTruthObject, ImageRecord

LOST_KINDS = ("duplicate", "mislocalized", "misclassified", "missed", "false_positive", "ignored")
NEW_KINDS = ("background", "duplicate", "mislocalized", "misclassified", "both", "correct",
             "ignored")  # fmt: skip
_NEW_OF_ERROR = {"bkg": "background", "dupe": "duplicate", "loc": "mislocalized",
                 "cls": "misclassified", "both": "both"}  # fmt: skip


@dataclass(frozen=True)
class BoxReason:
    """Why one box was lost (float index) or what one new box is (quantized index).

    other_box: for a lost box, the quantized box behind the reason (None for a new box).
    error: the TIDE type of a lost false positive (float) or of a new false positive.
    """

    box: int
    kind: str
    iou: float | None = None
    object_index: int | None = None
    other_box: int | None = None
    other_class: str | None = None
    error: str | None = None

    def text(self) -> str:
        """One line for a list: 'mislocalized, IoU 0.52', 'misclassified as cyclist', ..."""
        iou = "" if self.iou is None else f", IoU {self.iou:.2f}"
        if self.kind == "misclassified":
            return f"misclassified as {self.other_class}{iou}"
        if self.kind == "duplicate" and self.error is None:
            return "out-scored by a duplicate"
        if self.kind == "false_positive":
            return f"was a false positive ({self.error})"
        return f"{self.kind}{iou}"


@dataclass(frozen=True)
class ImageReasons:
    """The reasons of every lost and every new box of one image.

    reference: "labels" (the image's objects) or "float boxes" (no labels).
    """

    lost: tuple[BoxReason, ...]
    new: tuple[BoxReason, ...]
    reference: str
    difficulty: str

    def of_lost(self, i: int) -> BoxReason | None:
        return next((r for r in self.lost if r.box == i), None)

    def of_new(self, j: int) -> BoxReason | None:
        return next((r for r in self.new if r.box == j), None)


def _typing(objects: Sequence[GroundTruthObject], dets: Detections, d: int, protocol: str):
    record = ImageRecord("image", "", tuple(objects), True)
    classes = tuple(c.lower() for c in dets.class_names if c.lower() in MIN_OVERLAP)
    scene = build_scene([record], {"image": dets}, 0.0, protocol)
    return type_errors(scene, classes, d, protocol, with_curves=False)


def _pseudo_objects(dets: Detections) -> tuple[GroundTruthObject, ...]:
    return tuple(
        GroundTruthObject(dets.class_name(i), 0.0, 0, -10.0, tuple(float(v) for v in box))
        for i, box in enumerate(dets.boxes_xyxy)
    )


def _on_object(q: ErrorTyping, quant: Detections, g: int, i: int) -> BoxReason:
    """What the quantized model does with object ``g`` (lost float box ``i``)."""
    holders = np.flatnonzero((q.det_object == g) & (q.det_status >= 0))
    if len(holders):
        return BoxReason(i, "duplicate", None, g, int(holders[0]))
    for code, kind in ((FP_TYPES.index("loc"), "mislocalized"), (FP_TYPES.index("cls"), None),
                       (FP_TYPES.index("both"), None)):  # fmt: skip
        hits = np.flatnonzero((q.det_object == g) & (q.det_error == code))
        if len(hits):
            j = int(hits[np.argmax(q.det_iou[hits])])
            other = None if kind else quant.class_name(j)
            return BoxReason(i, kind or "misclassified", float(q.det_iou[j]), g, j, other)
    return BoxReason(i, "missed", None, g)


def _lost_reason(f: ErrorTyping | None, q: ErrorTyping, quant: Detections, i: int) -> BoxReason:
    if f is None:  # the float boxes are the objects
        return _on_object(q, quant, i, i)
    if f.det_status[i] == -1:
        return BoxReason(i, "false_positive", error=FP_TYPES[f.det_error[i]])
    g = int(f.det_object[i])
    return _on_object(q, quant, g, i) if g >= 0 else BoxReason(i, "ignored")


def _new_reason(q: ErrorTyping, j: int) -> BoxReason:
    g = int(q.det_object[j])
    obj = None if g < 0 else g
    if q.det_status[j] == -1:
        error = FP_TYPES[q.det_error[j]]
        iou = float(q.det_iou[j]) if error != "bkg" else None
        return BoxReason(j, _NEW_OF_ERROR[error], iou, obj, error=error)
    return BoxReason(j, "correct" if q.det_status[j] == 1 else "ignored", None, obj)


def explain_changes(
    float_dets: Detections,
    quant_dets: Detections,
    objects: Sequence[GroundTruthObject] | None = None,
    comparison: Comparison | None = None,
    protocol: str = "official",
    difficulty: str = "hard",
) -> ImageReasons:
    """Reasons for every lost float box and every new quantized box of one image.

    float_dets / quant_dets: the image's detections at the display threshold;
    objects: its labels (None or empty: the float boxes serve as objects);
    comparison: compare_detections(float_dets, quant_dets) if already computed.
    """
    comparison = comparison or compare_detections(float_dets, quant_dets)
    d = DIFFICULTIES.index(difficulty)
    labelled = bool(objects)
    refs = tuple(objects) if labelled else _pseudo_objects(float_dets)
    q = _typing(refs, quant_dets, d, protocol)
    f = _typing(refs, float_dets, d, protocol) if labelled else None
    lost = tuple(_lost_reason(f, q, quant_dets, i) for i in comparison.lost)
    new = tuple(_new_reason(q, j) for j in comparison.gained)
    return ImageReasons(lost, new, "labels" if labelled else "float boxes", difficulty)
