"""Turn the shared quantization flags into something that detects.

Float, simulated-quantized (weights and optionally activations) and true INT8
all end up behind the same ``detect(image) -> Detections`` call, so detect,
evaluate and sweep treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezelens.cli.common import CALIBRATED_BY, calibration_if, say, uses_calibration
from squeezelens.cli.hijacks import warn_range_hijacks
from squeezelens.cli.progress import ProgressBar


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
    """Whether the flags need calibration images (--int8, activation bits, bias correction,
    AdaRound)."""
    return bool(getattr(args, "int8", False)) or uses_calibration(quant)


def check_quant_flags(args):
    """Validate the quantization flags before the slow model load.

    Returns (quant config or None, the CalibrationSet when the flags need one, else None).
    One-line InputErrors: bad values, ``--int8`` with weight flags, and ``--int8`` or
    activation bits with no calibration images (see :mod:`squeezelens.engine.calibration`).
    """
    quant = quant_from_args(args)
    if getattr(args, "int8", False):
        from squeezelens.engine.quant.remedies.int8 import int8_config

        int8_config(quant)  # only the remedies that mean something there
    return quant, calibration_if(args, needs_calibration(args, quant), f"--int8, {CALIBRATED_BY}")


def build_runner(args, detector):
    """(runner with .detect, quant config or None, a one-line description)."""
    quant, calibration = check_quant_flags(args)
    if quant is not None and not getattr(args, "int8", False):
        warn_range_hijacks(detector.float_weights, [quant])
    if calibration is not None:
        say(f"calibrating on {len(calibration)} images ({calibration.source})")
    if getattr(args, "int8", False):
        return int8_runner(detector, quant, calibration)
    if calibration is not None:
        calibrate(detector, quant, calibration)
    if quant is not None and quant.needs_model:
        say(f"remedies: {quant.describe()} (cached per checkpoint, config and calibration set)")
        detector.quantized_weights(quant, progress=ProgressBar("remedies", unit="layer"))
    return BoundDetector(detector, quant), quant, ("float" if quant is None else quant.describe())


def int8_runner(detector, quant, calibration):
    """(the INT8 detector, its remedies config or None, a description): converted from the
    float weights, or from the remedied ones (engine.quant.remedies.int8)."""
    from squeezelens.engine.quant.remedies.int8 import int8_config

    remedies = int8_config(quant)
    if remedies is not None:
        say(f"INT8 remedies: {remedies.describe()}")
    int8 = convert_int8(detector, quant, calibration,
                        "INT8: converting (cached per checkpoint, remedies and calibration set)")  # fmt: skip
    label = "INT8 (TFLite full-integer" + (f", {remedies.describe()})" if remedies else ")")
    return int8, remedies, label


def convert_int8(detector, quant, calibration, note: str | None = None):
    """The INT8 detector of the float weights, or of the remedied ones when ``quant`` has
    remedies that mean something there, with progress bars (``note`` is said before the
    conversion); the calibration images are decoded once for both steps."""
    from squeezelens.engine.int8 import Int8Detector
    from squeezelens.engine.quant.remedies.int8 import int8_source

    images = calibration.images()
    detector.set_calibration(images, record=calibration.record())
    source = int8_source(detector, quant, ProgressBar("remedies", unit="layer"))
    if note:
        say(note)
    bar = ProgressBar("INT8 conversion", unit="step")
    return Int8Detector.from_detector(source, images, progress=bar)


def calibrate(detector, quant, calibration) -> None:
    """Hand the calibration set to the detector: activation ranges when activations are
    quantized, else the images alone (bias correction, AdaRound)."""
    if quant is not None and quant.activation_bits:
        detector.calibrate_activations(calibration.images(), record=calibration.record())
    else:
        detector.set_calibration(calibration.images(), record=calibration.record())


def calibration_used(detector) -> dict | None:
    """The provenance of the images that calibrated the run (None when none did), for
    results files."""
    calibration = getattr(detector, "calibration", None)
    return None if calibration is None else calibration.record
