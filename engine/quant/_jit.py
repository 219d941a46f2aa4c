"""The numba kernels of :mod:`engine.quant.kernels` (imported only through it, lazily).

Module-level functions so that numba can cache their machine code on disk; see
:mod:`engine.quant.kernels` for the rules and the data layout.  Two brackets:
:func:`bracket` trusts the affine estimate (right for nearly every element of a
uniform grid: its rare fix-up moves are branches that predict well), and
:func:`bracket_step` always makes the first move without a branch (a reserved
zero makes the estimate one index off for most small weights, and a branch
would mispredict on every other one; the extra loads cost ~2 ns an element).

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
def _estimate(x, top, origin, inv, divide):
    """The affine estimate of x's lower level index, clipped to [0, top]."""
    t = (x - origin) / inv if divide else (x - origin) * inv
    if not t > 0.0:
        t = 0.0
    elif t > top:
        t = np.float64(top)
    return np.int64(t)


@_inline
def _settle(x, table, top, channels, c, i, lo, hi):
    """Move i one index at a time until L(i) <= x < L(i+1) (ends open)."""
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
def bracket(x, table, top, channels, c, origin, inv, divide):
    """(i, L(i), L(i+1)) for float64 ``x`` on channel ``c``: i in [0, top] the largest
    index with L(i) <= x (0 below the grid)."""
    i = _estimate(x, top, origin, inv, divide)
    lo = table[i * channels + c]
    hi = table[(i + 1) * channels + c]
    return _settle(x, table, top, channels, c, i, lo, hi)


@_inline
def bracket_step(x, table, top, origin, inv, divide):
    """:func:`bracket` on a scalar grid, the first move made without a branch."""
    i = _estimate(x, top, origin, inv, divide)
    i += np.int64((x >= table[i + 1]) & (i < top)) - np.int64((x < table[i]) & (i > 0))
    return _settle(x, table, top, 1, 0, i, table[i], table[i + 1])


@_inline
def _stochastic_up(x, i, lo, hi, top, draw, scale):
    """1 to round up, else 0: the closest end level, or the coin ``draw * scale < p``."""
    near = (hi - x) < (x - lo)
    at_end = ((i == 0) & (near ^ True)) | ((i == top) & near)
    rand = np.float64(draw) * scale < (x - lo) / (hi - lo)
    return np.int64((near & at_end) | (rand & (at_end ^ True)))


@_jit
def nearest(v, out, table, channels, origin, inv, divide, active):
    """Nearest rounding of the run ``v`` into ``out`` (a tie goes down)."""
    top = table.size // channels - 2
    k = 0
    for _ in range(v.size // channels):
        for c in range(channels):
            if active[c]:
                x = np.float64(v[k])
                i, lo, hi = bracket(x, table, top, channels, c, origin[c], inv[c], divide)
                up = np.int64((hi - x) < (x - lo))
                out[k] = np.float32(table[(i + up) * channels + c])
            else:
                out[k] = v[k]
            k += 1


@_jit
def stochastic(v, out, table, channels, origin, inv, divide, active, draws, scale):
    """The fork's stochastic rounding of the run ``v`` into ``out`` (draw k for element k)."""
    top = table.size // channels - 2
    k = 0
    for _ in range(v.size // channels):
        for c in range(channels):
            if active[c]:
                x = np.float64(v[k])
                i, lo, hi = bracket(x, table, top, channels, c, origin[c], inv[c], divide)
                up = _stochastic_up(x, i, lo, hi, top, draws[k], scale)
                out[k] = np.float32(table[(i + up) * channels + c])
            else:
                out[k] = v[k]
            k += 1


@_jit
def nearest_scalar(v, out, table, origin, inv, divide, step_first):
    """:func:`nearest` on one scalar grid (C = 1, not degenerate)."""
    top = table.size - 2
    for k in range(v.size):
        x = np.float64(v[k])
        if step_first:
            i, lo, hi = bracket_step(x, table, top, origin, inv, divide)
        else:
            i, lo, hi = bracket(x, table, top, 1, 0, origin, inv, divide)
        out[k] = np.float32(table[i + np.int64((hi - x) < (x - lo))])


@_jit
def stochastic_scalar(v, out, table, origin, inv, divide, step_first, draws, scale):
    """:func:`stochastic` on one scalar grid (C = 1, not degenerate)."""
    top = table.size - 2
    for k in range(v.size):
        x = np.float64(v[k])
        if step_first:
            i, lo, hi = bracket_step(x, table, top, origin, inv, divide)
        else:
            i, lo, hi = bracket(x, table, top, 1, 0, origin, inv, divide)
        out[k] = np.float32(table[i + _stochastic_up(x, i, lo, hi, top, draws[k], scale)])


@_jit
def off_estimate(v, table, origin, inv, divide, stride):
    """Fraction of the sampled elements (every ``stride``-th) whose affine estimate is
    off by an index: above ~10 %, :func:`bracket_step` pays (see the module docstring)."""
    top = table.size - 2
    off = 0
    count = 0
    for k in range(0, v.size, stride):
        x = np.float64(v[k])
        i = _estimate(x, top, origin, inv, divide)
        off += ((x < table[i]) & (i > 0)) | ((x >= table[i + 1]) & (i < top))
        count += 1
    return off / max(count, 1)
