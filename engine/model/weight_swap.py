"""Writing a whole set of weights into a Keras model's variables in one call.

Assigning variable by variable from Python pays a Keras assign, an eager op
dispatch and a numpy-to-tensor copy for each of the 54 tensors; here the inputs
come in without a copy (:meth:`WeightSwap.as_tensor`) and one graph execution runs
54 DeepCopy + AssignVariableOp pairs (in parallel on TensorFlow's inter-op threads).
The DeepCopy is what keeps the variables from aliasing numpy memory:
AssignVariableOp adopts its input's buffer when it can (measured: without it,
writing into the quantized arrays after the swap changed the variables).  A
concrete function with a fixed signature: no retracing, and a fraction of a
polymorphic ``tf.function``'s call overhead for 54 arguments.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class WeightSwap:
    """One traced graph that writes every kernel and bias of ``layers`` (name -> Keras conv
    layer, in official order); ``names``: the official tensor names, in that order."""

    def __init__(self, tf, layers: Mapping) -> None:
        self._tf = tf
        self.names = [f"{name}/{kind}" for name in layers for kind in ("kernels", "biases")]
        variables = []
        for layer in layers.values():
            variables += [layer.kernel, layer.bias]
        handles = [getattr(v, "value", v) for v in variables]  # Keras 3 wraps a tf.Variable
        signature = [tf.TensorSpec(tuple(v.shape), tf.float32) for v in handles]

        def assign_all(*values):
            for var, value in zip(handles, values, strict=True):
                # DeepCopy: a fresh TensorFlow buffer, so a variable never adopts
                # (aliases) the caller's memory that ``as_tensor`` wraps
                var.assign(tf.raw_ops.DeepCopy(x=value))
            return tf.constant(True)  # an output: the call returns once every assign has run

        self._assign_all = tf.function(
            assign_all, input_signature=signature, autograph=False
        ).get_concrete_function()

    def assign(self, weights: Mapping[str, np.ndarray]) -> None:
        """Write ``weights`` (official names, HWIO float32) into the variables."""
        self._assign_all(*[self.as_tensor(weights[name]) for name in self.names])

    def as_tensor(self, array: np.ndarray):
        """A float32 tensor of ``array``: zero-copy through DLPack when the array is
        C-contiguous and 64-byte aligned (as :func:`~engine.quant.quantize_weights`'
        outputs and a detector's ``float_weights`` are; TensorFlow requires that alignment
        of any buffer it wraps), else a copy."""
        tf = self._tf
        a = np.asarray(array, dtype=np.float32)
        if a.size and a.flags.c_contiguous and a.flags.writeable and a.ctypes.data % 64 == 0:
            try:
                return tf.experimental.dlpack.from_dlpack(a.__dlpack__())
            except (BufferError, TypeError, ValueError, AttributeError):
                pass
        return tf.convert_to_tensor(a)
