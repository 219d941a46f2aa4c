"""Evaluation noise: how much an mAP difference moves when the images are resampled.

On a few images one more or one fewer car found moves mAP by hundredths, so a small
drop may say nothing about the model.  :func:`paired_bootstrap` draws the evaluated
images with replacement (the same draw for both models: the difference is paired) and
returns, per compared model, the standard deviation of ``mAP(reference) - mAP(model)``
over the draws: a drop well inside that spread is not a real effect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np

from squeezelens.engine.jobs import CancelToken, check
from squeezelens.engine.types import Detections, ImageRecord

NOISE_SAMPLES = 10
DetectionsByStem = Mapping[str, Detections]


def resample(
    records: Sequence[ImageRecord], indices: Sequence[int]
) -> tuple[list[ImageRecord], list[str]]:
    """The records at ``indices`` (repeats allowed) renamed ``stem#k`` so every evaluated
    stem is unique, and the original stem of each."""
    out = [dataclasses.replace(records[i], stem=f"{records[i].stem}#{k}")
           for k, i in enumerate(indices)]  # fmt: skip
    return out, [records[i].stem for i in indices]


def _map_r11(records, stems, detections: DetectionsByStem, protocol: str, classes) -> float:
    from squeezelens.engine.eval import evaluate_detections

    dets = {r.stem: detections[s] for r, s in zip(records, stems) if s in detections}
    result = evaluate_detections(records, dets, protocol=protocol, classes=classes)
    return float(result.to_json_dict()["map"]["r11"]["all"])


def paired_bootstrap(
    records: Sequence[ImageRecord],
    reference: DetectionsByStem,
    others: Mapping[Hashable, DetectionsByStem],
    protocol: str = "official",
    classes: Sequence[str] = ("car", "pedestrian", "cyclist"),
    samples: int = NOISE_SAMPLES,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> dict[Hashable, float]:
    """Per key of ``others``, the standard deviation (ddof 1) of
    ``mAP R11(reference) - mAP R11(others[key])`` over ``samples`` draws of the images
    with replacement; 0.0 for a model whose detections equal the reference's on every
    image (nothing to resample)."""
    if samples < 2 or not records:
        return dict.fromkeys(others, 0.0)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(records), len(records)) for _ in range(samples)]
    changed = [k for k, dets in others.items() if not _same(reference, dets)]
    diffs = {k: [] for k in changed}
    total = samples * (1 + len(changed))
    for s, draw in enumerate(draws):
        recs, stems = resample(records, draw)
        base = _map_r11(recs, stems, reference, protocol, classes)
        for j, key in enumerate(changed):
            check(cancel)
            diffs[key].append(base - _map_r11(recs, stems, others[key], protocol, classes))
            if progress:
                progress(s * (1 + len(changed)) + j + 2, total)
    noise = dict.fromkeys(others, 0.0)
    noise.update({k: float(np.std(v, ddof=1)) for k, v in diffs.items()})
    return noise


def _same(a: DetectionsByStem, b: DetectionsByStem) -> bool:
    """Whether two detection sets are identical on every image."""
    if a.keys() != b.keys():
        return False
    for stem, x in a.items():
        y = b[stem]
        if len(x) != len(y) or not (
            np.array_equal(x.boxes_xyxy, y.boxes_xyxy)
            and np.array_equal(x.scores, y.scores)
            and np.array_equal(x.labels, y.labels)
        ):
            return False
    return True
