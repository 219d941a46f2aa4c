"""ConvDet output noise: how far a config's raw ConvDet output lies from the float model's.

The noise of a config on a set of images is the mean, over every element of every
image's raw ConvDet output, of the squared difference from the float model's output
(what the mixed-precision search ranks layers and widths by, :mod:`engine.search`).

It is summed so that it depends on the images only, never on how they are cut into
shards or batches: per image, the squared differences in float64 (one numpy sum over
the image's elements), then over the images with :func:`math.fsum` (exactly rounded,
so in any order), divided by the element count.  A search on Ray workers, each
summing the images of its shards, therefore gives the single-process value to the
last bit.  (``np.mean`` over the concatenated float32 differences, what the search
computed before, sums pairwise in blocks whose boundaries move with every split, so
no split can reproduce it; this sum is also more precise.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.jobs import CancelToken, check
from squeezelens.engine.sweep import BATCH


@dataclass(frozen=True)
class OutputError:
    """Squared differences from the float output on some images: per image (by stem, in
    dataset order) their float64 sum, and the elements of one image's output."""

    sums: dict[str, float]
    elements: int

    def noise(self) -> float:
        """The mean squared difference over every element of every image (0 without images)."""
        count = self.elements * len(self.sums)
        return math.fsum(self.sums.values()) / count if count else 0.0

    @staticmethod
    def merge(parts: Sequence[OutputError]) -> OutputError:
        """The images of ``parts`` (shards, in order) as one."""
        sizes = {p.elements for p in parts if p.sums}
        if len(sizes) > 1:
            raise ValueError(f"outputs of different sizes cannot be merged: {sorted(sizes)}")
        sums = {stem: s for part in parts for stem, s in part.sums.items()}
        return OutputError(sums, sizes.pop() if sizes else 0)


def float_outputs(
    detector, prepared, batch: int = BATCH, cancel: CancelToken | None = None
) -> np.ndarray:
    """The float model's raw outputs (N, gridH, gridW, K*(C+5)) of prepared inputs
    (:class:`engine.sweep.PreparedInputs`), in the batches every config runs in."""
    out = []
    for start in range(0, len(prepared.inputs), batch):
        check(cancel)
        out.append(detector.forward(prepared.inputs[start : start + batch], None))
    return np.concatenate(out) if out else np.zeros((0, 1, 1, 1), np.float32)


def detect_with_error(
    detector,
    prepared,
    quant,
    reference: np.ndarray,
    batch: int = BATCH,
    cancel: CancelToken | None = None,
) -> tuple[dict, OutputError]:
    """Detections by stem under ``quant`` (:meth:`PreparedInputs.detect_all`) and the
    squared differences of its raw outputs from ``reference`` (:func:`float_outputs`)."""
    sums: dict[str, float] = {}

    def measure(start: int, raw: np.ndarray) -> None:
        for k, row in enumerate(raw):
            diff = row.astype(np.float64) - reference[start + k]
            sums[prepared.records[start + k].stem] = float(np.sum(np.square(diff)))

    detections = prepared.detect_all(detector, quant, batch, cancel, on_raw=measure)
    return detections, OutputError(sums, int(np.prod(reference.shape[1:])) if sums else 0)
