"""Which tensors share a range, the ranges themselves, and the grid of a range.

A *range unit* is the set of tensors that share one quantization range:

* ``global``: every quantized tensor (the fork's default);
* ``groups``: the fork's two groups, layers named ``conv*`` (conv12, and conv1
  when it is quantized) and layers named ``fire*``; any other layer name
  groups by its leading letters;
* ``layer``: a layer's kernel and bias together;
* ``channel``: per layer, one range per output channel (the last axis of an
  HWIO kernel together with that channel's bias element).

Ranges are taken from the float32 tensors and widened to float64 exactly.
``minmax`` is the fork's ``[min, max(0, max)]`` for ``global`` and ``groups``
(bit-exact reproduction); for ``layer`` and ``channel`` it is
``[min(0, min), max(0, max)]``: small units (a channel of 9 weights and a
bias) are often all positive, and a range that excludes 0 would make
``reserve_zero`` replace an end level and requantization move the range.
(The two rules agree whenever ``min <= 0``, as over any real model.)
``symmetric`` and ``pow2`` use ``max|w|``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import kernels
from squeezelens.engine.quant.config import QuantConfig
from squeezelens.engine.quant.grids import (
    LinearGrid,
    Pow2Grid,
    SymmetricGrid,
    UniformGrid,
    pow2_frac_len,
)

PARAM_KINDS = ("kernels", "biases")
_PREFIX = re.compile(r"^[A-Za-z_]+")


def split_param_name(name: str) -> tuple[str, str] | None:
    """``"fire2/squeeze1x1/kernels"`` -> ``("fire2/squeeze1x1", "kernels")``; None if not a parameter."""
    layer, sep, kind = name.rpartition("/")
    if not sep or not layer or kind not in PARAM_KINDS:
        return None
    return layer, kind


def range_unit(layer: str, scale: str) -> str:
    """Name of the range unit of ``layer`` under ``scale``."""
    if scale == "global":
        return "global"
    if scale == "groups":
        match = _PREFIX.match(layer)
        return match.group(0) if match else layer
    return layer


@dataclass
class RangeStats:
    """Running min and max of a range unit: float64 scalars, or (C,) per channel."""

    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def of(name: str, values: np.ndarray, per_channel: bool) -> RangeStats:
        """Min and max of one float32 tensor; per channel over all axes but the last."""
        if values.size == 0:
            raise InputError(f"tensor {name} is empty")
        if per_channel:
            flat = values.reshape(-1, values.shape[-1]) if values.ndim else values.reshape(1, 1)
            lo, hi = flat.min(axis=0), flat.max(axis=0)
        else:
            lo, hi = kernels.min_max(values) or (values.min(), values.max())
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise InputError(f"tensor {name} holds non-finite values (NaN or infinity)")
        return RangeStats(lo, hi)

    def merge(self, other: RangeStats, unit: str) -> RangeStats:
        """Union of two ranges (same shape: channel counts must agree)."""
        if self.lo.shape != other.lo.shape:
            raise InputError(
                f"layer {unit}: kernel and bias disagree on the number of output channels "
                f"({self.lo.shape[0]} vs {other.lo.shape[0]})"
            )
        return RangeStats(np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi))


def make_grid(config: QuantConfig, bits: int, stats: RangeStats) -> UniformGrid:
    """The grid of a range unit at ``bits`` under ``config`` (grid and range settings)."""
    max_abs = np.maximum(-stats.lo, stats.hi)
    if config.grid == "pow2":
        frac_len, degenerate = pow2_frac_len(max_abs, bits)
        return Pow2Grid(frac_len, bits, degenerate)
    if config.range == "symmetric":
        return SymmetricGrid(max_abs, bits, config.reserve_zero)
    return LinearGrid(*minmax_bounds(config, stats), bits, config.reserve_zero)


def minmax_bounds(config: QuantConfig, stats: RangeStats) -> tuple[np.ndarray, np.ndarray]:
    """The minmax ends of a unit's linear grid: its min and max, except that per-layer and
    per-channel ranges always include 0."""
    lo = stats.lo if config.scale in ("global", "groups") else np.minimum(stats.lo, 0.0)
    return lo, np.maximum(stats.hi, 0.0)
