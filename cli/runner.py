"""Turn the shared quantization flags into something that detects.

Float, simulated-quantized (weights and optionally activations) and true INT8
all end up behind the same ``detect(image) -> Detections`` call, so detect,
evaluate and sweep treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from cli.common import say
from engine.errors import InputError


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


def calibration_images(args, fallback: list[str] | None) -> list:
    """Decoded calibration images: --calib paths, else the fallback paths, capped by --calib-count."""
    from engine.data.images import list_images, read_image_bgr

    if args.calib_count is not None and args.calib_count < 1:
        raise InputError(f"--calib-count must be at least 1, got {args.calib_count}")
    paths = list_images(args.calib) if args.calib else [p for p in (fallback or [])]
    if not paths:
        raise InputError(
            "no calibration images: give --calib PATH (or --kitti-root for its train split)"
        )
    paths = sorted(paths)[: args.calib_count]
    return [read_image_bgr(p) for p in paths]


def quant_from_args(args):
    """The QuantConfig the flags describe, or None when no quantization flag was given."""
    from engine.quant.cli_args import quant_config_from_args

    given = [
        k
        for k, v in vars(args).items()
        if k.startswith("quant_") and k != "quant_multi" and v is not None
    ]
    return quant_config_from_args(args) if given else None


def build_runner(args, detector, calib_fallback: list[str] | None = None):
    """(runner with .detect, quant config or None, a one-line description)."""
    quant = quant_from_args(args)
    if getattr(args, "int8", False):
        if quant is not None:
            raise InputError(
                "--int8 runs TFLite's own integer quantization: drop the weight quantization flags"
            )
        from engine.int8 import Int8Detector

        images = calibration_images(args, calib_fallback)
        say(
            f"INT8: converting with {len(images)} calibration images (cached per checkpoint and set)"
        )
        return Int8Detector.from_detector(detector, images), None, "INT8 (TFLite full-integer)"
    if quant is not None and quant.activation_bits:
        images = calibration_images(args, calib_fallback)
        detector.calibrate_activations(images)
    return BoundDetector(detector, quant), quant, ("float" if quant is None else quant.describe())
