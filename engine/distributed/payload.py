"""What a worker needs to rebuild the parent's model, shipped once through Ray's object store.

The parent has already loaded the checkpoint (any format), calibrated activation
ranges (``--activation-bits``) or converted the INT8 model (``--int8``); a worker
gets the same float32 weights as ``.npz`` bytes (:func:`engine.checkpoint.writers.npz_bytes`,
keyed by official names), the :class:`ArchSpec` (input-size override included),
the calibrated activation ranges, the INT8 flatbuffer bytes and the calibration
images as network inputs (when the parent holds them: bias correction, AdaRound and
non-minmax activation ranges are computed from them, deterministically, so a worker's
remedied weights equal the parent's; on one machine the remedies' disk cache hands
them over at once).  So workers need no shared filesystem, never convert themselves,
and compute exactly what the parent would.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from squeezelens.engine.model.spec import ArchSpec


@dataclass(frozen=True, eq=False)
class ModelPayload:
    """A model as bytes and small values, rebuilt by :meth:`build` in a worker.

    weights_npz: the float weights as ``.npz`` bytes.  checkpoint: (path, sha256,
    format) of the checkpoint they came from, for provenance (None for in-memory
    weights).  activation_ranges: layer -> calibrated max |activation|, or None.
    int8_model: the INT8 ``.tflite`` bytes (the model then runs integer-only), or None.
    calibration: (inputs as ``.npy`` bytes, key, record) of the parent's
    :class:`~engine.calibration.CalibrationInputs`, or None.
    identity: a sha256 of everything that shapes the detections (stored task
    results are keyed by it, so a folder never mixes two models).
    """

    spec: ArchSpec
    weights_npz: bytes
    checkpoint: tuple[str, str, str] | None = None
    activation_ranges: Mapping[str, float] | None = None
    int8_model: bytes | None = None
    calibration: tuple[bytes, str, dict | None] | None = None
    identity: str = field(default="", compare=False)

    @classmethod
    def from_model(cls, model) -> ModelPayload:
        """The payload of a float :class:`~engine.detector.Detector` (its calibrated activation
        ranges included) or of an :class:`~engine.int8.Int8Detector`."""
        from squeezelens.engine.checkpoint.writers import npz_bytes

        int8 = None
        if hasattr(model, "detector") and hasattr(model, "model_path"):  # an Int8Detector
            if model.model_path is None:
                raise ValueError("an INT8 detector built from bytes cannot be shipped")
            int8, model = Path(model.model_path).read_bytes(), model.detector
        info = model.checkpoint
        ranges = model.activation_ranges
        payload = cls(
            spec=model.spec,
            weights_npz=npz_bytes(model.float_weights),
            checkpoint=None if info is None else (info.path, info.sha256, info.format),
            activation_ranges=None if ranges is None else dict(ranges),
            int8_model=int8,
            calibration=_calibration_bytes(model.calibration),
        )
        object.__setattr__(payload, "identity", payload._identity(model))
        return payload

    def _identity(self, detector) -> str:
        from squeezelens.engine.provenance import model_sha256

        h = hashlib.sha256()
        h.update(json.dumps(self.spec.to_dict(), sort_keys=True).encode())
        h.update(model_sha256(detector).encode())
        h.update(json.dumps(self.activation_ranges, sort_keys=True).encode())
        h.update(hashlib.sha256(self.int8_model or b"").digest())
        h.update((self.calibration[1] if self.calibration else "").encode())
        return h.hexdigest()

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    def build(self, threads: int = 1):
        """The model: a Detector (activation ranges set), or an Int8Detector over one
        running LiteRT with ``threads`` threads."""
        from squeezelens.engine.checkpoint.loader import read_npz_weights
        from squeezelens.engine.detector import CheckpointInfo, Detector

        weights = read_npz_weights(io.BytesIO(self.weights_npz), "shipped weights")
        info = None if self.checkpoint is None else CheckpointInfo(*self.checkpoint)
        detector = Detector(self.spec, weights, info)
        if self.activation_ranges is not None:
            detector.activation_ranges = dict(self.activation_ranges)
        if self.calibration is not None:
            from squeezelens.engine.calibration import CalibrationInputs

            data, key, record = self.calibration
            inputs = np.load(io.BytesIO(data), allow_pickle=False)
            detector.calibration = CalibrationInputs(inputs, key, record)
        if self.int8_model is None:
            return detector
        from squeezelens.engine.int8 import Int8Detector

        return Int8Detector(detector, self.int8_model, num_threads=threads)


def _calibration_bytes(calibration) -> tuple[bytes, str, dict | None] | None:
    if calibration is None:
        return None
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(calibration.inputs, np.float32), allow_pickle=False)
    return buffer.getvalue(), calibration.key, calibration.record
