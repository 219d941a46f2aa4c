"""Why AP is lost: TIDE's error types per class x difficulty, counted and priced in ΔAP.

:func:`analyse_errors` scores detections with the devkit (the same
:class:`~engine.eval.results.EvalResult` as :func:`~engine.eval.evaluate_detections`),
types every false positive and missed object (:mod:`engine.eval.tide`) and, per
error type, lets TIDE's oracle fix that type and scores again
(:mod:`engine.eval.oracle`): ΔAP|R11 and ΔAP|R40 = fixed AP - AP.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from squeezelens.engine.atomic import atomic_path
from squeezelens.engine.errors import InputError
from squeezelens.engine.eval.devkit import MIN_OVERLAP, build_scene, check_inputs, scene_result
from squeezelens.engine.eval.matching import Scene
from squeezelens.engine.eval.oracle import fixed_curves
from squeezelens.engine.eval.results import DIFFICULTIES, EvalResult
from squeezelens.engine.eval.tide import (
    BACKGROUND_IOU,
    ERROR_LABELS,
    ERROR_TYPES,
    FP_TYPES,
    ErrorTyping,
    type_errors,
)
from squeezelens.engine.types import Detections, ImageRecord

CSV_HEADER = ("model", "class", "difficulty", "type", "count", "dap_r11", "dap_r40")


@dataclass(frozen=True, eq=False)
class ClassErrors:
    """Error counts and ΔAP per type (keys: ERROR_TYPES) of one class x difficulty.

    true_positives / false_positives / false_negatives: the devkit's pass-1 counts
    (every detection, no score threshold); counts of the five false-positive
    types sum to false_positives, ``missed`` is at most false_negatives.
    """

    cls: str
    difficulty: str
    ap_r11: float
    ap_r40: float
    counts: Mapping[str, int]
    dap_r11: Mapping[str, float]
    dap_r40: Mapping[str, float]
    true_positives: int
    false_positives: int
    false_negatives: int

    def to_json_dict(self) -> dict:
        return {
            "ap_r11": self.ap_r11,
            "ap_r40": self.ap_r40,
            "counts": dict(self.counts),
            "dap_r11": dict(self.dap_r11),
            "dap_r40": dict(self.dap_r40),
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
        }


@dataclass(frozen=True, eq=False)
class ErrorAnalysis:
    """The devkit result of one model plus its errors, ``errors[class][difficulty]``.

    scene / typings: the devkit scene (pairs of every overlap) and the typing
    per difficulty, for callers that want per-detection answers.
    """

    result: EvalResult
    background_iou: float
    errors: Mapping[str, Mapping[str, ClassErrors]]
    scene: Scene = field(repr=False)
    typings: tuple[ErrorTyping, ...] = field(repr=False)

    def mean_dap(self, key: str = "r40") -> dict[str, float]:
        """ΔmAP per type: the mean ΔAP over every class x difficulty (as "mAP (all 9)")."""
        cells = [e for per in self.errors.values() for e in per.values()]
        return {
            t: sum(getattr(e, f"dap_{key}")[t] for e in cells) / len(cells) for t in ERROR_TYPES
        }

    def total_counts(self, difficulty: str = "moderate") -> dict[str, int]:
        """Counts per type summed over the classes at one difficulty."""
        return {
            t: sum(self.errors[c][difficulty].counts[t] for c in self.errors) for t in ERROR_TYPES
        }

    def to_json_dict(self) -> dict:
        """The "errors" entry of one model in results.json."""
        return {
            "background_iou": self.background_iou,
            "foreground_iou": {c: MIN_OVERLAP[c] for c in self.errors},
            "classes": {
                c: {d: e.to_json_dict() for d, e in per.items()} for c, per in self.errors.items()
            },
            "mean_dap_r11": self.mean_dap("r11"),
            "mean_dap_r40": self.mean_dap("r40"),
        }

    def csv_rows(self, model: str) -> list[list]:
        return [
            [model, c, d, t, e.counts[t], repr(e.dap_r11[t]), repr(e.dap_r40[t])]
            for c, per in self.errors.items()
            for d, e in per.items()
            for t in ERROR_TYPES
        ]


def _class_errors(typing: ErrorTyping, scene: Scene, cls: str, fixed: dict) -> ClassErrors:
    own_det, own_gt = scene.det_type == cls, scene.gt_type == cls
    counts = {t: int(((typing.det_error == k) & own_det).sum()) for k, t in enumerate(FP_TYPES)}
    counts["missed"] = int((typing.gt_missed & own_gt).sum())
    curve = typing.curves[cls]
    gains = {key: {t: max(0.0, getattr(fixed[t][cls], f"ap_{key}") - getattr(curve, f"ap_{key}"))
                   for t in ERROR_TYPES} for key in ("r11", "r40")}  # fmt: skip
    return ClassErrors(
        cls, DIFFICULTIES[typing.difficulty], curve.ap_r11, curve.ap_r40,
        MappingProxyType(counts), MappingProxyType(gains["r11"]), MappingProxyType(gains["r40"]),
        int(((typing.det_status == 1) & own_det).sum()),
        int(((typing.det_status == -1) & own_det).sum()),
        int((typing.gt_valid & ~typing.gt_found & own_gt).sum()),
    )  # fmt: skip


def check_background_iou(t_b: float, classes: Sequence[str]) -> float:
    top = min(MIN_OVERLAP[c] for c in classes)
    if not 0.0 < t_b < top:
        raise InputError(f"the background IoU must be in (0, {top}), got {t_b}")
    return float(t_b)


def analyse_errors(
    records: Sequence[ImageRecord],
    detections: Mapping[str, Detections],
    protocol: str = "official",
    classes: Sequence[str] = ("car", "pedestrian", "cyclist"),
    background_iou: float = BACKGROUND_IOU,
) -> ErrorAnalysis:
    """Score detections as :func:`~engine.eval.evaluate_detections` does and explain the loss.

    Same inputs and checks as evaluate_detections; background_iou is TIDE's t_b.
    """
    classes = check_inputs(records, protocol, classes)
    t_b = check_background_iou(background_iou, classes)
    scene = build_scene(records, detections, 0.0, protocol)
    typings = tuple(type_errors(scene, classes, d, protocol, t_b) for d in range(len(DIFFICULTIES)))
    curves = [t.curves[c] for c in classes for t in typings]
    result = scene_result(records, detections, scene, protocol, classes, curves)
    errors: dict[str, dict[str, ClassErrors]] = {c: {} for c in classes}
    for typing in typings:
        fixed = {t: fixed_curves(scene, typing, [t], protocol) for t in ERROR_TYPES}
        for c in classes:
            errors[c][DIFFICULTIES[typing.difficulty]] = _class_errors(typing, scene, c, fixed)
    frozen = MappingProxyType({c: MappingProxyType(v) for c, v in errors.items()})
    return ErrorAnalysis(result, t_b, frozen, scene, typings)


def write_errors_csv(path: str | Path, analyses: Mapping[str, ErrorAnalysis]) -> Path:
    """errors.csv: model,class,difficulty,type,count,dap_r11,dap_r40 (one row per type)."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for model, analysis in analyses.items():
            writer.writerows(analysis.csv_rows(model))
    return path


def format_error_summary(
    analyses: Mapping[str, ErrorAnalysis], difficulty: str = "moderate"
) -> str:
    """A compact table: per error type, the counts (all classes, at ``difficulty``) and
    ΔmAP|R40 (mean ΔAP over the 9 class x difficulty) of each model, side by side."""
    names = list(analyses)
    counts = {m: a.total_counts(difficulty) for m, a in analyses.items()}
    gains = {m: a.mean_dap("r40") for m, a in analyses.items()}
    width = max(9, *(len(m) for m in names)) + 1
    head = "".join(f"{m:>{width}}" for m in names)
    lines = [
        f"Detection errors (TIDE types, t_b {next(iter(analyses.values())).background_iou:g}; "
        f"counts: all classes at {difficulty}; ΔmAP|R40: AP won by fixing the type, "
        "mean over the 9 class x difficulty)",
        f"{'type':<8}|{'count':^{width * len(names)}}|{'ΔmAP|R40':^{width * len(names)}}",
        f"{'':<8}|{head}|{head}",
        "-" * (10 + 2 * width * len(names)),
    ]
    for t in ERROR_TYPES:
        c = "".join(f"{counts[m][t]:>{width}d}" for m in names)
        g = "".join(f"{gains[m][t]:>{width}.4f}" for m in names)
        lines.append(f"{ERROR_LABELS[t]:<8}|{c}|{g}")
    return "\n".join(lines)
