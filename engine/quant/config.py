"""QuantConfig: every setting of the weight quantizer, validated and hashable.

Defaults reproduce the low-precision SqueezeDet fork at 8 bits (linear grid,
min/max range, one global range, nearest rounding, conv1 left in float).
Invalid values raise :class:`engine.errors.InputError` with a one-line
message, so the CLI and the GUI can show it as is.  The JSON form (``to_dict``
/ ``to_json``) is what run folders and the quantize command store; the CLI
form (``to_cli_args``) replays a configuration on the command line.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from squeezelens.engine.errors import InputError

MIN_BITS, MAX_BITS = 1, 16
MIN_ACTIVATION_BITS, MAX_ACTIVATION_BITS = 4, 16
ROUNDINGS = ("nearest", "stochastic", "adaround")
SCALES = ("global", "groups", "layer", "channel")
RANGES = ("minmax", "symmetric", "mse")
ACTIVATION_RANGES = ("minmax", "mse", "entropy")
PERCENTILE = "percentile"
GRIDS = ("linear", "pow2")
ADAROUND_ITERATIONS = 1000
MAX_ADAROUND_ITERATIONS = 100_000
FLOAT = "float"
FIRST_LAYER = "conv1"
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")

Override = tuple[str, int | str]


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, got {value!r}")
    return value


def percentile_of(value: str) -> float | None:
    """P of a ``"percentile:P"`` range, None for any other range name."""
    name, sep, number = value.partition(":")
    return float(number) if sep and name == PERCENTILE else None


def _check_range(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of ``choices`` or ``percentile:P`` (50 < P <= 100), P written canonically."""
    if isinstance(value, str) and value in choices:
        return value
    if isinstance(value, str) and value.startswith(PERCENTILE + ":"):
        try:
            p = float(value.partition(":")[2])
        except ValueError:
            p = float("nan")
        if 50.0 < p <= 100.0:
            return f"{PERCENTILE}:{p:.10g}"
    raise InputError(
        f"{name} must be one of {', '.join(choices)}, {PERCENTILE}:P (50 < P <= 100), got {value!r}"
    )


def _override_bits(layer: str, bits: Any) -> int | str:
    if bits == FLOAT and isinstance(bits, str):
        return FLOAT
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise InputError(
            f"bits for layer {layer} must be {MIN_BITS}-{MAX_BITS} or 'float', got {bits!r}"
        )
    return int(bits)


def normalize_overrides(
    overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] | None,
) -> tuple[Override, ...]:
    """Validate per-layer bits and return them as a sorted tuple of (layer, bits | "float")."""
    if overrides is None:
        return ()
    pairs = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    seen: dict[str, int | str] = {}
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InputError(f"a layer override must be a (layer, bits) pair, got {pair!r}")
        layer, bits = pair
        if not isinstance(layer, str) or not _LAYER_NAME.match(layer):
            raise InputError(f"invalid layer name in overrides: {layer!r}")
        if layer in seen:
            raise InputError(f"layer {layer} appears twice in the overrides")
        seen[layer] = _override_bits(layer, bits)
    return tuple(sorted(seen.items()))


@dataclass(frozen=True)
class QuantConfig:
    """Settings of weight quantization (see the module docstring for the meaning).

    bits: 1-16 bits per weight.  rounding: "nearest" | "stochastic" |
    "adaround" (learned up/down rounding on calibration images, Nagel et al.
    2020; ``adaround_iterations`` steps per layer, draws seeded by ``seed``).
    reserve_zero: replace the level closest to 0 by exactly 0.
    scale: "global" | "groups" (conv layers / fire layers) | "layer" | "channel".
    range: "minmax" (the fork's [min, max(0, max)]) | "symmetric" (+-max|w|) |
    "mse" (the minmax range of each range unit scaled by the clip ratio that
    minimises the unit's quantization MSE) | "percentile:P" (the unit's
    (100-P)-th and P-th percentiles).  grid: "linear" | "pow2" (dynamic fixed
    point: minmax and symmetric mean the same there; mse picks the fractional
    length of least MSE, percentile:P the one fitting the P-th percentile of
    |w|).  A pow2 grid has one fractional length per range unit, chosen so the
    unit's largest magnitude fits: with ``scale="layer"`` that is Ristretto's
    dynamic fixed point (a power-of-two step per layer); with "global" or
    "groups" it is one fractional length shared by the whole model or group (a
    shared fixed-point format, not Ristretto's); with "channel", one per output
    channel.  seed: stochastic rounding (and AdaRound sampling) seed.
    quantize_biases, quantize_first_layer: whether biases / conv1 are
    quantized (conv1 was frozen in the fork).
    activation_bits: None (float activations) or 4-16, used by the model runner.
    activation_range: how each layer output's range is calibrated: "minmax"
    (largest magnitude), "percentile:P", "mse" or "entropy" (TensorRT's KL
    divergence method).  overrides: per-layer bits or "float", a sorted tuple
    of (layer, value).  The remedies (:mod:`engine.quant.remedies`):
    equalize: cross-layer equalization of the float weights before
    quantization; bias_correction: empirical bias correction on the
    calibration images (Nagel et al. 2019).
    """

    bits: int = 8
    rounding: str = "nearest"
    reserve_zero: bool = False
    scale: str = "global"
    range: str = "minmax"
    grid: str = "linear"
    seed: int = 0
    quantize_biases: bool = True
    quantize_first_layer: bool = False
    activation_bits: int | None = None
    overrides: tuple[Override, ...] = ()
    activation_range: str = "minmax"
    equalize: bool = False
    bias_correction: bool = False
    adaround_iterations: int = ADAROUND_ITERATIONS

    def __post_init__(self) -> None:
        _check_int("bits", self.bits, MIN_BITS, MAX_BITS)
        _check_choice("rounding", self.rounding, ROUNDINGS)
        _check_bool("reserve_zero", self.reserve_zero)
        _check_choice("scale", self.scale, SCALES)
        object.__setattr__(self, "range", _check_range("range", self.range, RANGES))
        _check_choice("grid", self.grid, GRIDS)
        object.__setattr__(
            self,
            "activation_range",
            _check_range("activation_range", self.activation_range, ACTIVATION_RANGES),
        )
        _check_bool("equalize", self.equalize)
        _check_bool("bias_correction", self.bias_correction)
        _check_int("adaround_iterations", self.adaround_iterations, 1, MAX_ADAROUND_ITERATIONS)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_bool("quantize_biases", self.quantize_biases)
        _check_bool("quantize_first_layer", self.quantize_first_layer)
        if self.activation_bits is not None:
            bits = self.activation_bits
            if isinstance(bits, bool) or not isinstance(bits, int):
                raise InputError(f"activation_bits must be off or an integer, got {bits!r}")
            if not MIN_ACTIVATION_BITS <= bits <= MAX_ACTIVATION_BITS:
                raise InputError(
                    f"activation_bits must be off or between {MIN_ACTIVATION_BITS} and "
                    f"{MAX_ACTIVATION_BITS}, got {bits}"
                )
        object.__setattr__(self, "overrides", normalize_overrides(self.overrides))

    @property
    def fork_exact(self) -> bool:
        """True when the settings are the fork's algorithm (bit-exact reproduction)."""
        return (
            self.grid == "linear"
            and self.range == "minmax"
            and self.scale in ("global", "groups")
            and self.rounding != "adaround"
            and not (self.equalize or self.bias_correction)
        )

    @property
    def needs_calibration(self) -> bool:
        """Whether the weights depend on calibration images (bias correction, AdaRound)."""
        return self.bias_correction or self.rounding == "adaround"

    @property
    def needs_model(self) -> bool:
        """Whether the weights need the model (its architecture, and for some, calibration
        images) beyond :func:`~engine.quant.apply.quantize_weights`: the remedies
        equalization, bias correction and AdaRound (see :mod:`engine.quant.remedies`)."""
        return self.equalize or self.needs_calibration

    def layer_bits(self, layer: str, is_bias: bool = False) -> int | None:
        """Bits for a tensor of ``layer`` (None: stays float).

        An explicit override wins (a bits override quantizes conv1 even when
        quantize_first_layer is off); then conv1 and biases follow their switches.
        """
        override = dict(self.overrides).get(layer)
        if override == FLOAT:
            return None
        if is_bias and not self.quantize_biases:
            return None
        if override is not None:
            return int(override)
        if layer == FIRST_LAYER and not self.quantize_first_layer:
            return None
        return self.bits

    def rounds(self, layer: str) -> bool:
        """Whether ``layer``'s tensors are rounded (always, but see :class:`PartialConfig`)."""
        return True

    def replace(self, **changes: Any) -> QuantConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields (overrides as an object layer -> bits | "float")."""
        data = dataclasses.asdict(self)
        data["overrides"] = dict(self.overrides)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantConfig:
        """Inverse of :meth:`to_dict`; missing fields take their defaults, unknown ones are errors."""
        if not isinstance(data, Mapping):
            raise InputError(
                f"a quantization config must be a JSON object, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown quantization setting(s): {', '.join(map(str, unknown))}")
        return cls(**dict(data))

    def to_json(self, indent: int | None = None) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> QuantConfig:
        """Parse :meth:`to_json` output (invalid JSON raises InputError)."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"invalid quantization config JSON: {exc}") from None
        return cls.from_dict(data)

    def describe(self) -> str:
        """One-line human summary, e.g. for window titles, logs and plots."""
        grid = "pow2 fixed point" if self.grid == "pow2" else f"linear {self.range}"
        parts = [f"{self.bits}-bit {grid}, {self.scale} scale, {self.rounding}"]
        if self.rounding == "stochastic":
            parts[0] += f" (seed {self.seed})"
        if self.reserve_zero:
            parts.append("zero reserved")
        if not self.quantize_biases:
            parts.append("float biases")
        parts.append("conv1 quantized" if self.quantize_first_layer else "conv1 float")
        acts = "float" if self.activation_bits is None else f"{self.activation_bits}-bit"
        if self.activation_bits is not None and self.activation_range != "minmax":
            acts += f" ({self.activation_range} range)"
        parts.append(f"{acts} activations")
        if self.rounding == "adaround":
            parts[0] += f" ({self.adaround_iterations} iterations)"
        if self.equalize:
            parts.append("equalized")
        if self.bias_correction:
            parts.append("bias corrected")
        if self.overrides:
            parts.append("layers " + " ".join(f"{k}={v}" for k, v in self.overrides))
        return ", ".join(parts)

    def to_cli_args(self) -> list[str]:
        """The command-line flags that rebuild this config (parsed back by squeezelens.cli.quant_args)."""
        on_off = {True: "on", False: "off"}
        args = [
            "--bits", str(self.bits),
            "--rounding", self.rounding,
            "--reserve-zero", on_off[self.reserve_zero],
            "--scale", self.scale,
            "--range", self.range,
            "--grid", self.grid,
            "--seed", str(self.seed),
            "--quantize-biases", on_off[self.quantize_biases],
            "--quantize-first-layer", on_off[self.quantize_first_layer],
            "--activation-bits", "off" if self.activation_bits is None else str(self.activation_bits),
        ]  # fmt: skip
        if self.overrides:
            args += ["--layer-bits", ",".join(f"{k}={v}" for k, v in self.overrides)]
        return args + self._remedy_cli_args()

    def _remedy_cli_args(self) -> list[str]:
        """The flags of the remedy fields, those that differ from their defaults."""
        defaults = QuantConfig()
        args: list[str] = []
        if self.activation_range != defaults.activation_range:
            args += ["--activation-range", self.activation_range]
        if self.equalize:
            args += ["--equalize", "on"]
        if self.bias_correction:
            args += ["--bias-correction", "on"]
        if self.adaround_iterations != defaults.adaround_iterations:
            args += ["--adaround-iterations", str(self.adaround_iterations)]
        return args


@dataclass(frozen=True)
class PartialConfig(QuantConfig):
    """A config that plans every range like :class:`QuantConfig` but rounds only some layers.

    ``rounded``: the layers whose tensors are rounded; every other tensor keeps
    its float values but still takes part in the ranges exactly as the fields
    say (under ``scale="global"`` the rounded layers share the range of all the
    layers the config quantizes).  The per-layer sensitivity analysis uses it
    so the tested layer lands on the grid it gets under the full config.
    An analysis tool, not a user setting: it has no command-line form.
    """

    rounded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        layers = self.rounded
        if isinstance(layers, str) or not all(isinstance(x, str) for x in layers):
            raise InputError(f"rounded must be a list of layer names, got {layers!r}")
        object.__setattr__(self, "rounded", tuple(sorted(set(layers))))

    def rounds(self, layer: str) -> bool:
        return layer in self.rounded

    def describe(self) -> str:
        return super().describe() + ", rounding only " + (" ".join(self.rounded) or "nothing")
