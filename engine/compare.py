"""Float vs quantized detections on one image: what quantization changed.

Boxes of the reference (e.g. float) and the other model (e.g. quantized) are
matched greedily by IoU, best pairs first, regardless of class; a matched pair
of different classes is a *class flip*.  Unmatched reference boxes are *lost*,
unmatched other boxes are *gained*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezelens.engine.boxes import iou_matrix
from squeezelens.engine.types import Detections


@dataclass(frozen=True)
class Match:
    ref: int  # index into the reference Detections
    other: int  # index into the other Detections
    iou: float
    score_shift: float  # other score - reference score
    class_flip: bool


@dataclass(frozen=True)
class Comparison:
    """The difference between two detection sets of one image."""

    matches: tuple[Match, ...]
    lost: tuple[int, ...]  # reference indices with no counterpart
    gained: tuple[int, ...]  # other indices with no counterpart
    iou_threshold: float

    @property
    def flips(self) -> tuple[Match, ...]:
        return tuple(m for m in self.matches if m.class_flip)

    @property
    def change_count(self) -> int:
        """lost + gained + class-flipped boxes: how much quantization changed this image."""
        return len(self.lost) + len(self.gained) + len(self.flips)

    def counterpart_of_ref(self, i: int) -> Match | None:
        return next((m for m in self.matches if m.ref == i), None)

    def counterpart_of_other(self, j: int) -> Match | None:
        return next((m for m in self.matches if m.other == j), None)

    def to_dict(self) -> dict:
        return {
            "matches": [m.__dict__ for m in self.matches],
            "lost": list(self.lost),
            "gained": list(self.gained),
            "flips": len(self.flips),
            "iou_threshold": self.iou_threshold,
        }


def compare_detections(
    reference: Detections, other: Detections, iou_threshold: float = 0.5
) -> Comparison:
    """Match two detection sets of the same image (greedy by IoU, > iou_threshold)."""
    ious = iou_matrix(reference.boxes_xyxy, other.boxes_xyxy)
    pairs = np.argwhere(ious > iou_threshold)
    order = np.argsort(-ious[pairs[:, 0], pairs[:, 1]], kind="stable") if len(pairs) else []
    used_r, used_o, matches = set(), set(), []
    for k in order:
        i, j = (int(v) for v in pairs[k])
        if i in used_r or j in used_o:
            continue
        used_r.add(i)
        used_o.add(j)
        matches.append(
            Match(i, j, float(ious[i, j]), float(other.scores[j] - reference.scores[i]),
                  bool(reference.labels[i] != other.labels[j]))
        )  # fmt: skip
    lost = tuple(i for i in range(len(reference)) if i not in used_r)
    gained = tuple(j for j in range(len(other)) if j not in used_o)
    return Comparison(tuple(sorted(matches, key=lambda m: m.ref)), lost, gained, iou_threshold)
