"""Small facts for the display, computed on the workers: model summary, browser rows.

Each function only gathers or forwards: detection matching is the engine's
``compare_detections``; the model facts are read from the engine's Detector.
"""

from __future__ import annotations

from typing import Any

from engine.compare import compare_detections
from engine.types import Detections
from gui.state import ImageCounts, ModelInfo


def model_info(detector: Any) -> ModelInfo:
    """The display facts of a detector (called on the worker)."""
    from engine.model.spec import layer_names

    ckpt = detector.checkpoint
    return ModelInfo(
        summary=detector.summary(),
        variant=detector.spec.variant,
        num_parameters=int(detector.num_parameters),
        class_names=tuple(detector.class_names),
        input_size=tuple(detector.spec.input_size),
        checkpoint_path=str(ckpt.path) if ckpt else "",
        sha256=str(ckpt.sha256) if ckpt else "",
        layer_names=tuple(layer_names(detector.spec.variant)),
        tensor_sizes={k: int(v.size) for k, v in detector.float_weights.items()},
    )


def gt_count(record: Any, class_names: tuple[str, ...]) -> int:
    """Ground-truth objects of the detector's classes in one image record."""
    if record is None:
        return 0
    names = {c.lower() for c in class_names}
    return sum(1 for o in record.objects if o.type.lower() in names)


def image_counts(record: Any, class_names: tuple[str, ...], ref: Detections, other: Detections,
                 threshold: float) -> ImageCounts:  # fmt: skip
    """One browser row at ``threshold`` (the engine compares; runs on either thread)."""
    r, o = ref.above(threshold), other.above(threshold)
    return ImageCounts(gt_count(record, class_names), len(r), len(o),
                       compare_detections(r, o).change_count)  # fmt: skip
