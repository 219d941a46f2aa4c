"""Float vs quantized detections on one image: what quantization changed.

Boxes of the reference (e.g. float) and the other model (e.g. quantized) are
matched greedily by IoU, best pairs first, regardless of class; a matched pair
of different classes is a *class flip*.  Unmatched reference boxes are *lost*,
unmatched other boxes are *gained*.
"""

from __future__ import annotations

from collections.abc import Iterable
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


SCORE_SHIFT_EDGES: tuple[float, ...] = tuple(np.round(np.linspace(-1.0, 1.0, 21), 10))
SCORE_SHIFT_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class TwinStats:
    """Matched float/quantized box pairs (*twins*) of one image or a whole split.

    mean_iou: mean IoU between twins (nan without twins); score shifts are
    quantized - float scores: their mean, quantiles at SCORE_SHIFT_QUANTILES and
    counts in the bins SCORE_SHIFT_EDGES (0.1 wide over [-1, 1]).
    """

    pairs: int
    mean_iou: float
    class_flips: int
    lost: int
    gained: int
    score_shift_mean: float
    score_shift_quantiles: tuple[float, ...]
    score_shift_histogram: tuple[int, ...]

    @staticmethod
    def of(comparisons: Iterable[Comparison]) -> TwinStats:
        comparisons = list(comparisons)
        matches = [m for c in comparisons for m in c.matches]
        ious = np.array([m.iou for m in matches], dtype=np.float64)
        shifts = np.array([m.score_shift for m in matches], dtype=np.float64)
        nan = float("nan")
        return TwinStats(
            len(matches),
            float(ious.mean()) if len(ious) else nan,
            sum(len(c.flips) for c in comparisons),
            sum(len(c.lost) for c in comparisons),
            sum(len(c.gained) for c in comparisons),
            float(shifts.mean()) if len(shifts) else nan,
            tuple(float(v) for v in np.quantile(shifts, SCORE_SHIFT_QUANTILES))
            if len(shifts)
            else (nan,) * len(SCORE_SHIFT_QUANTILES),
            tuple(int(v) for v in np.histogram(np.clip(shifts, -1, 1), SCORE_SHIFT_EDGES)[0]),
        )

    def to_json_dict(self) -> dict:
        """JSON-ready (nan becomes null)."""

        def plain(v: float) -> float | None:
            return None if np.isnan(v) else v

        return {
            "pairs": self.pairs,
            "mean_iou": plain(self.mean_iou),
            "class_flips": self.class_flips,
            "lost": self.lost,
            "gained": self.gained,
            "score_shift": {
                "mean": plain(self.score_shift_mean),
                "quantiles": {
                    str(q): plain(v)
                    for q, v in zip(SCORE_SHIFT_QUANTILES, self.score_shift_quantiles, strict=True)
                },
                "histogram": {
                    "edges": list(SCORE_SHIFT_EDGES),
                    "counts": list(self.score_shift_histogram),
                },
            },
        }

    def format(self) -> str:
        """Two lines: twins, mean IoU, flips, lost/new, and the score shift's quantiles."""
        q = ", ".join(f"{int(p * 100)}%: {v:+.3f}" for p, v in
                      zip(SCORE_SHIFT_QUANTILES, self.score_shift_quantiles, strict=True))  # fmt: skip
        return (
            f"twins (matched float/quantized boxes): {self.pairs}, mean IoU {self.mean_iou:.3f}, "
            f"{self.class_flips} class flips; {self.lost} lost, {self.gained} new\n"
            f"score shift (quantized - float): mean {self.score_shift_mean:+.3f}; quantiles {q}"
        )
