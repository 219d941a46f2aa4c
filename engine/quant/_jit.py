"""The numba kernels of :mod:`engine.quant.kernels` (imported only through it, lazily).

Module-level functions so that numba can cache their machine code on disk; see
:mod:`engine.quant.kernels` for the rules and the data layout.

The bracket starts from the affine estimate, corrected (with a select, not a
branch) for a reserved zero: the level it replaced sat off zero, so the weights
between that old level and zero (the region ``[lo, hi)``) are estimated one
index off, and on real weights that is half of them; they take the index
``fix`` instead.  A branch there would mispredict on every other one (measured:
12 against 4-8 ns an element).  What remains off (float ties at the edges) is
moved by loops that almost never run.

The nearest and stochastic loops are written out separately on purpose: one loop
with a "stochastic?" test inside ran 5x slower (measured), as the test kept the
compiler from turning the up/down choice into arithmetic.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")
_inline = numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")


@_inline
def bracket(x, table, top, channels, c, origin, inv, divide, region):
    """(i, L(i), L(i+1)) for float64 ``x`` on channel ``c``: i in [0, top] the largest
    index with L(i) <= x (0 below the grid).  ``region``: (lo, hi, fix) of the
    reserved zero (an empty region without one)."""
    t = (x - origin) / inv if divide else (x - origin) * inv
    if not t > 0.0:
        t = 0.0
    elif t > top:
        t = np.float64(top)
    i = np.int64(t)
    i = region[2] if (x >= region[0]) & (x < region[1]) else i
    lo = table[i * channels + c]
    hi = table[(i + 1) * channels + c]
    while x < lo and i > 0:
        i -= 1
        hi = lo
        lo = table[i * channels + c]
    while x >= hi and i < top:
        i += 1
        lo = hi
        hi = table[(i + 1) * channels + c]
    return i, lo, hi


@_inline
def _stochastic_up(x, i, lo, hi, top, draw, scale):
    """1 to round up, else 0: the closest end level, or the coin ``draw * scale < p``."""
    near = (hi - x) < (x - lo)
    at_end = ((i == 0) & (near ^ True)) | ((i == top) & near)
    rand = np.float64(draw) * scale < (x - lo) / (hi - lo)
    return np.int64((near & at_end) | (rand & (at_end ^ True)))


@_jit
def nearest(v, out, table, channels, origin, inv, divide, active, zlo, zhi, zfix):
    """Nearest rounding of the run ``v`` into ``out`` (a tie goes down)."""
    top = table.size // channels - 2
    k = 0
    for _ in range(v.size // channels):
        for c in range(channels):
            if active[c]:
                x = np.float64(v[k])
                region = (zlo[c], zhi[c], zfix[c])
                i, lo, hi = bracket(x, table, top, channels, c, origin[c], inv[c], divide, region)
                up = np.int64((hi - x) < (x - lo))
                out[k] = np.float32(table[(i + up) * channels + c])
            else:
                out[k] = v[k]
            k += 1


@_jit
def stochastic(v, out, table, channels, origin, inv, divide, active, zlo, zhi, zfix, draws,
               scale):  # fmt: skip
    """The fork's stochastic rounding of the run ``v`` into ``out`` (draw k for element k)."""
    top = table.size // channels - 2
    k = 0
    for _ in range(v.size // channels):
        for c in range(channels):
            if active[c]:
                x = np.float64(v[k])
                region = (zlo[c], zhi[c], zfix[c])
                i, lo, hi = bracket(x, table, top, channels, c, origin[c], inv[c], divide, region)
                up = _stochastic_up(x, i, lo, hi, top, draws[k], scale)
                out[k] = np.float32(table[(i + up) * channels + c])
            else:
                out[k] = v[k]
            k += 1


@_jit
def nearest_scalar(v, out, table, origin, inv, divide, region):
    """:func:`nearest` on one scalar grid (C = 1, not degenerate): a simpler loop."""
    top = table.size - 2
    for k in range(v.size):
        x = np.float64(v[k])
        i, lo, hi = bracket(x, table, top, 1, 0, origin, inv, divide, region)
        out[k] = np.float32(table[i + np.int64((hi - x) < (x - lo))])


@_jit
def stochastic_scalar(v, out, table, origin, inv, divide, region, draws, scale):
    """:func:`stochastic` on one scalar grid (C = 1, not degenerate): a simpler loop."""
    top = table.size - 2
    for k in range(v.size):
        x = np.float64(v[k])
        i, lo, hi = bracket(x, table, top, 1, 0, origin, inv, divide, region)
        out[k] = np.float32(table[i + _stochastic_up(x, i, lo, hi, top, draws[k], scale)])


@_jit
def min_max(v):
    """(min, max, any NaN) of a flat float32 array in one pass (numpy needs two)."""
    lo = np.inf
    hi = -np.inf
    nan = False
    for k in range(v.size):
        x = np.float64(v[k])
        lo = x if x < lo else lo
        hi = x if x > hi else hi
        nan |= x != x
    return lo, hi, nan


# ----------------------------------------------------------------- levels by formula
# For per-channel grids whose (n, C) level table would cost more than the rounding
# (16 bits x hundreds of channels): each level is computed as the grid computes it
# (:meth:`engine.quant.grids.UniformGrid.formula`, the same float64 operations),
# with the reserved zero (index ``zero[c]``, -1 for none) put back.


@_inline
def level(i, c, kind, a, b, k, m, zero):
    """Level ``i`` of channel ``c``: ``a + (i * b) / m`` or ``(i - k) * b``, or 0."""
    fi = np.float64(i)
    value = a[c] + (fi * b[c]) / m if kind == 0 else (fi - k) * b[c]
    return 0.0 if i == zero[c] else value


@_inline
def bracket_formula(x, top, c, grid, origin, inv, divide, region):
    """:func:`bracket` with levels from the formula; ``grid``: (kind, a, b, k, m, zero)."""
    kind, a, b, k, m, zero = grid
    t = (x - origin) / inv if divide else (x - origin) * inv
    if not t > 0.0:
        t = 0.0
    elif t > top:
        t = np.float64(top)
    i = np.int64(t)
    i = region[2] if (x >= region[0]) & (x < region[1]) else i
    lo = level(i, c, kind, a, b, k, m, zero)
    hi = level(i + 1, c, kind, a, b, k, m, zero)
    while x < lo and i > 0:
        i -= 1
        hi = lo
        lo = level(i, c, kind, a, b, k, m, zero)
    while x >= hi and i < top:
        i += 1
        lo = hi
        hi = level(i + 1, c, kind, a, b, k, m, zero)
    return i, lo, hi


@_jit
def round_formula(v, out, top, channels, grid, origin, inv, divide, active, zlo, zhi, zfix,
                  draws, scale):  # fmt: skip
    """Nearest (``draws`` empty) or stochastic rounding with levels from the formula."""
    stochastic = draws.size > 0
    k = 0
    for _ in range(v.size // channels):
        for c in range(channels):
            if active[c]:
                x = np.float64(v[k])
                region = (zlo[c], zhi[c], zfix[c])
                i, lo, hi = bracket_formula(x, top, c, grid, origin[c], inv[c], divide, region)
                if stochastic:
                    up = _stochastic_up(x, i, lo, hi, top, draws[k], scale)
                else:
                    up = np.int64((hi - x) < (x - lo))
                out[k] = np.float32(hi) if up else np.float32(lo)
            else:
                out[k] = v[k]
            k += 1
