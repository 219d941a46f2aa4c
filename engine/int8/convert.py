"""Full-integer post-training quantization of a SqueezeDet with the TFLite converter.

Why TFLite: its int8 kernels (XNNPACK QS8 on x86/ARM) really compute in
integers -- int8 weights and activations, int32 accumulators and biases,
per-channel weight scales and per-tensor activation scales -- unlike the
float simulation in :mod:`engine.quant`, so the result is deployable and fast.

Path: a fresh Keras 3 graph holding the detector's *float* weights is exported
as a SavedModel with a fixed ``(1, H, W, 3)`` signature, then
``tf.lite.TFLiteConverter.from_saved_model`` quantizes it, calibrating the
activation ranges on the preprocessed calibration images.  (Converting a
``tf.function`` concrete function directly fails here: Keras 3 variables stay
``READ_VARIABLE`` ops that the calibrator cannot run.)

I/O: by default the model takes an int8 input and gives an int8 output, so
the graph holds no float tensor and no QUANTIZE/DEQUANTIZE op (deployable on
integer-only accelerators); Int8Detector quantizes the preprocessed image and
dequantizes the raw ConvDet output with the tensors' (scale, zero point) in
numpy (~1 ms at 1248x384).  ``io_dtype="float32"`` keeps float I/O with
QUANTIZE/DEQUANTIZE ops at the ends instead: measured equally fast (within
noise, 17.3 vs 18.4 ms at 1248x384 on 2 threads; benchmarks/bench_int8.py
--investigate), so the integer-only graph is the default.  Weight scales are
per output channel (TFLite's default; per-tensor measured no faster).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, Progress, check

ImageLike = np.ndarray | str | Path


@dataclass(frozen=True)
class ConvertOptions:
    """Conversion recipe knobs; part of the cache key.

    io_dtype: "int8" (integer-only graph) or "float32" (QUANTIZE/DEQUANTIZE at the ends).
    per_channel: per-output-channel weight scales (TFLite's default) or one per tensor.
    """

    io_dtype: str = "int8"
    per_channel: bool = True

    def __post_init__(self) -> None:
        if self.io_dtype not in ("int8", "float32"):
            raise InputError(f"io_dtype must be 'int8' or 'float32', not {self.io_dtype!r}")

    def key(self) -> str:
        return f"io={self.io_dtype},pc={int(self.per_channel)}"


DEFAULT_OPTIONS = ConvertOptions()


def load_calibration_images(images: Sequence[ImageLike]) -> list[np.ndarray]:
    """Validate calibration images (BGR arrays or image paths) -> list of (H, W, 3) arrays.

    Raises InputError for an empty set, a non-image entry or a non-finite array,
    before any expensive work starts.
    """
    if isinstance(images, (np.ndarray, str, Path)) or images is None:
        raise InputError("calibration images must be a sequence of images, not one item")
    out: list[np.ndarray] = []
    for i, item in enumerate(images):
        if isinstance(item, (str, Path)):
            from squeezelens.engine.data.images import read_image_bgr

            item = read_image_bgr(item)
        if not isinstance(item, np.ndarray) or item.ndim != 3 or item.shape[2] != 3:
            shape = getattr(item, "shape", type(item).__name__)
            raise InputError(f"calibration image {i}: expected (H, W, 3) BGR, got {shape}")
        if item.size == 0 or not np.issubdtype(item.dtype, np.number):
            raise InputError(f"calibration image {i}: empty or non-numeric ({item.dtype})")
        if np.issubdtype(item.dtype, np.floating) and not np.all(np.isfinite(item)):
            raise InputError(f"calibration image {i}: contains NaN or infinity")
        out.append(item)
    if not out:
        raise InputError("no calibration images (INT8 conversion needs at least one)")
    return out


def _float_model(detector):
    """A fresh Keras graph holding the detector's float weights.

    Fresh so the conversion neither sees quantized weights the detector may
    have swapped in nor races with its forward passes.
    """
    from squeezelens.engine.model.squeezedet import build_models

    graph = build_models(detector.spec)
    for name, layer in graph.layers.items():
        layer.kernel.assign(detector.float_weights[f"{name}/kernels"])
        layer.bias.assign(detector.float_weights[f"{name}/biases"])
    return graph.model


def _representative(
    detector, images: list[np.ndarray], step: Callable[[], None]
) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Representative-dataset generator: one (1, H, W, 3) float32 input per image.

    step() runs after each image (progress + cancel check); an exception it
    raises propagates out of ``converter.convert()``.
    """

    def gen() -> Iterator[list[np.ndarray]]:
        for image in images:
            x, _ = detector.preprocess(image)
            yield [x[None].astype(np.float32)]
            step()

    return gen


def _converter(tf, saved_model: str, options: ConvertOptions):
    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if options.io_dtype == "int8":
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    if not options.per_channel:
        conv._experimental_disable_per_channel = True  # no public switch exists
    return conv


def convert_int8(
    detector,
    calibration_images: Sequence[ImageLike],
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    options: ConvertOptions = DEFAULT_OPTIONS,
) -> bytes:
    """Convert a Detector's float model to a full-integer TFLite flatbuffer.

    calibration_images: BGR images (H, W, 3) (or image paths) preprocessed like
    detection inputs; they fix the activation ranges, so use real scenes.
    progress(done, total): total = len(images) + 2 (export, each image, quantize).
    cancel: checked between steps; raises engine.errors.Cancelled.
    Returns the .tflite bytes: input (1, H, W, 3), output (1, gridH, gridW, K*(C+5)).
    """
    from squeezelens.engine.tf_runtime import graph_building, import_tf

    images = load_calibration_images(calibration_images)
    tf = import_tf()
    total, done = len(images) + 2, 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)
        check(cancel)

    check(cancel)
    w, h = detector.spec.input_size
    with tempfile.TemporaryDirectory(prefix="squeezelens-int8-") as tmp, graph_building():
        _float_model(detector).export(
            tmp,
            format="tf_saved_model",
            input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32)],
            verbose=False,
        )
        step()
        conv = _converter(tf, tmp, options)
        conv.representative_dataset = _representative(detector, images, step)
        flatbuffer = conv.convert()
    step()
    return bytes(flatbuffer)
