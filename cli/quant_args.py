"""argparse glue for QuantConfig: the same flags for every command (the CLI's, not the engine's).

Flags (see ``QuantConfig.to_cli_args``): ``--bits N --rounding R
--reserve-zero on|off --scale S --range R --grid G --seed S
--quantize-biases on|off --quantize-first-layer on|off
--activation-bits off|N --layer-bits NAME=BITS|float,...``, and the remedies
``--activation-range R --equalize [on|off] --bias-correction [on|off]
--adaround-iterations N`` (a bare ``--equalize`` or ``--bias-correction`` means on).

Values are parsed here, not by argparse, so a bad value becomes an
:class:`InputError` with the same one-line message the JSON path gives.
With ``multi=True`` (the sweep command) ``--bits``, ``--rounding``,
``--reserve-zero``, ``--scale``, ``--range``, ``--equalize`` and
``--bias-correction`` take comma-separated lists (``--bits``
also ``A-B`` ranges, e.g. ``3-11``) and :func:`quant_configs_from_args`
returns their product.  Parsed values live in the namespace under
``quant_<field>`` so they cannot collide with a command's own options.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.config import (
    ACTIVATION_RANGES,
    ADAROUND_ITERATIONS,
    FLOAT,
    GRIDS,
    PERCENTILE,
    RANGES,
    ROUNDINGS,
    SCALES,
    QuantConfig,
)

_TRUE = ("on", "true", "yes", "1")
_FALSE = ("off", "false", "no", "0")
MULTI_FIELDS = ("bits", "rounding", "reserve_zero", "scale", "range", "equalize", "bias_correction")
SWITCHES = ("equalize", "bias_correction")  # a bare flag means on


def parse_on_off(flag: str, text: str) -> bool:
    """``on``/``off`` (also true/false, yes/no, 1/0) to bool."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InputError(f"{flag} must be on or off, got {text!r}")


def parse_int(flag: str, text: str) -> int:
    """An integer flag value (InputError otherwise)."""
    try:
        return int(text.strip())
    except ValueError:
        raise InputError(f"{flag} must be an integer, got {text!r}") from None


def parse_activation_bits(text: str) -> int | None:
    """``off`` -> None, else an integer (range checked by QuantConfig)."""
    return None if text.strip().lower() in _FALSE else parse_int("--activation-bits", text)


def parse_layer_bits(text: str) -> tuple[tuple[str, int | str], ...]:
    """``NAME=BITS|float,...`` to (layer, bits | "float") pairs (validated by QuantConfig)."""
    pairs: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InputError(
                f"--layer-bits entries must look like NAME=BITS or NAME=float, got {item!r}"
            )
        value = value.strip()
        bits: int | str = (
            FLOAT if value.lower() == FLOAT else parse_int(f"--layer-bits {name}", value)
        )
        pairs.append((name.strip(), bits))
    return tuple(pairs)


def parse_bits_list(text: str) -> list[int]:
    """``--bits`` of a sweep or search: ``A,B,C-D`` to a list of widths (InputError otherwise)."""
    values: list[int] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        first, dash, last = item.partition("-")
        if dash and first:
            low, high = parse_int("--bits", first), parse_int("--bits", last)
            if low > high:
                raise InputError(f"--bits range {item} is empty")
            values.extend(range(low, high + 1))
        else:
            values.append(parse_int("--bits", item))
    if not values:
        raise InputError("--bits needs at least one value")
    return values


FLAGS: tuple[tuple[str, str, str], ...] = (
    ("bits", "N", "bits per weight, 1-16 (default 8)"),
    ("rounding", "R", f"{' | '.join(ROUNDINGS)} (default nearest)"),
    ("reserve_zero", "on|off", "make 0 an exact level (default off)"),
    ("scale", "S", f"range sharing: {' | '.join(SCALES)} (default global)"),
    ("range", "R", f"{' | '.join(RANGES)} | {PERCENTILE}:P: the weights' clipping range "
     "(mse: least quantization error; default minmax)"),
    ("grid", "G", f"{' | '.join(GRIDS)} (default linear)"),
    ("seed", "S", "seed of stochastic rounding (default 0)"),
    ("quantize_biases", "on|off", "quantize biases (default on)"),
    ("quantize_first_layer", "on|off", "quantize conv1, frozen in the fork (default off)"),
    ("activation_bits", "off|N", "activation bits 4-16, or off (default off)"),
    ("layer_bits", "NAME=BITS|float,...", "per-layer bits, or float to keep a layer in float"),
    ("activation_range", "R", f"{' | '.join(ACTIVATION_RANGES)} | {PERCENTILE}:P: each layer "
     "output's calibrated range (entropy: TensorRT's KL method; default minmax)"),
    ("equalize", "on|off", "cross-layer equalization of the weights before quantizing"),
    ("bias_correction", "on|off", "empirical bias correction on the calibration images"),
    ("adaround_iterations", "N", f"AdaRound steps per layer (--rounding adaround; default "
     f"{ADAROUND_ITERATIONS})"),
)  # fmt: skip


def add_config_arguments(parser: argparse.ArgumentParser, multi: bool = False) -> None:
    """Add the quantization flags to ``parser`` (lists for the sweep when ``multi``)."""
    group = parser.add_argument_group("quantization")
    for name, metavar, text in FLAGS:
        if multi and name in MULTI_FIELDS:
            text += " (comma-separated list" + (", ranges like 3-11)" if name == "bits" else ")")
        flag = "--" + name.replace("_", "-")
        switch = {"nargs": "?", "const": "on"} if name in SWITCHES else {}
        group.add_argument(flag, dest=f"quant_{name}", metavar=metavar, help=text, **switch)
    parser.set_defaults(quant_multi=multi)


def _common_fields(args: argparse.Namespace) -> dict[str, Any]:
    """Single-valued fields given on the command line (absent ones keep their defaults)."""
    fields: dict[str, Any] = {}
    parsers = {
        "grid": lambda t: t.strip(),
        "activation_range": lambda t: t.strip(),
        "adaround_iterations": lambda t: parse_int("--adaround-iterations", t),
        "seed": lambda t: parse_int("--seed", t),
        "quantize_biases": lambda t: parse_on_off("--quantize-biases", t),
        "quantize_first_layer": lambda t: parse_on_off("--quantize-first-layer", t),
        "activation_bits": parse_activation_bits,
        "layer_bits": parse_layer_bits,
    }
    for name, parse in parsers.items():
        text = getattr(args, f"quant_{name}", None)
        if text is not None:
            fields["overrides" if name == "layer_bits" else name] = parse(text)
    return fields


def _multi_values(args: argparse.Namespace, multi: bool) -> dict[str, list[Any]]:
    """Values of the list-capable flags (one each unless ``multi``)."""
    parsers = {
        "bits": parse_bits_list if multi else lambda t: [parse_int("--bits", t)],
        "rounding": lambda t: [t.strip()],
        "reserve_zero": lambda t: [parse_on_off("--reserve-zero", t)],
        "scale": lambda t: [t.strip()],
        "range": lambda t: [t.strip()],
        "equalize": lambda t: [parse_on_off("--equalize", t)],
        "bias_correction": lambda t: [parse_on_off("--bias-correction", t)],
    }
    values: dict[str, list[Any]] = {}
    for name, parse in parsers.items():
        text = getattr(args, f"quant_{name}", None)
        if text is None:
            continue
        if multi and name != "bits":
            items = [part for part in text.split(",") if part.strip()]
            values[name] = [v for part in items for v in parse(part)]
        else:
            values[name] = parse(text)
        if not values[name]:
            raise InputError(f"--{name.replace('_', '-')} needs at least one value")
    return values


def quant_configs_from_args(args: argparse.Namespace) -> list[QuantConfig]:
    """All configs of the flags: the product of the list flags (bits x rounding x reserve-zero x
    scale x range x equalize x bias-correction), in that order.

    Duplicates are dropped, first occurrence kept.
    """
    common = _common_fields(args)
    multi = _multi_values(args, bool(getattr(args, "quant_multi", False)))
    names = list(multi)
    configs: list[QuantConfig] = []
    for combo in itertools.product(*(multi[n] for n in names)):
        config = QuantConfig(**common, **dict(zip(names, combo, strict=True)))
        if config not in configs:
            configs.append(config)
    return configs


def quant_config_from_args(args: argparse.Namespace) -> QuantConfig:
    """The single config of the flags (InputError if a list flag has several values)."""
    configs = quant_configs_from_args(args)
    if len(configs) != 1:
        raise InputError(f"expected one quantization setting, got {len(configs)}")
    return configs[0]
