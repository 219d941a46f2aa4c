"""Per-tensor facts about a quantization, for the quantize command's JSON and the GUI.

For a quantized tensor: the range its grid spans (``min``/``max``: the
fork's ``[lo, max(0, hi)]``, ``+-max|w|``, or the fixed-point ends), ``step``,
``n_levels``, ``zero_index`` (the level that is exactly 0 by construction:
the reserved zero, the centre of a symmetric or fixed-point grid; None when
no level is guaranteed to be 0) and, for pow2 grids, ``frac_len``.  With
``scale=channel`` these are (C,) arrays, one value per output channel.

:func:`model_size_bytes` gives the storage of the weights at a config's bit
widths (the GUI's model-size line).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from squeezelens.engine.quant.grids import LinearGrid, Pow2Grid, SymmetricGrid

Number = float | int | np.ndarray
_GRID_NAMES = {LinearGrid: "linear", SymmetricGrid: "symmetric", Pow2Grid: "pow2"}


def _plain(value: Any) -> Any:
    """numpy scalars/arrays to Python floats/ints/lists (JSON-ready)."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True, eq=False)
class TensorQuantInfo:
    """What quantization does to one parameter tensor (None fields: not applicable)."""

    name: str
    layer: str
    quantized: bool
    tensor_min: float
    tensor_max: float
    bits: int | None = None
    grid: str | None = None
    range_unit: str | None = None
    per_channel: bool = False
    min: Number | None = None
    max: Number | None = None
    step: Number | None = None
    n_levels: int | None = None
    zero_index: Number | None = None
    frac_len: Number | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays become lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _scalar_or_array(value: np.ndarray, per_channel: bool) -> Number:
    arr = np.asarray(value)
    if per_channel:
        return arr.copy()
    return arr.item()


def info_of(name: str, layer: str, values: np.ndarray, plan: Any | None) -> TensorQuantInfo:
    """Info of tensor ``name`` from its plan (None: the tensor stays float)."""
    base = {
        "name": name,
        "layer": layer,
        "tensor_min": float(np.min(values)) if values.size else float("nan"),
        "tensor_max": float(np.max(values)) if values.size else float("nan"),
    }
    if plan is None:
        return TensorQuantInfo(quantized=False, **base)
    grid = plan.grid
    per_channel = grid.per_channel
    low, high = grid.bounds
    zero = grid.exact_zero_index
    return TensorQuantInfo(
        quantized=True,
        bits=grid.bits,
        grid=_GRID_NAMES[type(grid)],
        range_unit=plan.unit,
        per_channel=per_channel,
        min=_scalar_or_array(low, per_channel),
        max=_scalar_or_array(high, per_channel),
        step=_scalar_or_array(grid.step, per_channel),
        n_levels=grid.n_levels,
        zero_index=None if zero is None else _scalar_or_array(zero, per_channel),
        frac_len=_scalar_or_array(grid.frac_len, per_channel)
        if isinstance(grid, Pow2Grid)
        else None,
        **base,
    )


def model_size_bytes(tensors: Mapping[str, int | np.ndarray], config: Any | None) -> int:
    """Bytes to store the parameters at the config's per-tensor bit widths.

    tensors: official tensor name -> element count (or the array itself).
    Tensors the config leaves float (and every tensor when ``config`` is None)
    count 32 bits per element; the others ``config.layer_bits`` bits.  Grid
    parameters (ranges, steps) are not counted; the total is rounded up to
    whole bytes.
    """
    total_bits = 0
    for name, value in tensors.items():
        size = int(value) if isinstance(value, (int, np.integer)) else int(np.size(value))
        layer, _, kind = name.rpartition("/")
        bits = None if config is None else config.layer_bits(layer, is_bias=kind == "biases")
        total_bits += size * (32 if bits is None else bits)
    return math.ceil(total_bits / 8)
