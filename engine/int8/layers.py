"""Simulated vs deployed INT8, layer by layer.

The INT8 model runs in LiteRT with every intermediate tensor kept
(``experimental_preserve_all_tensors``); each conv op's output is mapped to
its Keras layer by the filter tensor's name and dequantized with the tensor's
(scale, zero point).  Two references run on the same image:

* **float**: the float model on the float input;
* **simulated**: the same Keras graph carrying the INT8 model's *own*
  dequantized weights (int8 filters x their per-channel scales, int32 biases x
  input scale x filter scale) with every layer output fake-quantized on the
  INT8 model's own affine grid (``clip(round(a / s) + z, -128, 127)``) and the
  input quantized as the INT8 model quantizes it.  So simulation and
  deployment share weights, biases, ranges and rounding points: what remains
  is the integer arithmetic (int32 accumulation, fixed-point requantization,
  fused ReLU clamps, rounding of ties), in float here.

Per layer: SQNR and cosine of deployed vs float, simulated vs float and
deployed vs simulated, the share of values where deployed and simulated differ
by more than one activation step (*LSB*; they **part** where that share exceeds
:data:`PART_SHARE`), and the *local* mismatch: the layer recomputed in float
from the deployed model's own input to it, against its deployed output (the
layer's own arithmetic, free of what earlier layers passed on).

``kernels``: "xnnpack" (LiteRT's default delegate: what Int8Detector runs) or
"reference" (TFLite's builtin reference kernels).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.int8.runtime import dequantize, quantize

KERNELS = ("xnnpack", "reference")
PART_LSB = 1  # deployed and simulated part where values differ by more than this many steps
PART_SHARE = 0.01  # ... in more than this share of a layer's values
_KERAS_NAME = re.compile(r"/([A-Za-z0-9_]+?)(?:_\d+)?/convolution$")


@dataclass(frozen=True)
class ConvOp:
    """One CONV_2D of the INT8 model: tensor indices and the output's (scale, zero point)."""

    layer: str
    input: int
    filter: int
    bias: int
    output: int
    scale: float
    zero_point: int


def open_probe(model_path: str | Path, kernels: str = "xnnpack", num_threads: int = 2):
    """A LiteRT interpreter of the model keeping every intermediate tensor."""
    import warnings

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if kernels not in KERNELS:
        raise InputError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
    resolver = (OpResolverType.AUTO if kernels == "xnnpack"
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    with warnings.catch_warnings():  # "intended for debugging": that is what this is
        warnings.simplefilter("ignore")
        interp = Interpreter(model_path=str(model_path), num_threads=num_threads,
                             experimental_preserve_all_tensors=True,
                             experimental_op_resolver_type=resolver)  # fmt: skip
    interp.allocate_tensors()
    return interp


def conv_ops(interp, layers: Sequence[str]) -> dict[str, ConvOp]:
    """The conv op of every official layer (``fire2/squeeze1x1``), found by the Keras layer
    name in its filter tensor's name.  InputError when a layer has none."""
    tensors = interp.get_tensor_details()
    wanted = {name.replace("/", "_"): name for name in layers}
    found: dict[str, ConvOp] = {}
    for op in interp._get_ops_details():  # no public per-op API in LiteRT
        if op["op_name"] != "CONV_2D":
            continue
        ins, out = list(op["inputs"]), int(op["outputs"][0])
        m = _KERAS_NAME.search(tensors[ins[1]]["name"])
        if m and m.group(1) in wanted:
            scale, zero = tensors[out]["quantization"]
            found[wanted[m.group(1)]] = ConvOp(
                wanted[m.group(1)], ins[0], ins[1], ins[2], out, float(scale), int(zero)
            )
    missing = [name for name in layers if name not in found]
    if missing:
        raise InputError(f"the INT8 model has no conv op for layer(s) {', '.join(missing)}")
    return {name: found[name] for name in layers}


def _per_channel(interp, index: int) -> np.ndarray:
    """A constant tensor dequantized with its per-channel (or per-tensor) scales, float64."""
    detail = interp.get_tensor_details()[index]
    q = interp.get_tensor(index).astype(np.float64)
    params = detail["quantization_parameters"]
    scales, zeros = params["scales"].astype(np.float64), params["zero_points"].astype(np.float64)
    shape = [1] * q.ndim
    shape[params["quantized_dimension"]] = -1
    if scales.size == 1:
        return (q - zeros[0]) * scales[0]
    return (q - zeros.reshape(shape)) * scales.reshape(shape)


def deployed_weights(interp, ops: dict[str, ConvOp]) -> dict[str, np.ndarray]:
    """The INT8 model's weights as float32, keyed by official tensor names (kernels HWIO)."""
    out = {}
    for name, op in ops.items():
        kernel = _per_channel(interp, op.filter)  # OHWI
        out[f"{name}/kernels"] = np.ascontiguousarray(kernel.transpose(1, 2, 3, 0), np.float32)
        out[f"{name}/biases"] = _per_channel(interp, op.bias).astype(np.float32)
    return out


def activation_grids(ops: dict[str, ConvOp]) -> dict[str, tuple[float, float, float]]:
    """Per layer (step, lo, hi) of ``Detector.layer_outputs``: the output's affine int8 grid."""
    return {n: (op.scale, float(-128 - op.zero_point), float(127 - op.zero_point))
            for n, op in ops.items()}  # fmt: skip


def run_probe(interp, x: np.ndarray, ops: dict[str, ConvOp]) -> dict[str, np.ndarray]:
    """Deployed int8 codes of every layer output (and its conv input) for one input (H, W, 3)."""
    inp = interp.get_input_details()[0]
    batch = x[None].astype(np.float32)
    if inp["dtype"] != np.float32:
        batch = quantize(batch, *inp["quantization"], inp["dtype"])
    interp.set_tensor(inp["index"], batch)
    interp.invoke()
    codes = {n: interp.get_tensor(op.output).copy() for n, op in ops.items()}
    codes.update({f"{n}:input": interp.get_tensor(op.input).copy() for n, op in ops.items()})
    return codes


def input_as_deployed(interp, x: np.ndarray) -> np.ndarray:
    """The float input the INT8 model actually sees: x quantized and dequantized."""
    inp = interp.get_input_details()[0]
    if inp["dtype"] == np.float32:
        return x.astype(np.float32)
    return dequantize(quantize(x.astype(np.float32), *inp["quantization"], inp["dtype"]),
                      *inp["quantization"])  # fmt: skip


def tensor_scale(interp, index: int) -> tuple[float, int]:
    scale, zero = interp.get_tensor_details()[index]["quantization"]
    return float(scale), int(zero)
