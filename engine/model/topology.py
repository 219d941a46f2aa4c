"""How SqueezeDet's convolutions connect: what feeds each layer, where ReLU and pooling sit.

The same wiring as :func:`engine.model.squeezedet._wire`, as data, for the code that
walks the network one layer at a time (cross-layer equalization, bias correction,
AdaRound) without Keras.  A :class:`Junction` is one tensor between convolutions:
the ReLU outputs of its ``producers``, concatenated in that order on the channel
axis, max-pooled (3x3, stride 2) when ``pooled``, read by every layer in
``consumers``.  (Dropout before ConvDet is the identity at inference.)
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezelens.engine.model.spec import CONV1, FIRES, POOL_AFTER

CONVDET = "conv12"


@dataclass(frozen=True)
class ConvLayer:
    """One convolution: its official name, stride, padding ("SAME"/"VALID") and whether a
    ReLU follows (every layer but ConvDet)."""

    name: str
    stride: int
    padding: str
    relu: bool


@dataclass(frozen=True)
class Junction:
    """One tensor between convolutions (see the module docstring)."""

    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    pooled: bool


def conv_layers(variant: str) -> list[ConvLayer]:
    """Every convolution in forward order."""
    pad = CONV1[variant][2].upper()
    layers = [ConvLayer("conv1", 2, pad, True)]
    for fire, *_ in FIRES[variant]:
        for sub in ("squeeze1x1", "expand1x1", "expand3x3"):
            layers.append(ConvLayer(f"{fire}/{sub}", 1, "SAME", True))
    return layers + [ConvLayer(CONVDET, 1, "SAME", False)]


def pool_padding(variant: str) -> str:
    """The max-pools' padding ("SAME" for SqueezeDet, "VALID" for SqueezeDet+)."""
    return CONV1[variant][2].upper()


def junctions(variant: str) -> list[Junction]:
    """Every tensor between convolutions, in forward order."""
    fires = [fire for fire, *_ in FIRES[variant]]
    pools = POOL_AFTER[variant]
    out = [Junction(("conv1",), (f"{fires[0]}/squeeze1x1",), "conv1" in pools)]
    for i, fire in enumerate(fires):
        squeeze = f"{fire}/squeeze1x1"
        expands = (f"{fire}/expand1x1", f"{fire}/expand3x3")
        out.append(Junction((squeeze,), expands, False))
        after = f"{fires[i + 1]}/squeeze1x1" if i + 1 < len(fires) else CONVDET
        out.append(Junction(expands, (after,), fire in pools))
    return out


def input_junctions(variant: str) -> dict[str, Junction]:
    """The junction each layer reads (conv1 reads the image: absent)."""
    return {layer: j for j in junctions(variant) for layer in j.consumers}
