"""Keras 3 graph of SqueezeDet / SqueezeDet+, layer for layer as the original.

Keras layer names use ``_`` where the official tensor names use ``/``
(``fire2/squeeze1x1`` -> ``fire2_squeeze1x1``); :func:`keras_name` converts.
The model's output is the raw ConvDet tensor ``(B, gridH, gridW, K*(C+5))``;
decoding happens in :mod:`engine.postprocess` (numpy) so thresholds can change
without touching the graph.

Activation quantization is simulated by :class:`ActivationQuant` layers placed
after every layer output.  They live in a *second* functional model that shares
the very same conv layers (and so the same weight variables) with the float
model: the float path pays nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezelens.engine.model.spec import CONV1, FIRES, POOL_AFTER, ArchSpec, layer_names

DROPOUT = "drop11"


def keras_name(official_layer: str) -> str:
    return official_layer.replace("/", "_")


def keras_module():
    """Keras, imported after TensorFlow (quietly)."""
    from squeezelens.engine.tf_runtime import import_tf

    import_tf()  # quietly, before Keras pulls TensorFlow in
    import keras

    return keras


def build_layers(spec: ArchSpec) -> dict:
    """Create the conv layers (keyed by official layer name) without wiring them."""
    keras = keras_module()
    k1, f1, pad1 = CONV1[spec.variant]
    layers = {
        "conv1": keras.layers.Conv2D(
            f1, k1, strides=2, padding=pad1, activation="relu", name="conv1"
        )
    }
    for fire, s, e1, e3 in FIRES[spec.variant]:
        for sub, filters, k in (("squeeze1x1", s, 1), ("expand1x1", e1, 1), ("expand3x3", e3, 3)):
            name = f"{fire}/{sub}"
            layers[name] = keras.layers.Conv2D(
                filters, k, padding="same", activation="relu", name=keras_name(name)
            )
    layers["conv12"] = keras.layers.Conv2D(
        spec.convdet_outputs, spec.convdet_kernel, padding="same", name="conv12"
    )
    return layers


def _wire(spec: ArchSpec, layers: dict, x, act_quant: dict | None, dropout_rate: float, taps: dict):
    """Apply the layers to tensor x; insert activation quantizers when given.

    taps receives each layer's output tensor (after its quantizer), keyed by
    official layer name, for per-layer probes.
    """
    keras = keras_module()
    pool_padding = CONV1[spec.variant][2]

    def out(name, t):
        taps[name] = act_quant[name](t) if act_quant is not None else t
        return taps[name]

    def pool(name, t):
        return keras.layers.MaxPooling2D(3, 2, padding=pool_padding, name=f"pool_{name}")(t)

    x = out("conv1", layers["conv1"](x))
    x = pool("conv1", x)
    for fire, *_ in FIRES[spec.variant]:
        sq = out(f"{fire}/squeeze1x1", layers[f"{fire}/squeeze1x1"](x))
        e1 = out(f"{fire}/expand1x1", layers[f"{fire}/expand1x1"](sq))
        e3 = out(f"{fire}/expand3x3", layers[f"{fire}/expand3x3"](sq))
        x = keras.layers.Concatenate(axis=-1, name=f"{fire}_concat")([e1, e3])
        if fire in POOL_AFTER[spec.variant]:
            x = pool(fire, x)
    # seeded: an unseeded Dropout draws its seed from Python's global random module; the
    # trainer sets its state to a function of (run seed, step) before every step
    x = keras.layers.Dropout(dropout_rate, seed=0, name=DROPOUT)(x)
    return out("conv12", layers["conv12"](x))


@dataclass
class SqueezeDetGraph:
    """The Keras pieces of one SqueezeDet.

    model: float model, (B, H, W, 3) -> (B, gridH, gridW, K*(C+5)).
    actq_model: the same layers with activation quantizers (or None).
    layers: official layer name -> Conv2D (shared by both models).
    act_quant: official layer name -> ActivationQuant layer (or None).
    probe / actq_probe: models returning every layer output, in layer order.
    """

    model: object
    actq_model: object
    layers: dict
    act_quant: dict | None
    probe: object
    actq_probe: object


def build_models(
    spec: ArchSpec, dropout_rate: float = 0.5, with_activation_quant: bool = False
) -> SqueezeDetGraph:
    """Build the float model (and optionally its activation-quantized twin)."""
    keras = keras_module()
    w, h = spec.input_size
    layers = build_layers(spec)
    names = layer_names(spec.variant)
    inp = keras.Input((h, w, 3), name="image")
    taps: dict = {}
    model = keras.Model(
        inp,
        _wire(spec, layers, inp, None, dropout_rate, taps),
        name=spec.variant.replace("+", "_plus"),
    )
    probe = keras.Model(inp, [taps[n] for n in names], name="probe")
    if not with_activation_quant:
        return SqueezeDetGraph(model, None, layers, None, probe, None)
    act_q = {name: ActivationQuant(name=f"aq_{keras_name(name)}") for name in names}
    inp2 = keras.Input((h, w, 3), name="image")
    taps2: dict = {}
    actq_model = keras.Model(
        inp2, _wire(spec, layers, inp2, act_q, dropout_rate, taps2), name="actq"
    )
    actq_probe = keras.Model(inp2, [taps2[n] for n in names], name="actq_probe")
    return SqueezeDetGraph(model, actq_model, layers, act_q, probe, actq_probe)


def _activation_quant_class():
    keras = keras_module()

    class _ActivationQuant(keras.layers.Layer):
        """Dynamic fixed point on a layer output: step 2^-fl, clipped to the signed range.

        ``step`` and the clip bounds are non-trainable variables so a new
        calibration is an ``assign``, never a retrace.  ``enabled`` = 0 passes
        the input through.
        """

        def build(self, input_shape):
            self.step = self.add_weight(shape=(), initializer="ones", trainable=False, name="step")
            self.lo = self.add_weight(shape=(), initializer="zeros", trainable=False, name="lo")
            self.hi = self.add_weight(shape=(), initializer="ones", trainable=False, name="hi")
            self.enabled = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="enabled"
            )

        def call(self, x):
            ops = keras.ops
            q = ops.clip(ops.round(x / self.step), self.lo, self.hi) * self.step
            # a select, not x + enabled * (q - x): that sum loses q's low bits when |x| >> |q|
            return ops.where(self.enabled > 0.5, q, x)

    return _ActivationQuant


def ActivationQuant(name: str):  # noqa: N802 - a factory that reads like a class
    """Create an activation fake-quantizer layer (class built lazily: Keras is imported late)."""
    global _AQ
    if _AQ is None:
        _AQ = _activation_quant_class()
    return _AQ(name=name)


_AQ = None
