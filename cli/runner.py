"""Turn the shared quantization flags into something that detects.

Float, simulated-quantized (weights and optionally activations) and true INT8
all end up behind the same ``detect(image) -> Detections`` call, so detect,
evaluate and sweep treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezelens.cli.common import calibration_source, say, warn_range_hijacks
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


def quant_from_args(args):
    """The QuantConfig the flags describe, or None when no quantization flag was given."""
    from squeezelens.cli.quant_args import quant_config_from_args

    given = [
        k
        for k, v in vars(args).items()
        if k.startswith("quant_") and k != "quant_multi" and v is not None
    ]
    return quant_config_from_args(args) if given else None


def needs_calibration(args, quant) -> bool:
    """Whether the flags need calibration images (--int8 or activation bits)."""
    return bool(getattr(args, "int8", False) or (quant is not None and quant.activation_bits))


def check_quant_flags(args):
    """Validate the quantization flags before the slow model load.

    Returns (quant config or None, the CalibrationSet when the flags need one, else None).
    One-line InputErrors: bad values, ``--int8`` with weight flags, and ``--int8`` or
    activation bits with no calibration images (see :mod:`squeezelens.engine.calibration`).
    """
    quant = quant_from_args(args)
    if getattr(args, "int8", False) and quant is not None:
        raise InputError(
            "--int8 runs TFLite's own integer quantization: drop the weight quantization flags"
        )
    if not needs_calibration(args, quant):
        if args.calib:
            raise InputError("--calib is only used with --int8 or --activation-bits N")
        return quant, None
    return quant, calibration_source(args).resolve()


def build_runner(args, detector):
    """(runner with .detect, quant config or None, a one-line description)."""
    quant, calibration = check_quant_flags(args)
    warn_range_hijacks(detector, [quant])
    if calibration is not None:
        say(f"calibrating on {len(calibration)} images ({calibration.source})")
    if getattr(args, "int8", False):
        from squeezelens.engine.int8 import Int8Detector

        images = calibration.images()
        say("INT8: converting (cached per checkpoint and calibration set)")
        return Int8Detector.from_detector(detector, images), None, "INT8 (TFLite full-integer)"
    if calibration is not None:
        detector.calibrate_activations(calibration.images())
    return BoundDetector(detector, quant), quant, ("float" if quant is None else quant.describe())
