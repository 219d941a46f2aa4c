"""Small immutable value objects shared across the engine.

Boxes are always named by format.  ``xyxy`` means ``[x1, y1, x2, y2]`` in
pixels of the *original* image, with the SqueezeDet convention that a box
decoded by the network is reported as ``[xmin, ymin, xmax + 1, ymax + 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _readonly(a: np.ndarray, dtype, shape_tail: tuple[int, ...]) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True).reshape((-1, *shape_tail))
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections of one image.

    boxes_xyxy: (N, 4) float32, xyxy in original image pixels.
    scores:     (N,) float32 in [0, 1] (class probability x confidence).
    labels:     (N,) int32 class indices into ``class_names``.
    class_names: the detector's class names, e.g. ("car", "pedestrian", "cyclist").
    Sorted by descending score.
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] = ("car", "pedestrian", "cyclist")

    def __post_init__(self) -> None:
        boxes = _readonly(self.boxes_xyxy, np.float32, (4,))
        scores = _readonly(self.scores, np.float32, ()).reshape(-1)
        labels = _readonly(self.labels, np.int32, ()).reshape(-1)
        if not (len(boxes) == len(scores) == len(labels)):
            raise ValueError("boxes, scores and labels must have the same length")
        order = np.argsort(-scores, kind="stable")
        for name, arr in (("boxes_xyxy", boxes), ("scores", scores), ("labels", labels)):
            arr = arr[order]
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "class_names", tuple(self.class_names))

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty(class_names: tuple[str, ...] = ("car", "pedestrian", "cyclist")) -> Detections:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0), class_names)

    def above(self, threshold: float) -> Detections:
        """The detections whose score is >= threshold (a display filter)."""
        keep = self.scores >= threshold
        return Detections(
            self.boxes_xyxy[keep], self.scores[keep], self.labels[keep], self.class_names
        )

    def class_name(self, i: int) -> str:
        return self.class_names[int(self.labels[i])]

    def to_records(self) -> list[dict]:
        """JSON-ready list: [{"class", "score", "box": [x1, y1, x2, y2]}], by score."""
        return [
            {
                "class": self.class_name(i),
                "score": float(self.scores[i]),
                "box": [float(v) for v in self.boxes_xyxy[i]],
            }
            for i in range(len(self))
        ]


@dataclass(frozen=True)
class GroundTruthObject:
    """One line of a KITTI label_2 file (all 15 fields; score when present)."""

    type: str
    truncated: float
    occluded: int
    alpha: float
    box_xyxy: tuple[float, float, float, float]
    dimensions_hwl: tuple[float, float, float] = (-1.0, -1.0, -1.0)
    location_xyz: tuple[float, float, float] = (-1000.0, -1000.0, -1000.0)
    rotation_y: float = -10.0
    score: float | None = None

    @property
    def height(self) -> float:
        return self.box_xyxy[3] - self.box_xyxy[1]


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset: its path and (possibly empty) ground truth."""

    stem: str
    path: str
    objects: tuple[GroundTruthObject, ...] = field(default_factory=tuple)
    has_labels: bool = False
