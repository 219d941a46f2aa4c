"""Walk a SqueezeDet one convolution at a time on calibration images, float and quantized.

Bias correction and AdaRound decide a layer's quantized weights from that layer's
inputs on two paths: the *float* path (float weights everywhere) and the *quantized*
path (every earlier layer already has the weights decided for it).  :func:`walk`
runs both paths forward layer by layer (TensorFlow convolutions, a few images at a
time), asking ``decide`` for each layer's weights (given its inputs) before it
computes the layer's outputs with them.  Junction tensors (:mod:`engine.model.topology`)
are kept for every image until their last reader is done; a pooled junction is
pooled per producer as soon as it is computed (pooling commutes with concatenation),
so the unpooled maps never stay in memory.  Until the first layer whose weights
change, the quantized path shares the float path's arrays.

:func:`window_sums` and :func:`mean_preactivation` give a layer's mean output per
channel over images and positions from its input in one pass (a convolution is
linear: the mean is the kernel applied to the sums of the input windows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.jobs import CancelToken, Progress, check
from squeezelens.engine.model.topology import (
    ConvLayer,
    conv_layers,
    input_junctions,
    junctions,
    pool_padding,
)

BATCH = 4  # images per TensorFlow call: bounds the unpooled maps held at once


@dataclass(frozen=True, eq=False)
class LayerInputs:
    """One layer and its inputs over the calibration images (N, H, W, Cin) on the float
    path and on the quantized path (the same array until the first changed layer)."""

    layer: ConvLayer
    x_float: np.ndarray
    x_quant: np.ndarray


Decide = Callable[[LayerInputs], tuple[np.ndarray, np.ndarray]]


def conv_extent(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(output size, padding before) of one spatial axis, as TensorFlow pads."""
    if padding == "VALID":
        return (size - kernel) // stride + 1, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2


def window_sums(x: np.ndarray, kernel: int, stride: int, padding: str) -> tuple[np.ndarray, int]:
    """(S, P): ``S[h, w, i]``, the sum over images and output positions of the input value
    under kernel tap ``(h, w)`` (zero where it falls in the padding), float64; P the
    number of (image, output position) pairs."""
    n, height, width, channels = x.shape
    oh, top = conv_extent(height, kernel, stride, padding)
    ow, left = conv_extent(width, kernel, stride, padding)
    sums = np.zeros((kernel, kernel, channels))
    for h in range(kernel):
        rows = _taps(h - top, oh, stride, height)
        for w in range(kernel):
            cols = _taps(w - left, ow, stride, width)
            if rows is not None and cols is not None:
                part = x[:, rows, cols, :]
                sums[h, w] = part.sum(axis=(0, 1, 2), dtype=np.float64)
    return sums, n * oh * ow


def _taps(offset: int, out: int, stride: int, size: int) -> slice | None:
    """The input indices ``o * stride + offset`` (o in [0, out)) inside [0, size), a slice."""
    first = 0 if offset >= 0 else (stride - 1 - offset) // stride  # ceil(-offset / stride)
    last = min(out - 1, (size - 1 - offset) // stride)
    if last < first:
        return None
    return slice(first * stride + offset, last * stride + offset + 1, stride)


def mean_preactivation(x: np.ndarray, layer: ConvLayer, kernel: np.ndarray, bias) -> np.ndarray:
    """Mean over images and positions of ``conv(x, kernel) + bias`` per output channel."""
    sums, count = window_sums(x, kernel.shape[0], layer.stride, layer.padding)
    return np.einsum("hwi,hwio->o", sums, kernel.astype(np.float64)) / count + bias


class _Ops:
    """The TensorFlow operations of a walk."""

    def __init__(self, variant: str) -> None:
        from squeezelens.engine.tf_runtime import import_tf

        self.tf = import_tf()
        self.pool_padding = pool_padding(variant)

    def layer(self, x: np.ndarray, layer: ConvLayer, kernel, bias, pooled: bool) -> np.ndarray:
        """The layer's (ReLU'd, pooled when its junction is) outputs for every image."""
        tf = self.tf
        parts = []
        k, b = tf.constant(kernel, tf.float32), tf.constant(bias, tf.float32)
        for start in range(0, x.shape[0], BATCH):
            z = tf.nn.conv2d(x[start : start + BATCH], k, layer.stride, layer.padding) + b
            z = tf.nn.relu(z) if layer.relu else z
            if pooled:
                z = tf.nn.max_pool2d(z, 3, 2, self.pool_padding)
            parts.append(z.numpy())
        return np.concatenate(parts)


def walk(
    variant: str,
    float_weights: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    decide: Decide,
    last: str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Run ``decide`` on every convolution in forward order (up to ``last``, default all).

    inputs: the preprocessed calibration images (N, H, W, 3) float32.  ``decide`` gets
    each layer's :class:`LayerInputs` and returns the (kernel, bias) the quantized path
    uses for it; its inputs there come from the weights decided before.
    """
    ops = _Ops(variant)
    feeds = input_junctions(variant)
    pooled = {p for j in junctions(variant) if j.pooled for p in j.producers}
    readers = {p: len(j.consumers) for j in junctions(variant) for p in j.producers}
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    layers = conv_layers(variant)
    stop = next((i for i, layer in enumerate(layers) if layer.name == last), len(layers) - 1)
    for i, layer in enumerate(layers[: stop + 1]):
        check(cancel)
        x_f, x_q = _inputs(layer, feeds, outputs, inputs)
        _release(layer.name, feeds, outputs, readers)  # x_f and x_q hold what is still needed
        kernel_f = float_weights[f"{layer.name}/kernels"]
        bias_f = float_weights[f"{layer.name}/biases"]
        kernel_q, bias_q = decide(LayerInputs(layer, x_f, x_q))
        out_f = ops.layer(x_f, layer, kernel_f, bias_f, layer.name in pooled)
        same = x_q is x_f and np.array_equal(kernel_q, kernel_f) and np.array_equal(bias_q, bias_f)
        out_q = out_f if same else ops.layer(x_q, layer, kernel_q, bias_q, layer.name in pooled)
        if layer.name in readers:
            outputs[layer.name] = (out_f, out_q)
        if progress is not None:
            progress(i + 1, stop + 1)


def _inputs(layer: ConvLayer, feeds, outputs, image_inputs) -> tuple[np.ndarray, np.ndarray]:
    """The layer's input on both paths: the images, or its junction's concatenated outputs."""
    junction = feeds.get(layer.name)
    if junction is None:
        return image_inputs, image_inputs
    parts = [outputs[p] for p in junction.producers]
    if len(parts) == 1:
        return parts[0]
    x_f = np.concatenate([p[0] for p in parts], axis=-1)
    shared = all(p[0] is p[1] for p in parts)
    return x_f, x_f if shared else np.concatenate([p[1] for p in parts], axis=-1)


def _release(name: str, feeds, outputs, readers: dict[str, int]) -> None:
    """Forget the outputs whose every reader has now run."""
    junction = feeds.get(name)
    if junction is None:
        return
    for producer in junction.producers:
        readers[producer] -= 1
        if readers[producer] == 0:
            outputs.pop(producer, None)
