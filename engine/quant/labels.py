"""Short labels of quantization configs, for result captions, legends and exported files.

:meth:`QuantConfig.describe` is the full sentence ("4-bit linear minmax, channel
scale, nearest, conv1 float, float activations"); :func:`short_label` is what fits
beside a number: the bits, the range unit and the rounding, then only the settings
that differ from the defaults, e.g. ``"4 bits · channel · nearest"`` or
``"6 bits · groups · stochastic seed 3 · zero · act 8"``.
"""

from __future__ import annotations

from typing import Any

SEP = " · "
FLOAT_LABEL = "float"
INT8_LABEL = "TFLite INT8"


def short_label(config: Any, int8: bool = False) -> str:
    """A one-line label of ``config`` (None: the float model; ``int8``: the TFLite model)."""
    if int8:
        return INT8_LABEL
    if config is None:
        return FLOAT_LABEL
    rounding = config.rounding
    if rounding == "stochastic":
        rounding += f" seed {config.seed}"
    elif rounding == "adaround":
        rounding += f" {config.adaround_iterations} it"
    parts = [f"{config.bits} bits", config.scale, rounding]
    if config.grid == "pow2":
        parts.append("pow2")
    if config.range != "minmax" and not (config.grid == "pow2" and config.range == "symmetric"):
        parts.append(config.range.replace("percentile:", "p"))  # "symmetric", "mse", "p99.9"
    parts += [name for name, on in (("equalized", config.equalize),
                                    ("bias corrected", config.bias_correction)) if on]  # fmt: skip
    if config.reserve_zero:
        parts.append("zero")
    if not config.quantize_biases:
        parts.append("float biases")
    if config.quantize_first_layer:
        parts.append("conv1 quantized")
    if config.activation_bits:
        act_range = config.activation_range
        act_range = "" if act_range == "minmax" else " " + act_range.replace("percentile:", "p")
        parts.append(f"act {config.activation_bits}{act_range}")
    if config.overrides:
        n = len(config.overrides)
        parts.append(f"{n} layer override" + ("s" if n > 1 else ""))
    return SEP.join(parts)
