"""Run a full-integer SqueezeDet with the LiteRT interpreter, like the float Detector.

The float :class:`engine.detector.Detector` still does what is not the
network: preprocessing (resize + mean subtraction, float) and decoding (numpy
post-processing).  In between, the image is quantized to the int8 input
tensor's (scale, zero point), the integer graph runs (XNNPACK QS8 kernels,
``num_threads`` CPU threads), and the int8 ConvDet output is dequantized with
the output tensor's (scale, zero point) into the same float layout
``(gridH, gridW, K*(C+5))`` the float model produces.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.int8.convert import ImageLike
from squeezelens.engine.types import Detections


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """float -> integer codes round(x / scale) + zero_point, saturated to dtype's range."""
    info = np.iinfo(dtype)
    q = np.rint(x * np.float32(1.0 / scale)) + np.float32(zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """integer codes -> float32 (q - zero_point) * scale."""
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


@dataclass(frozen=True)
class SizeReport:
    """Model size, float weights vs the INT8 flatbuffer, and its tensors' types.

    tensor_types: dtype name -> number of tensors of the interpreter graph
    (weights, biases and activations); conv_weight_types / conv_bias_types
    count only CONV_2D filters and biases.
    """

    tflite_bytes: int
    float_weight_bytes: int
    tensor_types: dict[str, int] = field(default_factory=dict)
    conv_weight_types: dict[str, int] = field(default_factory=dict)
    conv_bias_types: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """float32 weight bytes / tflite bytes (about 4 for int8 weights)."""
        return self.float_weight_bytes / max(self.tflite_bytes, 1)

    def format(self) -> str:
        mb = 1024 * 1024
        types = ", ".join(f"{k} {v}" for k, v in sorted(self.tensor_types.items()))
        convw = ", ".join(f"{k} {v}" for k, v in sorted(self.conv_weight_types.items()))
        convb = ", ".join(f"{k} {v}" for k, v in sorted(self.conv_bias_types.items()))
        return (
            f"float32 weights {self.float_weight_bytes / mb:.2f} MB -> "
            f"int8 tflite {self.tflite_bytes / mb:.2f} MB ({self.ratio:.2f}x smaller)\n"
            f"tensors: {types}; conv weights: {convw}; conv biases: {convb}"
        )


class Int8Detector:
    """A SqueezeDet running as a full-integer LiteRT model; usable like Detector.

    Thread-safety: one interpreter, calls serialized by a lock.
    """

    def __init__(self, detector, model: str | Path | bytes, num_threads: int = 2) -> None:
        """detector: the float Detector (spec, preprocess, decode, float weights).
        model: path of a .tflite produced by :func:`convert_int8`, or its bytes."""
        from ai_edge_litert.interpreter import Interpreter

        self.detector = detector
        self.spec = detector.spec
        self.model_path = None if isinstance(model, bytes) else Path(model)
        try:
            if isinstance(model, bytes):
                self._model_bytes = len(model)
                self._interp = Interpreter(model_content=model, num_threads=num_threads)
            else:
                self._model_bytes = Path(model).stat().st_size
                self._interp = Interpreter(model_path=str(model), num_threads=num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError, OSError) as exc:
            raise InputError(f"not a usable TFLite model ({exc})", self.model_path) from exc
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._check_shapes()
        self._lock = threading.Lock()

    def _check_shapes(self) -> None:
        w, h = self.spec.input_size
        gw, gh = self.spec.grid_size
        want_in, want_out = (1, h, w, 3), (1, gh, gw, self.spec.convdet_outputs)
        got_in, got_out = tuple(self._in["shape"]), tuple(self._out["shape"])
        if got_in != want_in or got_out != want_out:
            raise InputError(
                f"TFLite model maps {list(got_in)} -> {list(got_out)}, but the detector "
                f"needs {list(want_in)} -> {list(want_out)}",
                self.model_path,
            )

    @classmethod
    def from_detector(
        cls,
        detector,
        calibration_images: Sequence[ImageLike],
        *,
        num_threads: int = 2,
        **conversion: Any,
    ) -> Int8Detector:
        """Convert (or fetch from the cache) and load the INT8 model of a float Detector.

        conversion: the keywords of :func:`engine.int8.cache.get_or_convert_int8`
        (``cache_dir``, ``progress``, ``cancel``, ``options``, and ``isolated``: convert in
        a child process, for hosts with other busy threads).
        """
        from squeezelens.engine.int8.cache import get_or_convert_int8

        path = get_or_convert_int8(detector, calibration_images, **conversion)
        return cls(detector, path, num_threads=num_threads)

    # ------------------------------------------------------------------ facade
    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def input_quantization(self) -> tuple[float, int]:
        """(scale, zero point) of the input tensor ((0.0, 0) for a float input)."""
        return self._in["quantization"]

    @property
    def output_quantization(self) -> tuple[float, int]:
        """(scale, zero point) of the output tensor ((0.0, 0) for a float output)."""
        return self._out["quantization"]

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        return self.detector.preprocess(image)

    def decode(self, raw: np.ndarray, scale_xy: tuple[float, float]) -> Detections:
        return self.detector.decode(raw, scale_xy)

    def summary(self) -> str:
        return "INT8 (LiteRT, integer-only) " + self.detector.summary()

    # ---------------------------------------------------------------- forward
    def forward(self, batch: np.ndarray, quant=None) -> np.ndarray:
        """Preprocessed batch (B, H, W, 3) float32 -> raw ConvDet (B, gridH, gridW, K*(C+5)) float32.

        The model has batch 1, so the batch runs image by image.
        """
        self._no_quant(quant)
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != tuple(self._in["shape"][1:]):
            raise InputError(
                f"expected a (B, {', '.join(map(str, self._in['shape'][1:]))}) batch, "
                f"got {list(batch.shape)}"
            )
        return np.stack([self._invoke(x[None])[0] for x in batch])

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        """One (1, H, W, 3) float32 input -> (1, gridH, gridW, K*(C+5)) float32 output."""
        dtype = self._in["dtype"]
        if dtype != np.float32:
            x = quantize(x, *self._in["quantization"], dtype)
        with self._lock:
            self._interp.set_tensor(self._in["index"], x)
            self._interp.invoke()
            out = self._interp.get_tensor(self._out["index"])
        if out.dtype != np.float32:
            out = dequantize(out, *self._out["quantization"])
        return out

    def _load(self, image: ImageLike) -> np.ndarray:
        if isinstance(image, (str, Path)):
            from squeezelens.engine.data.images import read_image_bgr

            return read_image_bgr(image)
        return image

    @staticmethod
    def _no_quant(quant) -> None:
        """Accept Detector's quant argument (drop-in use) but only as None."""
        if quant is not None:
            raise InputError("the INT8 model has its own quantization: pass quant=None")

    def raw_output(self, image: ImageLike, quant=None) -> tuple[np.ndarray, tuple[float, float]]:
        """(raw ConvDet output (gridH, gridW, K*(C+5)) float32, scale_xy) for one BGR image."""
        self._no_quant(quant)
        x, scale = self.preprocess(self._load(image))
        return self._invoke(x[None])[0], scale

    def detect(self, image: ImageLike, quant=None, threshold: float = 0.0) -> Detections:
        """Detect objects in one BGR image (or path); detections with score >= threshold."""
        dets = self.decode(*self.raw_output(image, quant))
        return dets.above(threshold) if threshold > 0 else dets

    def detect_batch(
        self, images: Sequence[ImageLike], quant=None, threshold: float = 0.0
    ) -> list[Detections]:
        """Detect in several images (one interpreter call each: the model has batch 1)."""
        return [self.detect(im, quant, threshold) for im in images]

    # ------------------------------------------------------------------ report
    def size_report(self) -> SizeReport:
        """Flatbuffer bytes vs float32 weight bytes, and the graph's tensor types."""
        tensors = self._interp.get_tensor_details()
        conv_w: Counter[str] = Counter()
        conv_b: Counter[str] = Counter()
        for op in self._interp._get_ops_details():  # no public per-op API in LiteRT 2.3
            if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                ins = list(op["inputs"])
                conv_w[tensors[ins[1]]["dtype"].__name__] += 1
                if len(ins) > 2 and ins[2] >= 0:
                    conv_b[tensors[ins[2]]["dtype"].__name__] += 1
        return SizeReport(
            tflite_bytes=self._model_bytes,
            float_weight_bytes=int(sum(v.nbytes for v in self.detector.float_weights.values())),
            tensor_types=dict(Counter(t["dtype"].__name__ for t in tensors)),
            conv_weight_types=dict(conv_w),
            conv_bias_types=dict(conv_b),
        )
