"""Turn the shared quantization flags into something that detects.

Float, simulated-quantized (weights and optionally activations) and true INT8
all end up behind the same ``detect(image) -> Detections`` call, so detect,
evaluate and sweep treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezelens.cli.common import say
from squeezelens.engine.errors import InputError


@dataclass
class BoundDetector:
    """A detector with a fixed quantization config (None = float)."""

    detector: object
    quant: object | None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.detector.class_names

    def detect(self, image, quant=None, threshold: float = 0.0):
        return self.detector.detect(image, quant=self.quant, threshold=threshold)


def kitti_train_images(root: str | None) -> list[str]:
    """Image paths of the train split of a KITTI root ([] without one): the calibration default."""
    from squeezelens.engine.data.kitti import open_dataset

    if not root:
        return []
    try:
        return [str(r.path) for r in open_dataset(root, "train").records]
    except InputError:
        return []


def calibration_paths(args, fallback: list[str] | None) -> list:
    """Calibration image paths: --calib paths, else the fallback paths; sorted, capped by --calib-count."""
    from squeezelens.engine.data.images import list_images

    if args.calib_count is not None and args.calib_count < 1:
        raise InputError(f"--calib-count must be at least 1, got {args.calib_count}")
    paths = list_images(args.calib) if args.calib else [p for p in (fallback or [])]
    if not paths:
        raise InputError(
            "no calibration images: give --calib PATH (or --kitti-root for its train split)"
        )
    return sorted(paths)[: args.calib_count]


def calibration_images(args, fallback: list[str] | None) -> list:
    """Decoded calibration images: --calib paths, else the fallback paths, capped by --calib-count."""
    from squeezelens.engine.data.images import read_image_bgr

    return [read_image_bgr(p) for p in calibration_paths(args, fallback)]


def quant_from_args(args):
    """The QuantConfig the flags describe, or None when no quantization flag was given."""
    from squeezelens.cli.quant_args import quant_config_from_args

    given = [
        k
        for k, v in vars(args).items()
        if k.startswith("quant_") and k != "quant_multi" and v is not None
    ]
    return quant_config_from_args(args) if given else None


def check_quant_flags(args, calib_fallback: list[str] | None = None):
    """Validate the quantization flags before the slow model load; returns quant_from_args(args).

    One-line InputErrors: bad values, ``--int8`` with weight flags, and
    ``--int8`` or activation bits with no calibration images (neither --calib
    nor a fallback such as the train split of --kitti-root).
    """
    quant = quant_from_args(args)
    int8 = getattr(args, "int8", False)
    if int8 and quant is not None:
        raise InputError(
            "--int8 runs TFLite's own integer quantization: drop the weight quantization flags"
        )
    if int8 or (quant is not None and quant.activation_bits):
        calibration_paths(args, calib_fallback)
    return quant


def build_runner(args, detector, calib_fallback: list[str] | None = None):
    """(runner with .detect, quant config or None, a one-line description)."""
    quant = check_quant_flags(args, calib_fallback)
    if getattr(args, "int8", False):
        from squeezelens.engine.int8 import Int8Detector

        images = calibration_images(args, calib_fallback)
        say(
            f"INT8: converting with {len(images)} calibration images (cached per checkpoint and set)"
        )
        return Int8Detector.from_detector(detector, images), None, "INT8 (TFLite full-integer)"
    if quant is not None and quant.activation_bits:
        images = calibration_images(args, calib_fallback)
        detector.calibrate_activations(images)
    return BoundDetector(detector, quant), quant, ("float" if quant is None else quant.describe())
