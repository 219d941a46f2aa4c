"""The Detector facade: one SqueezeDet graph, float weights kept, quantized ones swapped in.

Changing a quantization config never rebuilds or retraces the model: the
float weights stay in numpy, quantized copies are assigned into the same
variables, and one ``tf.function`` with a fixed input signature runs them.
Float ConvDet outputs are cached per image, so flipping back to float is free.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from squeezelens.engine.anchors import anchor_grid
from squeezelens.engine.calibration import CalibrationInputs
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec, count_parameters
from squeezelens.engine.model.weight_swap import WeightSwap
from squeezelens.engine.postprocess import postprocess
from squeezelens.engine.tf_runtime import graph_building
from squeezelens.engine.types import Detections

ImageLike = np.ndarray | str | Path


@dataclass(frozen=True)
class CheckpointInfo:
    path: str
    sha256: str
    format: str


def aligned_copy(array: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy of ``array`` whose data start on a 64-byte boundary."""
    from squeezelens.engine.quant.rounding import aligned_empty

    a = np.asarray(array, dtype=np.float32)
    out = aligned_empty(a.shape)
    out[...] = a
    return out


def _image_key(image: ImageLike) -> str:
    if isinstance(image, (str, Path)):
        p = Path(image)
        st = p.stat()
        return f"path:{p.resolve()}:{st.st_mtime_ns}:{st.st_size}"
    return "array:" + hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).hexdigest()


class Detector:
    """A SqueezeDet ready to detect, float or quantized.

    Thread-safety: calls are serialized by an internal lock (one graph, one set
    of variables); run it from one worker thread in a GUI.
    """

    cache_size = 128

    def __init__(
        self,
        spec: ArchSpec,
        weights: dict[str, np.ndarray],
        checkpoint: CheckpointInfo | None = None,
    ):
        from squeezelens.engine.model.spec import check_shapes
        from squeezelens.engine.tf_runtime import import_tf

        check_shapes(
            spec,
            {k: v.shape for k, v in weights.items()},
            checkpoint.path if checkpoint else "weights",
        )
        self.spec = spec
        self.checkpoint = checkpoint
        self.float_weights = {k: aligned_copy(v) for k, v in weights.items()}
        self.anchors = anchor_grid(spec)
        self._tf = import_tf()
        with graph_building():
            self._build_graph(self._tf)
        self._loaded_key: object = None  # config whose weights are in the variables (None = float)
        self._lock = threading.RLock()
        self._float_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.activation_ranges: dict[str, float] | None = None
        self.calibration: CalibrationInputs | None = None
        self._activation_limits: dict[tuple, dict[str, float]] = {}
        self._last_quantized: tuple | None = None  # (config, its weights)

    def _build_graph(self, tf) -> None:
        """The Keras models, the one-call weight swap and the two forward tf.functions
        (float, and with activation quantization), float weights loaded."""
        from squeezelens.engine.model.squeezedet import build_models

        self.graph = build_models(self.spec, with_activation_quant=True)
        self.model, self._layers = self.graph.model, self.graph.layers
        self._act_quant = self.graph.act_quant
        self._swap = WeightSwap(tf, self._layers)
        self._param_names = self._swap.names
        self._assign(self.float_weights)
        w, h = self.spec.input_size
        sig = [tf.TensorSpec([None, h, w, 3], tf.float32)]
        self._forward_float = tf.function(
            lambda x: self.model(x, training=False), input_signature=sig
        )
        self._forward_actq = tf.function(
            lambda x: self.graph.actq_model(x, training=False), input_signature=sig
        )

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(
        cls, path: str | Path, input_size: tuple[int, int] | None = None
    ) -> Detector:
        """Load any supported checkpoint (TF1 prefix/folder, .h5, .npz) and its sidecar."""
        from squeezelens.engine.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, input_size=input_size)
        return cls(ckpt.spec, ckpt.weights, CheckpointInfo(ckpt.path, ckpt.sha256, ckpt.format))

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.float_weights)

    def summary(self) -> str:
        w, h = self.spec.input_size
        gw, gh = self.spec.grid_size
        return (
            f"{'SqueezeDet+' if self.spec.variant == 'squeezedet+' else 'SqueezeDet'}, "
            f"{self.num_parameters / 1e6:.2f} M parameters, input {w}x{h}, grid {gw}x{gh}, "
            f"{self.spec.anchors_per_cell} anchors, ConvDet {self.spec.convdet_kernel}x{self.spec.convdet_kernel}, "
            f"classes {', '.join(self.class_names)}"
        )

    # ------------------------------------------------------------ weight swap
    def _assign(self, weights: dict[str, np.ndarray]) -> None:
        """Write ``weights`` (official names, HWIO float32) into the model's variables."""
        self._swap.assign(weights)

    def quantized_weights(self, quant, progress=None, cancel=None) -> dict[str, np.ndarray]:
        """The weights under a QuantConfig (float weights for None).  The remedies that
        need the model (equalization, bias correction, AdaRound) run through
        :mod:`engine.quant.remedies.cache` (memory and disk; bias correction and
        AdaRound on :attr:`calibration`); progress and cancel reach their walks.  Those
        take seconds to minutes: a GUI runs this as a job first (see
        :func:`engine.quant.remedies.is_cached`), then detecting finds them cached."""
        if quant is None:
            return self.float_weights
        if getattr(quant, "needs_model", False):
            from squeezelens.engine.quant.remedies.cache import detector_weights

            return detector_weights(self, quant, progress, cancel)
        from squeezelens.engine.quant import quantize_weights

        return quantize_weights(self.float_weights, quant)

    def _use_reference(self, equalized: bool) -> None:
        """Load the float weights, equalized ones when ``equalized`` (the same function
        as the float model, other per-layer outputs)."""
        if not equalized:
            return self._use(None)
        from squeezelens.engine.quant.remedies.cache import equalized_weights

        self._assign(equalized_weights(self))
        self._loaded_key = _SWAPPED

    def _weights_for(self, quant) -> dict[str, np.ndarray]:
        """quantized_weights, the last config's kept (one more copy of the weights): going
        back and forth between float and one config -- image by image, as ``evaluate
        --errors`` does -- swaps without quantizing again.  Never handed out."""
        if quant is None:
            return self.float_weights
        last = self._last_quantized
        if last is None or last[0] != quant:
            last = self._last_quantized = (quant, self.quantized_weights(quant))
        return last[1]

    def _use(self, quant) -> None:
        key = None if quant is None else quant
        if key == self._loaded_key:
            return
        self._assign(self._weights_for(quant))
        self._loaded_key = key

    # ---------------------------------------------------------------- forward
    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """BGR image (H, W, 3) -> network input (h, w, 3) float32 minus means, and (sx, sy)."""
        if (
            not isinstance(image, np.ndarray)
            or image.ndim != 3
            or image.shape[2] != 3
            or min(image.shape[:2]) < 1
        ):
            raise InputError(
                f"expected a (H, W, 3) BGR image, got shape {getattr(image, 'shape', None)}"
            )
        w, h = self.spec.input_size
        im = image.astype(np.float32)
        im -= np.asarray(self.spec.bgr_means, dtype=np.float32)
        im = cv2.resize(im, (w, h))
        return im, (w / image.shape[1], h / image.shape[0])

    def _load(self, image: ImageLike) -> np.ndarray:
        if isinstance(image, (str, Path)):
            from squeezelens.engine.data.images import read_image_bgr

            return read_image_bgr(image)
        return image

    def trace_forward(self) -> None:
        """Trace the float forward now, without running it.  The first forward call does it
        otherwise: about a second of graph building holding the interpreter lock in long
        stretches, which a window would rather spend while it says 'loading'."""
        with self._lock:
            if not self._forward_float.experimental_get_tracing_count():
                with graph_building():
                    self._forward_float.get_concrete_function()

    def forward(self, batch: np.ndarray, quant=None) -> np.ndarray:
        """Raw ConvDet output (B, gridH, gridW, K*(C+5)) float32 for a preprocessed batch."""
        with self._lock:
            act = quant is not None and getattr(quant, "activation_bits", None)
            if act:  # first: computing clipping ranges may swap other weights in
                self._configure_activation_quant(
                    int(quant.activation_bits), quant.activation_range, quant.equalize
                )
            self._use(quant)
            fn = self._forward_actq if act else self._forward_float
            x = np.asarray(batch, dtype=np.float32)
            if fn.experimental_get_tracing_count():
                return fn(x).numpy()
            with graph_building():  # the first call traces
                return fn(x).numpy()

    def raw_output(self, image: ImageLike, quant=None) -> tuple[np.ndarray, tuple[float, float]]:
        """(raw ConvDet output (gridH, gridW, K*(C+5)), scale_xy) for one image; float cached."""
        key = _image_key(image) if quant is None else None
        with self._lock:
            if key is not None and key in self._float_cache:
                self._float_cache.move_to_end(key)
                return self._float_cache[key]
        x, scale = self.preprocess(self._load(image))
        raw = self.forward(x[None], quant)[0]
        if key is not None:
            with self._lock:
                self._float_cache[key] = (raw, scale)
                while len(self._float_cache) > self.cache_size:
                    self._float_cache.popitem(last=False)
        return raw, scale

    def decode(self, raw: np.ndarray, scale_xy: tuple[float, float]) -> Detections:
        """Post-process one raw ConvDet output into Detections (original pixels, xyxy)."""
        return postprocess(
            raw,
            self.anchors,
            self.spec.input_size,
            scale_xy,
            self.class_names,
            self.spec.anchors_per_cell,
        )

    def detect(self, image: ImageLike, quant=None, threshold: float = 0.0) -> Detections:
        """Detect objects in one BGR image (or image path); quant=None is the float model.

        Returns every detection the post-processing keeps with score >= threshold.
        """
        dets = self.decode(*self.raw_output(image, quant))
        return dets.above(threshold) if threshold > 0 else dets

    def detect_batch(
        self, images: Sequence[np.ndarray], quant=None, threshold: float = 0.0
    ) -> list[Detections]:
        """Detect in several decoded BGR images in one forward pass."""
        prepared = [self.preprocess(im) for im in images]
        raw = self.forward(np.stack([p[0] for p in prepared]), quant)
        out = [self.decode(r, p[1]) for r, p in zip(raw, prepared)]
        return [d.above(threshold) for d in out] if threshold > 0 else out

    # ------------------------------------------------------ activation quant
    def set_calibration(self, images: Sequence[ImageLike], record: dict | None = None) -> None:
        """Keep the calibration images (preprocessed) for the remedies and activation ranges.

        record: their provenance (``CalibrationSet.record()``), written into results files.
        """
        from squeezelens.engine.provenance import images_sha256

        decoded = [self._load(i) for i in images]
        if not decoded:
            raise InputError("no calibration images")
        inputs = np.stack([self.preprocess(im)[0] for im in decoded])
        with self._lock:
            self.calibration = CalibrationInputs(inputs, images_sha256(decoded), record)
            self._activation_limits = {}

    def calibrate_activations(
        self,
        images: Sequence[ImageLike],
        progress: Callable[[int, int], None] | None = None,
        record: dict | None = None,
    ) -> dict[str, float]:
        """Keep the calibration images (:meth:`set_calibration`) and record each layer output's
        largest magnitude over them (float weights)."""
        from squeezelens.engine.activations import activation_ranges

        self.set_calibration(images, record)
        with self._lock:
            self._use(None)
            self.activation_ranges = activation_ranges(self, self.calibration.inputs, progress)
            self._act_bits_loaded = None
        return self.activation_ranges

    def layer_outputs(
        self,
        batch: np.ndarray,
        quant=None,
        activation_grids: dict | None = None,
        equalized: bool = False,
    ) -> list[np.ndarray]:
        """Every layer output, in official layer order, for a preprocessed batch (B, H, W, 3).

        quant: the weights' config (None: float; with ``equalized`` the equalized float
        weights, the same function with other per-layer outputs: what an equalizing config
        rounds); its activation bits quantize the outputs.  activation_grids: {layer:
        (step, lo, hi)} puts every output on that grid instead (``clip(round(a / step), lo,
        hi) * step``: an INT8 model's affine scale with lo = -128 - zero point, hi = 127 -
        zero point).
        """
        with self._lock:
            act = quant is not None and getattr(quant, "activation_bits", None)
            if activation_grids is not None:
                self._set_activation_grids(activation_grids)
            elif act:  # first: computing clipping ranges may swap other weights in
                self._configure_activation_quant(
                    int(quant.activation_bits), quant.activation_range, quant.equalize
                )
            if quant is None and equalized:
                self._use_reference(True)
            else:
                self._use(quant)
            probe = self.graph.actq_probe if act or activation_grids else self.graph.probe
            return [t.numpy() for t in probe(np.asarray(batch, np.float32), training=False)]

    def _set_activation_grids(self, grids: dict) -> None:
        for name, layer in self._act_quant.items():
            step, lo, hi = grids[name]
            layer.step.assign(step)
            layer.lo.assign(lo)
            layer.hi.assign(hi)
            layer.enabled.assign(1.0)
        self._act_bits_loaded = None  # calibrated grids must be set again

    def activation_limits(
        self, bits: int, method: str = "minmax", equalized: bool = False
    ) -> dict[str, float]:
        """Each layer output's clipping magnitude at ``bits``: the calibrated maxima, or
        (another ``method``, or equalized weights) computed once from the calibration images."""
        if method == "minmax" and not equalized and self.activation_ranges is not None:
            return self.activation_ranges
        if self.activation_ranges is None or self.calibration is None:
            raise InputError("activation bits need calibration images (--calib PATH)")
        key = (bits if method in ("mse", "entropy") else None, method, equalized)
        with self._lock:
            if key not in self._activation_limits:
                from squeezelens.engine.activations import activation_limits as compute

                self._use_reference(equalized)
                tops = None if equalized else self.activation_ranges  # float: measured already
                self._activation_limits[key] = compute(
                    self, self.calibration.inputs, method, bits, tops
                )
            return self._activation_limits[key]

    def _configure_activation_quant(
        self, bits: int, method: str = "minmax", equalized: bool = False
    ) -> None:
        if self.activation_ranges is None:
            raise InputError("activation bits need calibration images (--calib PATH)")
        if getattr(self, "_act_bits_loaded", None) == (bits, method, equalized):
            return
        from squeezelens.engine.activations import dynamic_fixed_point

        limits = self.activation_limits(bits, method, equalized)
        for name, layer in self._act_quant.items():
            step, lo, hi = dynamic_fixed_point(limits[name], bits)
            layer.step.assign(step)
            layer.lo.assign(lo)
            layer.hi.assign(hi)
            layer.enabled.assign(1.0)
        self._act_bits_loaded = (bits, method, equalized)


_SWAPPED = object()  # the variables hold weights of no config (reassigned on the next use)
