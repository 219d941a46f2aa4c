"""Exact rounding by float64 index arithmetic: per-channel grids and the fallback.

Why a second implementation: the breakpoint tables of
:mod:`engine.quant.tables` are built once per grid, which pays off for a
grid shared by many weights but not for thousands of per-channel grids of a
few hundred weights each.  Here each element's lower level index is
estimated from the affine grid, its two neighbouring levels are fetched
(from the (C, n) level table when it is small, else from the formula) and
the few elements the estimate put one index off (next to a reserved zero,
or at float ties) are moved until ``L(i) <= v < L(i+1)`` holds.  Then
nearest and stochastic decisions are the fork's float64 comparisons.

Shapes: values (..., C) for a per-channel grid of C channels (parameters
broadcast on the last axis), any shape for a scalar grid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.quant.grids import UniformGrid

LEVEL_TABLE_MAX = 1 << 21
Lookup = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def level_lookup(grid: UniformGrid, shape: tuple[int, ...]) -> Lookup:
    """``lookup(i, where)``: float64 level ``i`` (int64) of the elements ``where``.

    ``where``: flat positions in ``shape`` (``i`` is then 1-D), or None for
    every element (``i`` has the values' shape).
    """
    n = grid.n_levels
    channels = shape[-1] if grid.per_channel else 1
    if channels * n <= LEVEL_TABLE_MAX:
        table = grid.levels.reshape(-1)
        base = np.arange(channels, dtype=np.int64) * n

        def from_table(i: np.ndarray, where: np.ndarray | None) -> np.ndarray:
            offset = base if where is None else base[where % channels]
            return np.take(table, i + offset)

        return from_table

    def from_formula(i: np.ndarray, where: np.ndarray | None) -> np.ndarray:
        if where is None:
            return grid.level_at(i)
        return grid.take_channels(where % channels).level_at(i)

    return from_formula


def bracket(
    v: np.ndarray, grid: UniformGrid, active: np.ndarray, lookup: Lookup
) -> tuple[np.ndarray, ...]:
    """``(i, low, high)``: i in [0, n-2] with ``low = L(i) <= v < L(i+1) = high`` (ends open).

    v: float64; i: int64; ``active``: False for degenerate channels (left at
    the estimate).  Starts from the affine estimate and moves only the
    elements that violate the bracket, one index per round.
    """
    top = grid.n_levels - 2
    step = np.where(grid.step > 0, grid.step, 1.0)
    i = np.clip(np.floor((v - grid.origin) / step), 0, top).astype(np.int64)
    low, high = lookup(i, None), lookup(i + 1, None)
    bad = (((v < low) & (i > 0)) | ((v >= high) & (i < top))) & active
    where = np.flatnonzero(bad)
    flat_v, flat_i, flat_low, flat_high = (
        v.reshape(-1),
        i.reshape(-1),
        low.reshape(-1),
        high.reshape(-1),
    )
    for _ in range(grid.n_levels + 1):
        if where.size == 0:
            return i, low, high
        vs, iw = flat_v[where], flat_i[where]
        iw = iw + ((vs >= flat_high[where]) & (iw < top)) - ((vs < flat_low[where]) & (iw > 0))
        lw, hw = lookup(iw, where), lookup(iw + 1, where)
        flat_i[where], flat_low[where], flat_high[where] = iw, lw, hw
        still = ((vs < lw) & (iw > 0)) | ((vs >= hw) & (iw < top))
        where = where[still]
    raise RuntimeError("bracketing did not converge")  # pragma: no cover


def round_arithmetic(v: np.ndarray, grid: UniformGrid, u: np.ndarray | None) -> np.ndarray:
    """Nearest (``u`` None) or stochastic rounding of float32 ``v``; float32 result.

    Degenerate channels (all levels equal) keep their values.
    """
    v64 = v.astype(np.float64)
    degenerate = np.asarray(grid.degenerate)
    active = np.broadcast_to(~degenerate, v.shape[-1:] if grid.per_channel else ())
    i, low, high = bracket(v64, grid, active, level_lookup(grid, v.shape))
    up = (high - v64) < (v64 - low)
    if u is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            p = (v64 - low) / (high - low)
        nearest = i + up
        at_end = (nearest == 0) | (nearest == grid.n_levels - 1)
        up = np.where(at_end, up, np.asarray(u, dtype=np.float64) < p)
    out = np.where(up, high, low).astype(np.float32)
    if degenerate.any():
        out = np.where(active, out, v)
    return out
