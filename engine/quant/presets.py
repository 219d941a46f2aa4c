"""Named quantization presets: the single source for the CLI's ``--fork-curves`` and the GUI.

The low-precision SqueezeDet fork published four mAP-vs-bits curves, swept
over :data:`FORK_BITS`:

(a) nearest rounding, no zero reservation, one global range;
(b) stochastic rounding, no zero reservation, one global range;
(c) nearest rounding, zero reserved, separate conv/fire ranges ("groups");
(d) stochastic rounding, zero reserved, separate conv/fire ranges.

Its "zero" runs had the separate layer scales switched on as well because its
sweep script passed the zero flag as the scales flag too, so (c) and (d) use
``scale="groups"``.  Every fork preset keeps conv1 float, quantizes biases on
the kernels' grid and leaves activations float.  The fork scored with the
devkit copy shipped with SqueezeDet (``--protocol squeezedet``).

:data:`RISTRETTO` is Ristretto's dynamic fixed point: a power-of-two step per
layer (``grid="pow2"``, ``scale="layer"``).

A preset sets the fields in :attr:`Preset.fields`; :meth:`Preset.apply`
keeps the others (bits, seed, overrides) of the config it is applied to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.config import QuantConfig

FORK_BITS: tuple[int, ...] = (3, 4, 5, 6, 7, 9, 11)
FORK_PROTOCOL = "squeezedet"
FORK_FIELDS = (
    "rounding", "reserve_zero", "scale", "range", "grid",
    "quantize_biases", "quantize_first_layer", "activation_bits",
)  # fmt: skip


@dataclass(frozen=True)
class Preset:
    """A named set of quantization settings.

    name: short label for menus and legends; description: one line for tooltips;
    config: a QuantConfig holding the preset's values; fields: the fields it sets.
    """

    name: str
    description: str
    config: QuantConfig
    fields: tuple[str, ...] = FORK_FIELDS

    def changes(self) -> dict[str, Any]:
        """The field values the preset sets, by field name."""
        return {name: getattr(self.config, name) for name in self.fields}

    def apply(self, base: QuantConfig | None = None) -> QuantConfig:
        """``base`` (default QuantConfig()) with the preset's fields; bits, seed, overrides kept."""
        return (base or QuantConfig()).replace(**self.changes())


def _fork(name: str, description: str, rounding: str, zero: bool) -> Preset:
    config = QuantConfig(rounding=rounding, reserve_zero=zero, scale="groups" if zero else "global")
    return Preset(name, description, config)


FORK_CURVES: tuple[Preset, ...] = (
    _fork("Fork: nearest", "(a) nearest, no zero, one global range", "nearest", False),
    _fork("Fork: stochastic", "(b) stochastic, no zero, one global range", "stochastic", False),
    _fork("Fork: nearest + zero (groups)", "(c) nearest, zero reserved, conv/fire ranges",
          "nearest", True),
    _fork("Fork: stochastic + zero (groups)", "(d) stochastic, zero reserved, conv/fire ranges",
          "stochastic", True),
)  # fmt: skip
RISTRETTO = Preset(
    "Ristretto: dynamic fixed point",
    "power-of-two step per layer (fractional length from the layer's largest magnitude)",
    QuantConfig(grid="pow2", scale="layer"),
    ("grid", "scale", "reserve_zero", "activation_bits"),
)
PRESETS: tuple[Preset, ...] = (*FORK_CURVES, RISTRETTO)


def preset_by_name(name: str) -> Preset:
    """The preset called ``name`` (InputError naming the known ones otherwise)."""
    for preset in PRESETS:
        if preset.name == name:
            return preset
    raise InputError(f"unknown preset {name!r} (known: {', '.join(p.name for p in PRESETS)})")


def fork_curve_configs(
    base: QuantConfig | None = None, bits: tuple[int, ...] | None = None
) -> list[QuantConfig]:
    """The fork's four curves at each bit width (default :data:`FORK_BITS`), bits-major."""
    base = base or QuantConfig()
    return [p.apply(base.replace(bits=b)) for b in (bits or FORK_BITS) for p in FORK_CURVES]


def matching_preset(config: QuantConfig, presets: tuple[Preset, ...] = PRESETS) -> Preset | None:
    """The first preset whose fields all equal the config's (None when none does)."""
    for preset in presets:
        if all(getattr(config, k) == v for k, v in preset.changes().items()):
            return preset
    return None
