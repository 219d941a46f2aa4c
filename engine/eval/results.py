"""Results of a KITTI object evaluation: per class x difficulty AP, mAP, PR curves.

All APs are fractions in [0, 1].  ``ap_r11`` is the devkit's original
11-point AP (points 0, 4, ..., 40 of the 41-point curve, summed and divided
by 11); ``ap_r40`` is the 40-point AP used by the KITTI server since 2019
(points 1..40, divided by 40).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from squeezelens.engine.atomic import atomic_path
from squeezelens.engine.types import Detections, ImageRecord

DIFFICULTIES: tuple[str, ...] = ("easy", "moderate", "hard")
N_SAMPLE_PTS = 41


@dataclass(frozen=True, eq=False)
class ClassDifficultyAP:
    """AP and precision/recall curve of one class at one difficulty.

    n_gt: number of valid ground-truth objects (the recall denominator).
    n_points: how many score thresholds the devkit kept (<= 41); curve points
        beyond it have precision 0 and NaN threshold/recall, as in the devkit.
    capped: True when n_gt <= 40, so that the devkit's k-th curve point is the
        k-th object rather than recall k/40 and the AP cannot reach 1.
    thresholds, recall, precision: (41,) float64; precision is already made
        monotone from the right (max over points i..40).
    tp, fp, fn: (41,) int64 counts at each kept threshold (0 beyond n_points).
    """

    cls: str
    difficulty: str
    ap_r11: float
    ap_r40: float
    n_gt: int
    capped: bool
    n_points: int
    thresholds: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


def max_attainable_ap(n_gt: int) -> tuple[float, float]:
    """(AP|R11, AP|R40) of perfect detections given ``n_gt`` valid objects.

    With n_gt <= 40 the devkit keeps one threshold per object, so only curve
    points 0..n_gt-1 carry precision 1.
    """
    if n_gt <= 0:
        return 0.0, 0.0
    points = min(n_gt, N_SAMPLE_PTS)
    r11 = sum(1.0 for k in range(0, N_SAMPLE_PTS, 4) if k < points) / 11.0
    r40 = sum(1.0 for k in range(1, N_SAMPLE_PTS) if k < points) / 40.0
    return r11, r40


def capped_warnings(curves: list[ClassDifficultyAP]) -> list[str]:
    """One line per class x difficulty whose AP the devkit's 41-point rule caps below 1."""
    out = []
    for c in curves:
        if c.n_gt == 0:
            out.append(f"{c.cls} {c.difficulty}: no valid objects, AP is 0 by the devkit's rule")
        elif c.capped:
            r11, r40 = max_attainable_ap(c.n_gt)
            out.append(
                f"{c.cls} {c.difficulty}: only {c.n_gt} valid objects (< {N_SAMPLE_PTS}), so the "
                f"devkit's curve is compressed and AP cannot exceed {r11:.4f} (R11) / {r40:.4f} (R40)"
            )
    return out


def input_warnings(
    records: Sequence[ImageRecord],
    detections: Mapping[str, Detections],
    curves: list[ClassDifficultyAP],
) -> list[str]:
    """Warnings about the inputs (missing or extra detection entries) and capped curves."""
    out = []
    stems = {r.stem for r in records}
    missing = sum(1 for s in stems if s not in detections)
    if missing:
        out.append(
            f"{missing} of {len(stems)} images have no detections entry (scored as detecting nothing)"
        )
    extra = sum(1 for s in detections if s not in stems)
    if extra:
        out.append(
            f"{extra} detection entries name images outside the evaluated set and were ignored"
        )
    out.extend(capped_warnings(curves))
    return out


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


@dataclass(frozen=True, eq=False)
class EvalResult:
    """The full evaluation: ``ap[class][difficulty]`` plus mAP, counts and warnings.

    map: {"r11": {"all", "easy", "moderate", "hard"}, "r40": {...}} where
    "all" is the mean of every class x difficulty AP and "easy" etc. are the
    means over classes.
    counts: {"images", "detections", "gt_objects", "dontcare_regions"}.
    """

    protocol: str
    classes: tuple[str, ...]
    ap: Mapping[str, Mapping[str, ClassDifficultyAP]]
    counts: Mapping[str, int]
    warnings: tuple[str, ...] = ()
    map: Mapping[str, Mapping[str, float]] = field(init=False)

    def __post_init__(self) -> None:
        ap = {c: MappingProxyType(dict(self.ap[c])) for c in self.classes}
        object.__setattr__(self, "ap", MappingProxyType(ap))
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        maps = {}
        for key in ("r11", "r40"):
            per = {d: [getattr(ap[c][d], f"ap_{key}") for c in self.classes] for d in DIFFICULTIES}
            maps[key] = MappingProxyType(
                {"all": _mean([v for d in DIFFICULTIES for v in per[d]])}
                | {d: _mean(per[d]) for d in DIFFICULTIES}
            )
        object.__setattr__(self, "map", MappingProxyType(maps))

    def to_json_dict(self) -> dict:
        """The "ap", "map", "counts" and "warnings" entries of results.json."""
        return {
            "ap": {
                c: {
                    d: {
                        "r11": float(r.ap_r11),
                        "r40": float(r.ap_r40),
                        "n_gt": int(r.n_gt),
                        "capped": bool(r.capped),
                    }
                    for d, r in self.ap[c].items()
                }
                for c in self.classes
            },
            "map": {k: {d: float(v) for d, v in m.items()} for k, m in self.map.items()},
            "counts": {k: int(v) for k, v in self.counts.items()},
            "warnings": list(self.warnings),
        }

    def write_pr_csv(self, path: str | Path) -> Path:
        """Write every PR curve as CSV: class,difficulty,point,threshold,recall,precision.

        41 rows per class x difficulty; points beyond the kept thresholds have
        empty threshold and recall cells and precision 0 (as in the devkit).
        """
        path = Path(path)
        with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["class", "difficulty", "point", "threshold", "recall", "precision"])
            for c in self.classes:
                for d in DIFFICULTIES:
                    r = self.ap[c][d]
                    for k in range(N_SAMPLE_PTS):
                        cells = (r.thresholds[k], r.recall[k], r.precision[k])
                        writer.writerow(
                            [c, d, k, *("" if math.isnan(v) else repr(float(v)) for v in cells)]
                        )
        return path

    def format_table(self) -> str:
        """A fixed-width AP table (fractions in [0, 1]) with R11 and R40, the mAP rows and warnings."""
        n = self.counts
        head = "".join(f"{d:>8} " for d in ("easy", "mod", "hard"))
        lines = [
            f"KITTI 2D detection AP ({self.protocol} protocol; {n.get('images', 0)} images, "
            f"{n.get('detections', 0)} detections, {n.get('gt_objects', 0)} objects)",
            f"{'':<12}|{'AP|R11':^27}|{'AP|R40':^27}| valid objects",
            f"{'class':<12}|{head}|{head}| easy/mod/hard",
            "-" * 84,
        ]
        for c in self.classes:
            rs = [self.ap[c][d] for d in DIFFICULTIES]
            r11 = "".join(_cell(r.ap_r11, r.capped) for r in rs)
            r40 = "".join(_cell(r.ap_r40, r.capped) for r in rs)
            lines.append(f"{c:<12}|{r11}|{r40}| " + "/".join(str(r.n_gt) for r in rs))
        lines.append("-" * 84)
        m11 = "".join(_cell(self.map["r11"][d], False) for d in DIFFICULTIES)
        m40 = "".join(_cell(self.map["r40"][d], False) for d in DIFFICULTIES)
        lines.append(f"{'mAP':<12}|{m11}|{m40}|")
        a11, a40 = _cell(self.map["r11"]["all"], False), _cell(self.map["r40"]["all"], False)
        lines.append(f"{'mAP (all 9)':<12}|{a11:<27}|{a40:<27}|")
        if any(self.ap[c][d].capped for c in self.classes for d in DIFFICULTIES):
            lines.append(
                "* capped: too few valid objects for the 41-point curve (AP cannot reach 1)"
            )
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _cell(value: float, capped: bool) -> str:
    """One 9-character AP cell as a fraction, '*' marking a capped AP."""
    return f"{value:>8.4f}" + ("*" if capped else " ")
