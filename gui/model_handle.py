"""The loaded detector and the worker-side caches that live as long as it does.

Only the model worker touches a :class:`ModelHandle`'s detector; the UI thread
holds the handle to hand it to jobs and to compare generations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from squeezelens.engine.types import Detections

if TYPE_CHECKING:
    from squeezelens.engine.calibration import CalibrationSet
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.int8 import Int8Detector
    from squeezelens.engine.quant import QuantConfig

Calibration = Callable[[], "CalibrationSet"]  # lists files: call it on a worker


@dataclass
class ModelHandle:
    """A detector, its generation (one per load) and its worker-only caches."""

    detector: Detector
    generation: int
    float_dets: dict[str, Detections] = field(default_factory=dict)
    int8: Int8Detector | None = None
    prepared: tuple = ()  # (path, image, network input, scale) of the last image shown
    calibrated_on: tuple[str, ...] = ()  # the images the activation ranges come from
    calibration_images: tuple[str, ...] = ()  # the images detector.calibration holds

    def calibrate(self, calibration: CalibrationSet) -> None:
        """Calibrate activation ranges on ``calibration`` unless done."""
        if self.calibrated_on != calibration.paths:
            self.detector.calibrate_activations(calibration.images(), record=calibration.record())
            self.calibrated_on = self.calibration_images = calibration.paths

    def use_calibration(self, calibration: CalibrationSet) -> None:
        """Hand ``calibration``'s images to the detector (for bias correction and AdaRound)
        unless it holds them; activation ranges stay until :meth:`calibrate` needs others."""
        if self.calibration_images != calibration.paths:
            self.detector.set_calibration(calibration.images(), record=calibration.record())
            self.calibration_images = calibration.paths
            self.calibrated_on = ()  # set_calibration dropped the activation limits

    def remedies_ready(self, config: QuantConfig | None) -> bool:
        """Whether detecting with ``config`` needs no long job first: nothing uses calibration
        images, or its remedied weights are cached for the images the detector holds
        (:func:`engine.quant.remedies.cache.is_cached`: a hash and a lookup; UI-thread safe)."""
        if config is None or not config.needs_calibration:
            return True
        from squeezelens.engine.quant.remedies.cache import is_cached

        return bool(self.calibration_images) and is_cached(self.detector, config)

    def prepare_remedies(self, configs: tuple[QuantConfig | None, ...],
                         calibration: Calibration, progress=None, cancel=None) -> None:  # fmt: skip
        """Compute (or load) the remedied weights of ``configs`` so that detecting with them
        afterwards is instant.  AdaRound runs in a child process (its optimisation loop is
        Python driving numpy: in this process it would hold the interpreter lock the UI thread
        needs), then is filed in the remedies cache; bias correction alone runs here (its work
        is TensorFlow's, which releases the lock, and a child would first spend seconds
        importing TensorFlow).  Cancelling stops either with nothing kept."""
        from squeezelens.engine.quant.remedies.cache import is_cached, store
        from squeezelens.engine.quant.remedies.isolated import remedied_params_isolated

        todo = [c for c in configs if c is not None and c.needs_calibration]
        if todo:
            self.use_calibration(calibration())
        for config in todo:
            if config.rounding == "adaround" and not is_cached(self.detector, config):
                store(self.detector, config,
                      remedied_params_isolated(self.detector, config, progress, cancel))  # fmt: skip
            self.detector.quantized_weights(config, progress, cancel)  # cached, or computed here

    def forget_calibration(self) -> None:
        """Another folder opened: its train split calibrates from now on (and INT8 with it)."""
        self.calibrated_on, self.calibration_images, self.int8 = (), (), None

    def network_input(
        self, path: str, image: np.ndarray, keep: bool = True
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """The preprocessed input of ``image``; the shown one (``keep``) is prepared once."""
        if self.prepared and self.prepared[0] == path and self.prepared[1] is image:
            return self.prepared[2], self.prepared[3]
        x, scale = self.detector.preprocess(image)
        if keep:
            self.prepared = (path, image, x, scale)
        return x, scale

    def needs_image(self, path: str, config: QuantConfig | None, int8: bool) -> bool:
        """Whether detecting ``path`` with ``config`` runs the network (float boxes are cached)."""
        return int8 or config is not None or path not in self.float_dets

    def detect(self, path: str, config: QuantConfig | None, calibration: Calibration,
               int8: bool = False, image: np.ndarray | None = None,
               keep: bool = True) -> Detections:  # fmt: skip
        """One detection on the worker thread (float results cached per path).

        With ``image`` (the decoded file at ``path``) its network input is prepared once
        and, with ``keep`` (the image shown), reused: a slider release costs no PNG decode
        or resize.  ``calibration`` is asked for only when activation bits need ranges.
        """
        from squeezelens.engine.evaluate import has_stages

        det = self.detector
        if not self.needs_image(path, config, int8):
            return self.float_dets[path]
        staged = image is not None and has_stages(det)
        if int8:
            assert self.int8 is not None, "the INT8 model is converted before it detects"
            if not staged:
                return self.int8.detect(path)
            x, scale = self.network_input(path, image, keep)
            return self.int8.decode(self.int8.forward(x[None])[0], scale)
        if config is not None and config.activation_bits:
            self.calibrate(calibration())
        if config is not None and config.needs_calibration:  # computed first by a long job
            self.use_calibration(calibration())
        if staged:
            x, scale = self.network_input(path, image, keep)
            dets = det.decode(det.forward(x[None], config)[0], scale)
        else:
            dets = det.detect(path, config)
        if config is None:
            self.float_dets[path] = dets
        return dets


class ConfigKey(NamedTuple):
    """What a pair of detections was computed for: the model load, both configs, INT8."""

    generation: int
    ref: QuantConfig | None
    other: QuantConfig | None
    int8: bool
