"""Presets of the quantization panel and the model-size line under it.

The low-precision fork published four mAP-vs-bits curves: nearest and
stochastic rounding, each without and with zero reservation.  Its "zero" runs
also switched on separate conv/fire scales (its sweep script passed the zero
flag as the scales flag), so those presets use ``scale="groups"``.  The fork
kept conv1 float and put biases on the kernels' grid.
"""

from __future__ import annotations

from typing import Any

FORK_COMMON = {
    "range": "minmax",
    "grid": "linear",
    "quantize_first_layer": False,
    "quantize_biases": True,
}
PRESETS: dict[str, dict[str, Any]] = {
    "Fork: nearest": {"rounding": "nearest", "reserve_zero": False, "scale": "global"},
    "Fork: stochastic": {"rounding": "stochastic", "reserve_zero": False, "scale": "global"},
    "Fork: nearest + zero (groups)": {
        "rounding": "nearest",
        "reserve_zero": True,
        "scale": "groups",
    },
    "Fork: stochastic + zero (groups)": {
        "rounding": "stochastic",
        "reserve_zero": True,
        "scale": "groups",
    },
}


def preset_changes(preset: dict[str, Any]) -> dict[str, Any]:
    """The field values a preset sets (bits and seed are left as they are)."""
    return {**FORK_COMMON, **preset, "activation_bits": None}


def quantized_bytes(tensor_sizes: dict[str, int], config: Any) -> float:
    """Storage of the weights at the config's per-tensor bit widths (float ones at 32 bits)."""
    total = 0.0
    for name, size in tensor_sizes.items():
        layer, _, kind = name.rpartition("/")
        bits = config.layer_bits(layer, is_bias=kind == "biases")
        total += size * (32 if bits is None else bits) / 8
    return total


def describe_size(state: Any) -> str:
    """'1.64 M parameters · 6.6 MB float → 1.2 MB at 6 bits' for the current config."""
    info = state.model
    if info is None:
        return "No model loaded"
    float_mb = info.num_parameters * 4 / 1e6
    text = f"{info.num_parameters / 1e6:.2f} M parameters · {float_mb:.1f} MB float"
    if state.int8 and state.mode == "float":
        return text + f" → ≈{info.num_parameters / 1e6:.1f} MB INT8"
    config = state.other_config if state.mode == "float" else state.quant
    if config is None or not info.tensor_sizes:
        return text
    mb = quantized_bytes(info.tensor_sizes, config) / 1e6
    return text + f" → {mb:.2f} MB at {config.bits} bits ({float_mb / mb:.1f}× smaller)"
